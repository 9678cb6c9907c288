// What both assembler syntaxes share: the error class and the number and register parsers.

import { WasmBpfError } from '../../../src/errors.js';

/** text that does not assemble: the line (1-based) and what is wrong there (code USAGE) */
export class AsmError extends WasmBpfError {
  constructor(readonly line: number, message: string) {
    super('USAGE', `line ${line}: ${message}`);
    this.name = 'AsmError';
  }
}

export function parseInt64(text: string, line: number): bigint {
  const t = text.trim();
  const m = /^([+-]?)(0x[0-9a-f]+|[0-9]+)$/i.exec(t);
  if (m === null) throw new AsmError(line, `bad number '${text}'`);
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  if (v < -(1n << 63n) || v >= 1n << 64n) throw new AsmError(line, `number out of range '${text}'`);
  return v;
}

export function parseImm32(text: string, line: number): number {
  const v = parseInt64(text, line);
  if (v < -(1n << 31n) || v >= 1n << 32n) throw new AsmError(line, `immediate out of 32-bit range '${text}'`);
  return Number(BigInt.asIntN(32, v));
}

export function parseOff16(text: string, line: number): number {
  const v = parseInt64(text, line);
  if (v < -32768n || v > 32767n) throw new AsmError(line, `offset out of 16-bit range '${text}'`);
  return Number(v);
}

export function parseReg(text: string, line: number): number {
  const m = /^%?r(\d+)$/i.exec(text.trim());
  if (m === null || Number(m[1]) > 10) throw new AsmError(line, `bad register '${text}'`);
  return Number(m[1]);
}

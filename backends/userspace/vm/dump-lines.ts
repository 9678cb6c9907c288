// Lines as llvm-objdump -d(r) and the verifier log print them, for the assembler: `  12:\t85 00 .. 00\tcall 0x1`,
// `0000000000000000 <on_switch>:`, `Disassembly of section X:`, relocation lines, `3: (b7) r0 = 1`.
// Their decoration is taken off (the raw bytes kept), so such a listing assembles back to its bytes.

/** what one line of a listing holds once its decoration is taken off */
export type DumpLine =
  | { kind: 'skip' }
  | { kind: 'label'; name: string }
  | { kind: 'insn'; text: string; raw: Uint8Array | undefined };

const HEX_BYTES = /^((?:[0-9a-f]{2} ){7}[0-9a-f]{2}(?: (?:[0-9a-f]{2} ){7}[0-9a-f]{2})?)(?:\s+|$)/;

/** undefined: not a listing line (the line is read as it is) */
export function dumpLine(src: string): DumpLine | undefined {
  if (/^\S.*:\s+file format \S+$/.test(src) || /^Disassembly of section .*:$/.test(src)) return { kind: 'skip' };
  if (/^[0-9a-f]+:\s+R_BPF_\w+(\s+\S+)?$/.test(src)) return { kind: 'skip' };
  let m = /^[0-9a-f]{8,16} <([^<>]+)>:$/.exec(src);
  if (m !== null) return /^[A-Za-z_.][\w.]*$/.test(m[1]!) ? { kind: 'label', name: m[1]! } : { kind: 'skip' };
  m = /^(\d+):\s*/.exec(src);
  if (m === null) return undefined;
  let rest = src.slice(m[0].length);
  let raw: Uint8Array | undefined;
  const hb = HEX_BYTES.exec(rest);
  if (hb !== null) {
    raw = new Uint8Array(hb[1]!.split(' ').map((x) => parseInt(x, 16)));
    rest = rest.slice(hb[0].length);
  }
  rest = rest.replace(/^\([0-9a-f]{2}\)\s*/, '');
  return { kind: 'insn', text: rest.trim(), raw };
}

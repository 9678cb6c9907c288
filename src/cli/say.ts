// Diagnostics on stderr, one style for every command (src/style.ts): `wasm-bpf[ CMD]: text`, the prefix
// coloured by kind on a terminal.
import process from 'node:process';
import { diagLine, painter, useColor, type Diag } from '../style.js';

/** writes `PREFIX: text` to stderr (an error unless `kind` says otherwise) */
export function say(prefix: string, text: string, kind: Diag = 'error'): void {
  process.stderr.write(`${diagLine(painter(useColor(process.stderr)), prefix, text, kind)}\n`);
}

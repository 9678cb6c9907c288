// One style of colour for every command's output: the palette (green: yes, ok, the plan; red: no, refused,
// errors; yellow: unknown, warnings; cyan: fixes and hints; dim: notes; bold: titles and prefixes), used only
// on a terminal and when NO_COLOR is unset or empty (https://no-color.org).

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;
export type Style = keyof typeof CODES;
export type Paint = (s: string, style: Style) => string;

/** colour on this stream: a terminal, and NO_COLOR unset or empty */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const noColor = env['NO_COLOR'];
  if (noColor !== undefined && noColor !== '') return false;
  return stream.isTTY === true;
}

/** paints with the palette when `on`, else returns the text as it is */
export function painter(on: boolean): Paint {
  return (s, style) => (on ? `\x1b[${CODES[style][0]}m${s}\x1b[${CODES[style][1]}m` : s);
}

/** the kinds of a diagnostic line on stderr, and how each looks */
export type Diag = 'error' | 'warning' | 'hint' | 'note';

/**
 * A diagnostic line as every command writes it: `PREFIX: TEXT` (PREFIX `wasm-bpf` or `wasm-bpf CMD`); an
 * error's prefix red, a warning's yellow, a hint's `hint:` cyan, a note dim.
 */
export function diagLine(paint: Paint, prefix: string, text: string, kind: Diag = 'error'): string {
  if (kind === 'hint') return `${paint(`${prefix}:`, 'bold')} ${paint('hint:', 'cyan')} ${text.replace(/^hint: /, '')}`;
  if (kind === 'note') return paint(`${prefix}: ${text}`, 'dim');
  return `${paint(`${prefix}:`, kind === 'error' ? 'red' : 'yellow')} ${text}`;
}

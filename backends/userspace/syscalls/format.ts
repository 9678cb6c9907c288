// Reads tracefs `format` files (events/<category>/<name>/format) into field layouts: the context record a
// tracepoint program sees. Pure text in, data out: no file access here (layout.ts reads tracefs).

/** one field of a tracepoint's context record, as its `format` file declares it */
export interface TraceField {
  /** the declaration as tracefs prints it: 'const char * filename', '__data_loc char[] filename', 'unsigned long args[6]' */
  decl: string;
  /** the field's name: 'filename', 'args' */
  name: string;
  offset: number;
  size: number;
  signed: boolean;
  /** `__data_loc` fields hold (length << 16 | offset) of bytes stored after the fixed part */
  dataLoc: boolean;
  /** element count of a fixed array field ('args[6]' -> 6), else 0 */
  count: number;
}

/** an event's name, tracefs id (0 when unknown: ids are assigned at boot) and fields, header first */
export interface EventFormat {
  name: string;
  id: number;
  fields: TraceField[];
}

const FIELD = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:([01]);\s*$/;

/** 'const char * filename' -> 'filename'; 'unsigned long args[6]' -> args, 6; '__data_loc char[] filename' -> filename */
export function parseDecl(decl: string): { name: string; count: number; dataLoc: boolean } {
  const dataLoc = decl.startsWith('__data_loc ');
  const m = /([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(\d*)\])?\s*$/.exec(decl);
  if (!m) throw new Error(`tracefs field declaration without a name: '${decl}'`);
  return { name: m[1]!, count: m[2] ? Number(m[2]) : 0, dataLoc };
}

export function parseField(line: string): TraceField | undefined {
  const m = FIELD.exec(line);
  if (!m) return undefined;
  const decl = m[1]!.trim();
  return { decl, ...parseDecl(decl), offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' };
}

/** one `format` file's text (the `print fmt` line is ignored) */
export function parseFormat(text: string): EventFormat {
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  if (!name) throw new Error(`not a tracefs format (no 'name:' line): '${text.slice(0, 60)}'`);
  const id = Number(/^ID:\s*(\d+)/m.exec(text)?.[1] ?? 0);
  const fields: TraceField[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('print fmt')) break;
    const f = parseField(line);
    if (f) fields.push(f);
  }
  return { name, id, fields };
}

/** several `format` texts concatenated (each starts with 'name:'; '#' lines are comments) */
export function parseFormats(text: string): EventFormat[] {
  const body = text.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  return body.split(/^(?=name:)/m).filter((s) => s.trim()).map(parseFormat);
}

/** the bytes a record needs before any `__data_loc` payload: the end of the last field */
export function fixedSize(fields: readonly TraceField[]): number {
  return fields.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
}

/** the category a name belongs to in tracefs, for the events this module knows */
export function categoryOf(name: string): 'syscalls' | 'raw_syscalls' | 'sched' | undefined {
  if (/^sys_(enter|exit)_./.test(name)) return 'syscalls';
  if (name === 'sys_enter' || name === 'sys_exit') return 'raw_syscalls';
  if (name.startsWith('sched_')) return 'sched';
  return undefined;
}

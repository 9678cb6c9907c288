// Parsers of the Windows commands the probe reads (`reg query`, `sc query`): pure functions from their
// text output (as documented by Microsoft's reg and sc command references) to data. No I/O.

export interface RegValue {
  type: string;
  data: string;
}

/** `reg query KEY [/s]` output: key path -> value name -> {type, data} ('(Default)' for the unnamed value) */
export function parseRegQuery(text: string): Map<string, Map<string, RegValue>> {
  const keys = new Map<string, Map<string, RegValue>>();
  let current: Map<string, RegValue> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (!raw.trim()) continue;
    if (/^HKEY_[A-Z_]+(\\|$)/.test(raw)) {
      current = new Map();
      keys.set(raw.trim(), current);
      continue;
    }
    // values: 4 spaces, name, 4 spaces, REG_TYPE, 4 spaces, data (names may hold single spaces)
    const m = /^ {4}(.+?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/.exec(raw);
    if (m && current) current.set(m[1]!, { type: m[2]!, data: m[3] ?? '' });
  }
  return keys;
}

/** a REG_DWORD / REG_QWORD datum ("0x5867") as a number; null for anything else */
export function regNumber(v: RegValue | undefined): number | null {
  if (!v || !/^REG_(D|Q)WORD$/.test(v.type)) return null;
  const n = Number.parseInt(v.data, 16);
  return Number.isFinite(n) ? n : null;
}

/** the value `name` of the first key of a `reg query` output */
export function regValue(keys: Map<string, Map<string, RegValue>>, name: string, key?: string): RegValue | undefined {
  const values = key ? keys.get(key) : keys.values().next().value;
  return values?.get(name);
}

export interface ScQuery {
  /** false: "The specified service does not exist as an installed service" (error 1060) */
  installed: boolean;
  /** e.g. 'RUNNING' (STATE : 4  RUNNING) */
  status: string | null;
  /** e.g. 'KERNEL_DRIVER' (TYPE : 1  KERNEL_DRIVER) */
  type: string | null;
  /** the failure line when sc failed otherwise */
  error?: string;
}

/** `sc query NAME` output */
export function parseScQuery(text: string): ScQuery {
  if (/FAILED 1060\b/.test(text)) return { installed: false, status: null, type: null };
  const failed = /^\[SC\].*FAILED.*$/m.exec(text);
  if (failed) return { installed: false, status: null, type: null, error: failed[0].trim() };
  const field = (name: string): string | null => new RegExp(`^\\s*${name}\\s*:\\s*[0-9a-fx]+\\s+([A-Z0-9_]+)`, 'm').exec(text)?.[1] ?? null;
  const status = field('STATE');
  if (!/SERVICE_NAME:/.test(text) || status === null) return { installed: false, status: null, type: null, error: 'not the output of sc query' };
  return { installed: true, status, type: field('TYPE') };
}

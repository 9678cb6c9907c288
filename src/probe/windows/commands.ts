// The commands the Windows probe reads, and how it gets their output: run on a live Windows host
// (reg.exe, sc.exe, each bounded by a timeout), read from ROOT/commands/ID.txt in a fixture tree.
import { execFileSync } from 'node:child_process';
import type { SystemView } from '../system.js';
import type { CommandRecord, WindowsService } from './types.js';
import { parseRegQuery } from './parse.js';

export const SERVICES: readonly WindowsService[] = ['ebpfcore', 'netebpfext', 'ebpfsvc'];

const UNINSTALL = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall';

/** id -> argv: the fixed commands (the uninstall entry's key comes from `uninstall-search`) */
export const COMMANDS: Readonly<Record<string, string[]>> = {
  'current-version': ['reg', 'query', 'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'],
  'processor-architecture': ['reg', 'query', 'HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment', '/v', 'PROCESSOR_ARCHITECTURE'],
  'uninstall-search': ['reg', 'query', UNINSTALL, '/s', '/f', 'eBPF for Windows', '/d'],
  'program-data': ['reg', 'query', 'HKLM\\SOFTWARE\\eBPF\\Providers\\ProgramData', '/s'],
  ...Object.fromEntries(SERVICES.map((s) => [`sc-${s}`, ['sc', 'query', s]])),
};

export type Outputs = Record<string, { text: string } | { error: string }>;

/** runs (live) or reads (fixture) one command */
function output(sys: SystemView, id: string, argv: string[]): { text: string } | { error: string } {
  if (sys.mode === 'fixture') {
    try {
      return { text: sys.readFile(`/commands/${id}.txt`).toString('utf8') };
    } catch (e) {
      return { error: `no recorded output (commands/${id}.txt): ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
    }
  }
  if (process.platform !== 'win32') return { error: 'not a Windows host' };
  try {
    return { text: execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 5000, windowsHide: true, stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    // reg/sc exit 1 with their answer on stdout (e.g. sc's FAILED 1060 for a missing service)
    const err = e as { stdout?: string; message?: string };
    if (err.stdout) return { text: err.stdout };
    return { error: err.message?.split('\n')[0] ?? String(e) };
  }
}

/** every command's output, and the record of what was run */
export function collect(sys: SystemView): { outputs: Outputs; records: CommandRecord[] } {
  const outputs: Outputs = {};
  const records: CommandRecord[] = [];
  const one = (id: string, argv: string[]): void => {
    const o = output(sys, id, argv);
    outputs[id] = o;
    records.push({ id, argv, read: 'text' in o, ...('error' in o ? { error: o.error } : {}) });
  };
  for (const [id, argv] of Object.entries(COMMANDS)) one(id, argv);
  // the MSI's uninstall entry: the key found by the search, queried whole (DisplayVersion, InstallLocation)
  const search = outputs['uninstall-search'];
  const key = search && 'text' in search ? [...parseRegQuery(search.text).keys()].find((k) => k.includes('\\Uninstall\\')) : undefined;
  if (key) one('uninstall-entry', ['reg', 'query', key]);
  return { outputs, records };
}

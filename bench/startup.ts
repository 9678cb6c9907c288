// Start-up breakdown of `wasm-bpf run` (run by run.ts, or alone:
//   node dist/bench/startup.js CLI GUEST.wasm [guest args...]
// ). Runs the real CLI once with WASM_BPF_TRACE_STARTUP=1 (src/trace.ts): the main thread and
// the guest's thread then write `# startup NAME MS` marks to stderr, MS since the process started.
// The guest should end by itself (bootstrap: `-t 0.2`). Prints one JSON line: {"marks": [[name, ms]...]}:
// the first of each mark, except `...:end` marks (the last one: e.g. the end of the last attach).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Mark = [string, number];

export function startupMarks(cli: string, args: string[], env: NodeJS.ProcessEnv = process.env): Mark[] {
  const r = spawnSync(process.execPath, [cli, 'run', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...env, WASM_BPF_TRACE_STARTUP: '1' },
  });
  const marks = new Map<string, number>();
  for (const line of r.stderr.split('\n')) {
    const m = /^# startup (\S+) ([\d.]+)( .*)?$/.exec(line);
    if (!m) continue;
    const [name, ms] = [m[1]!, Number(m[2])];
    if (!marks.has(name) || name.endsWith(':end')) marks.set(name, ms);
  }
  if (r.status !== 0 || marks.size === 0) throw new Error(`startup trace failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return [...marks];
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const [cli, ...args] = process.argv.slice(2);
  if (!cli || args.length === 0) {
    process.stderr.write('usage: startup.js CLI GUEST.wasm [args...]\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify({ marks: startupMarks(cli, args) })}\n`);
}

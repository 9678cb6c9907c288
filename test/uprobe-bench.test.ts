// The uprobe benchmark (bench/uprobe/) builds and its runner completes with tiny N on one entry kind:
// every row present, every record received; no timed assertion. Kernel rows only as root.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { kernelIds, ROOT, settledLeaks } from './helpers.js';

const root = process.getuid?.() === 0;

t.test('bench/uprobe/run.ts completes with N = 1000 on the nop5 entry', async (t) => {
  const before = root ? kernelIds() : undefined;
  const r = spawnSync(
    process.execPath,
    ['--import=tsx', path.join(ROOT, 'bench', 'uprobe', 'run.ts'), '--runs', '1', '--calls', '1000', '--kernel-calls', '1000', '--kinds', 'nop5', '--linger', '100', '--no-write'],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  t.equal(r.status, 0, `runner exit status\n${r.stderr.slice(-3000)}`);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('| nop5 |'));
  t.equal(rows.length, 4, 'entry, return, entry + return, eager entry');
  const expect: Array<[string, number]> = [
    ['| nop5 | entry, batching', 1000],
    ['| nop5 | return, batching', 1000],
    ['| nop5 | entry + return, batching', 2000],
    ['| nop5 | entry, eager', 1000],
  ];
  for (const [prefix, n] of expect) {
    const row = rows.find((l) => l.startsWith(prefix));
    t.ok(row, prefix);
    if (!row) continue;
    const cells = row.split(' | ');
    t.match(cells[4], /^\d/, `${prefix}: ours measured`);
    if (root) t.match(cells[3], /^-?\d/, `${prefix}: the kernel measured`);
    else t.equal(cells[3], 'not run', `${prefix}: no kernel row without root`);
    t.equal(cells[6], root ? `all ${n} / all ${n}` : `- / all ${n}`, `${prefix}: every record received`);
  }
  t.match(r.stdout, /^\| nop5, ptrace tier \| entry, batching consumer: CPU per hit, target \+ tracer \(wall [\d.]+ us\) \| [\d.]+ \| [^|]+ \| [\d.]+ us \| [^|]+ \| - \/ all 20000 \|/m, 'the ptrace tier measured, every record received');
  if (before) t.same(await settledLeaks(before), { progs: [], maps: [], links: [] }, 'no BPF object left behind');
});

t.test('bench/uprobe/run.ts and ab.ts: --help lists every option; an unknown one points to it', async (t) => {
  for (const script of ['run.ts', 'ab.ts']) {
    const file = path.join(ROOT, 'bench', 'uprobe', script);
    const help = spawnSync(process.execPath, ['--import=tsx', file, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    t.equal(help.status, 0, `${script} --help exits 0`);
    t.match(help.stdout, /^usage: /, `${script}: a usage line`);
    const src = (await import('node:fs')).readFileSync(file, 'utf8');
    const flags = [...new Set([...src.matchAll(/[af] === '(--[a-z-]+)'/g)].map((m) => m[1]!))];
    t.ok(flags.length >= 8, `${script}: ${flags.length} options parsed`);
    for (const f of flags) t.match(help.stdout, new RegExp(`^\\s+${f}\\b`, 'm'), `${script} --help: ${f}`);
    const bad = spawnSync(process.execPath, ['--import=tsx', file, '--bogus'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    t.not(bad.status, 0, `${script} --bogus fails`);
    t.match(bad.stderr, /unknown option --bogus \(--help lists them\)/, `${script}: the error names --help`);
  }
});

// Fuzzing in `npm test` (issue 14): seeded, bounded mutation loops over the matrix objects and test
// fixtures through the full load path (validation, libbpf open, kernel load, attach, map operations,
// close) and over guest modules through the Runtime (worker, WASI, host functions), in a driver process
// a supervisor restarts after a host crash or hang (test/fuzz/). Fixed seeds keep it reproducible; one
// more run takes a seed from the clock and prints it. Every saved case (test/fuzz/cases/) is replayed.
// The long run: `npm run fuzz -- --objects 20000 --modules 5000 --seed S`.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { CASES, formatFigures, fuzz, type FuzzFigures } from './fuzz/supervisor.js';
import { moduleInputs, objectInputs } from './fuzz/inputs.js';
import { ROOT } from './helpers.js';

const ADDON = path.join(ROOT, 'native', 'build', 'Release', 'wasm_bpf_native.node');
const DIST = path.join(ROOT, 'dist', 'src', 'runtime', 'runtime.js');
const skip = (process.getuid?.() !== 0 && 'needs root (bpf())') || (!fs.existsSync(ADDON) && 'native addon not built') || false;
const skipModules = skip || (!fs.existsSync(DIST) && 'dist/ not built (npm run build)') || false;

function expectClean(t: Test, f: FuzzFigures): void {
  t.comment(formatFigures(f));
  t.equal(f.crashes, 0, 'no host crash');
  t.equal(f.hangs, 0, 'no hang');
  t.equal(f.unclean, 0, 'no error outside the product\'s error classes');
  t.same({ progs: f.leaked.progs, maps: f.leaked.maps, links: f.leaked.links }, { progs: [], maps: [], links: [] }, 'no kernel object left (bpftool prog/map/link)');
  // /sys/fs/bpf is shared with every other checkout's tests: what appeared there is shown, not judged
  if (f.leaked.bpffs.length) t.comment(`new in /sys/fs/bpf meanwhile: ${f.leaked.bpffs.join(', ')}`);
}

const cases = (ext: string): string[] =>
  fs.existsSync(CASES) ? fs.readdirSync(CASES).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(CASES, f)) : [];

t.test('saved crash and hang cases replay as clean errors', { skip }, async (t) => {
  const objects = cases('.elf');
  const modules = cases('.wasm');
  t.ok(objects.length + modules.length > 0, `${objects.length} object and ${modules.length} module cases`);
  if (objects.length) expectClean(t, await fuzz({ kind: 'objects', files: objects, timeoutMs: 60_000 }));
  if (modules.length && !skipModules) expectClean(t, await fuzz({ kind: 'modules', files: modules, timeoutMs: 30_000 }));
});

const log = (l: string): void => void t.comment(l);

t.test('object mutants through the full load path (fixed seed)', { skip }, async (t) => {
  const f = await fuzz({ kind: 'objects', seed: 20261207, count: 1200, inputs: objectInputs(), timeoutMs: 60_000, budgetMs: 30_000, log });
  t.ok(f.run >= 200, `${f.run} mutants ran within the budget`);
  t.ok(f.errors > 0 && f.ok > 0, 'some mutants were refused and some loaded');
  expectClean(t, f);
});

t.test('module mutants through the Runtime (fixed seed)', { skip: skipModules }, async (t) => {
  const f = await fuzz({ kind: 'modules', seed: 20261207, count: 40, inputs: moduleInputs(), timeoutMs: 30_000, budgetMs: 25_000, runMs: 100, log });
  t.ok(f.run >= 10, `${f.run} mutants ran within the budget`);
  expectClean(t, f);
});

t.test('mutants of a seed taken from the clock', { skip }, async (t) => {
  const seed = Date.now() % 1_000_000;
  t.comment(`time-varying seed ${seed}: repeat with npm run fuzz -- --seed ${seed} --objects 400 --modules 15`);
  expectClean(t, await fuzz({ kind: 'objects', seed, count: 400, inputs: objectInputs(), timeoutMs: 60_000, budgetMs: 10_000, log }));
  if (!skipModules) expectClean(t, await fuzz({ kind: 'modules', seed, count: 15, inputs: moduleInputs(), timeoutMs: 30_000, budgetMs: 10_000, runMs: 100, log }));
});

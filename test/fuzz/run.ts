// `npm run fuzz -- --objects 20000 --modules 5000 --seed S`: the long fuzz run. Prints the figures
// (mutants run, clean errors, successes, host crashes, hangs, leaked kernel objects) and saves every
// crash or hang under test/fuzz/cases/. --raw: objects skip the project's validation (shows what
// libbpf alone does with the same mutants). --budget SECONDS: stop each kind after that long.
import { fuzz, formatFigures } from './supervisor.js';
import { moduleInputs, objectInputs } from './inputs.js';

const argv = process.argv.slice(2);
const get = (k: string, d: string): string => {
  const i = argv.indexOf(k);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
};
const objects = Number(get('--objects', '2000'));
const modules = Number(get('--modules', '500'));
const seed = Number(get('--seed', String(Date.now() % 1_000_000)));
const budget = Number(get('--budget', '0')) * 1000;
const raw = argv.includes('--raw');
const log = (l: string): void => void process.stdout.write(`${l}\n`);

log(`fuzz: seed ${seed} (repeat with --seed ${seed})`);
let bad = 0;
for (const [kind, count, inputs] of [
  ['objects', objects, objects > 0 ? objectInputs() : []],
  ['modules', modules, modules > 0 ? moduleInputs() : []],
] as const) {
  if (count <= 0) continue;
  const f = await fuzz({ kind, seed, count, inputs, raw, log, ...(budget ? { budgetMs: budget } : {}), timeoutMs: kind === 'objects' ? 60_000 : 30_000, progressEvery: kind === 'objects' ? 1000 : 250 });
  log(formatFigures(f));
  log(`  rate: ${((f.run / f.ms) * 1000).toFixed(1)} mutants/s`);
  for (const [msg, n] of f.topErrors) log(`  ${String(n).padStart(6)}  ${msg}`);
  bad += f.crashes + f.hangs + f.unclean + f.leaked.progs.length + f.leaked.maps.length + f.leaked.links.length + f.leaked.bpffs.length;
}
process.exitCode = bad ? 1 : 0;

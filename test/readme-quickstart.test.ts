// README's "Two commands", word for word: the first block is `.ci/setup` (which .ci/run, and so CI, runs
// first) and then a run of the bundled bootstrap example, run here as written; the second is the test command
// .ci/run runs after the set-up.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = /## Two commands[^\n]*\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
const ci = fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');

t.test('the first command: .ci/setup, then the bundled example runs as written', async (t) => {
  t.equal(blocks.length, 2, 'two commands');
  const [setup, example] = (blocks[0] ?? '').split(' && ');
  t.equal(setup, 'bash .ci/setup', 'it starts with the set-up');
  t.match(ci, /bash \.ci\/setup/, '.ci/run runs the same set-up first');
  t.ok(example, 'then the example');
  if (!example) return;
  // execs for bootstrap to report while it runs its 10 seconds
  const execs = spawn('sh', ['-c', 'for i in $(seq 40); do sleep 0.5; /bin/true; done'], { stdio: 'ignore' });
  t.teardown(() => execs.kill());
  const r = spawnSync('bash', ['-c', example], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `\`${example}\` exits 0: ${r.stderr.slice(-2000)}`);
  // libbpf-bootstrap's layout: a header, then TIME EVENT COMM PID PPID FILENAME/EXIT CODE columns
  t.match(r.stdout, /^TIME {5}EVENT COMM {13}PID {5}PPID {4}FILENAME\/EXIT CODE$/m, 'the header');
  t.match(r.stdout, /^\d\d:\d\d:\d\d EXEC  true {12} \d+ +\d+ +\/bin\/true$/m, 'it prints the execs it sees');
  t.match(r.stdout, /^\d\d:\d\d:\d\d EXIT  \S+ +\d+ +\d+ +\[\d+\]( \(\d+ms\))?$/m, 'and the exits');
});

t.test('the second command is what .ci/run runs after the set-up', async (t) => {
  t.equal(blocks[1], 'npm test && npm run matrix -- --check');
  t.match(ci, /^npm test 2>&1/m, '.ci/run: npm test');
  t.match(ci, /^npm run --silent matrix -- --check /m, '.ci/run: the matrix with --check');
});

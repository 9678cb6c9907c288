// The run command's surface: help, arguments, env, exit codes, and modules it must refuse clearly.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { abiGuest, BUILD, buildGuest, CLI, FIXTURES, ROOT, runCli } from './helpers.js';

const wasm = abiGuest();
const bad = (name: string, extra: string[] = []): string =>
  buildGuest(path.join(FIXTURES, 'bad', `${name}.c`), path.join(BUILD, `bad_${name}.wasm`), extra);

t.test('--help for the tool and for run', async (t) => {
  const a = runCli(['--help']);
  t.equal(a.code, 0);
  t.match(a.stdout, /wasm-bpf run \[options\] <module.wasm>/);
  const b = runCli(['run', '--help']);
  t.equal(b.code, 0);
  t.match(b.stdout, /--allow-cgroup PATH/);
  t.match(b.stdout, /--wrapper-module-name/);
});

t.test('usage errors exit 2 with a message', async (t) => {
  t.equal(runCli([]).code, 2);
  const r = runCli(['run', '--frobnicate', wasm]);
  t.equal(r.code, 2);
  t.match(r.stderr, /unknown option --frobnicate/);
  const e = runCli(['run', '--env', 'NOEQUALS', wasm]);
  t.equal(e.code, 2);
  t.match(e.stderr, /--env expects K=V/);
  const n = runCli(['run']);
  t.equal(n.code, 2);
  t.match(n.stderr, /no module given/);
});

t.test('argv, env and the guest exit code; the shorthand form', async (t) => {
  const r = runCli(['run', '--env', 'GREETING=hello world', wasm, 'args', 'x', 'y z']);
  t.equal(r.code, 7, 'exit code is the guest\'s proc_exit code');
  t.match(r.stdout, /^argv\[0\]=abi.wasm$/m);
  t.match(r.stdout, /^argv\[1\]=args$/m);
  t.match(r.stdout, /^argv\[3\]=y z$/m);
  t.match(r.stdout, /^env=hello world$/m);
  const s = runCli([wasm, 'args']);
  t.equal(s.code, 7);
  t.match(s.stdout, /^env=\(unset\)$/m, 'no host environment leaks into the guest');
  t.notMatch(s.stderr, /ExperimentalWarning/, 'no Node warnings on stderr');
});

t.test('a file that does not exist', async (t) => {
  const r = runCli(['run', '/nonexistent/app.wasm']);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot read \/nonexistent\/app.wasm: no such file/);
});

t.test('a file that is not Wasm, and a truncated module', async (t) => {
  const txt = path.join(BUILD, 'not-wasm.wasm');
  fs.writeFileSync(txt, 'hello, I am text\n');
  const r = runCli(['run', txt]);
  t.equal(r.code, 1);
  t.match(r.stderr, /not a WebAssembly module/);
  const cut = path.join(BUILD, 'truncated.wasm');
  fs.writeFileSync(cut, fs.readFileSync(wasm).subarray(0, 300));
  const c = runCli(['run', cut]);
  t.equal(c.code, 1);
  t.match(c.stderr, /malformed Wasm module|cannot instantiate/);
});

t.test('a module without _start', async (t) => {
  const r = runCli(['run', bad('reactor', ['-mexec-model=reactor'])]);
  t.equal(r.code, 1);
  t.match(r.stderr, /exports no _start/);
});

t.test('an import with a wrong signature is named, with the expected type', async (t) => {
  const r = runCli(['run', bad('wrong_sig')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /import wasm_bpf\.wasm_load_bpf_object has type \(i32\) -> i32, expected \(i32, i32\) -> i64/);
});

t.test('an unknown wasm_bpf import and an unknown import module', async (t) => {
  const r = runCli(['run', bad('unknown_import')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /imports wasm_bpf\.wasm_frobnicate, which this runtime does not provide/);
  const o = runCli(['run', bad('other_module')]);
  t.equal(o.code, 1);
  t.match(o.stderr, /imports env\.host_thing; this runtime provides wasi_snapshot_preview1, wasm_bpf and callback-wrapper/);
});

t.test('conventions: -V/--version, --help on every command, -j/-p, the process title', async (t) => {
  const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  for (const v of ['-V', '--version']) {
    const r = runCli([v]);
    t.equal(r.code, 0);
    t.equal(r.stdout, `wasm-bpf ${version}\n`, `${v}: the package's version`);
  }
  for (const cmd of [['run'], ['gen'], ['gen', 'skeleton'], ['check'], ['probe'], ['btf'], ['btf', 'fetch'], ['vm']]) {
    const r = runCli([...cmd, '--help']);
    t.equal(r.code, 0, `${cmd.join(' ')} --help exits 0`);
    t.match(r.stdout, /Usage|usage/, `${cmd.join(' ')} --help prints a usage`);
  }
  const main = runCli(['--help']).stdout;
  const desc = main.split('\n').filter((l) => /^  wasm-bpf \S/.test(l)).map((l) => /^(.*?\S {2,})\S/.exec(l)![1]!.length);
  t.equal(new Set(desc).size, 1, `the descriptions of the main usage are aligned (${[...new Set(desc)].join(', ')})`);
  // -j: one line of JSON (as bpftool); -p: indented
  const j = runCli(['check', '-j', path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm')]);
  t.equal(j.code, 0, j.stderr);
  t.equal(j.stdout.trimEnd().split('\n').length, 1, 'check -j: one line');
  const parsed = JSON.parse(j.stdout) as { objects: Array<{ maps: Array<{ name: string; type: string; typeId: number }>; programs: Array<{ name: string; type: string }> }> };
  t.same(parsed.objects[0]!.maps.find((m) => m.name === 'rb'), { name: 'rb', type: 'ringbuf', typeId: 27 }, 'map types by name (and number)');
  t.same(parsed.objects[0]!.programs.find((p) => p.name === 'handle_exec'), { name: 'handle_exec', section: 'tp/sched/sched_process_exec', type: 'tracepoint', typeId: 5 }, 'program types by name (and number)');
  const p = runCli(['check', '-p', path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm')]);
  t.ok(p.stdout.split('\n').length > 10, 'check -p: indented');
  t.same(JSON.parse(p.stdout), parsed, 'the same data');
  const probe = runCli(['probe', '-j']);
  t.equal(probe.code, 0, probe.stderr);
  t.equal((JSON.parse(probe.stdout) as { schemaVersion: number }).schemaVersion, 1, 'probe -j');
  const btf = runCli(['btf', 'path', '-p']);
  t.match(btf.stdout, /^\{\n {2}"source": /, 'btf path -p');
});

t.test('the process shows as wasm-bpf in ps, with its arguments', async (t) => {
  const app = path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm');
  const child = spawn(process.execPath, [CLI, 'run', app], { stdio: ['ignore', 'pipe', 'pipe'] });
  // the title is set as the CLI's main module starts (node's own start-up comes first)
  const t0 = Date.now();
  let comm = '';
  while (Date.now() - t0 < 15_000 && (comm = fs.readFileSync(`/proc/${child.pid}/comm`, 'utf8').trim()) !== 'wasm-bpf') await new Promise((r) => setTimeout(r, 50));
  const cmdline = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ');
  child.kill('SIGINT');
  await new Promise((r) => child.once('exit', r));
  t.equal(comm, 'wasm-bpf', '/proc/PID/comm (ps -o comm, top)');
  t.match(cmdline, new RegExp(`^wasm-bpf run ${app.replace(/[.]/g, '\\.')}`), '/proc/PID/cmdline (ps -o args)');
});

t.test('one style of colour and prefix on every command: on a terminal only, and never with NO_COLOR', async (t) => {
  const M = path.join(ROOT, 'matrix', 'build');
  // a pseudo-terminal (util-linux script): what a user at a terminal sees
  // the test runner's own NO_COLOR (and node options) are not the user's
  const userEnv: NodeJS.ProcessEnv = { ...process.env };
  delete userEnv['NO_COLOR'];
  delete userEnv['NODE_OPTIONS'];
  const tty = (cmd: string, env: NodeJS.ProcessEnv = userEnv): string =>
    spawnSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8', env, timeout: 60_000 }).stdout;
  const cli = `${process.execPath} ${CLI}`;
  const RED = '\x1b[31m', CYAN = '\x1b[36m', GREEN = '\x1b[32m', DIM = '\x1b[2m';
  const run = tty(`${cli} run ${M}/uprobe.wasm /bin/ls`);
  t.ok(run.includes(`${RED}wasm-bpf:\x1b[39m attaching program 'uprobe_add'`), 'run: an error\'s prefix in red');
  t.ok(run.includes(`${CYAN}hint:\x1b[39m check that /bin/ls defines`), 'run: a hint\'s word in cyan');
  t.ok(run.includes(`${DIM}wasm-bpf: (run with --verbose`), 'run: a note dim');
  const usage = tty(`${cli} check --bogus x`);
  t.ok(usage.includes(`${RED}wasm-bpf check:\x1b[39m unknown option --bogus`), 'check: the same prefix and colour for a usage error');
  const gen = tty(`${cli} gen frob`);
  t.ok(gen.includes(`${RED}wasm-bpf gen:\x1b[39m unknown subcommand`), 'gen: the same');
  const plan = tty(`${cli} check ${M}/bootstrap.wasm`);
  t.ok(plan.includes(`${GREEN}plan:\x1b[39m linux backend`), 'check: the plan in green, as probe\'s yes');
  const refused = tty(`${cli} check ${M}/kprobe.wasm`);
  t.ok(refused.includes(`${RED}plan: refused:\x1b[39m`) && refused.includes(`${CYAN}fix:\x1b[39m`), 'check: a refusal in red, its fix in cyan, as probe\'s no and fix');
  const plain = tty(`${cli} run ${M}/uprobe.wasm /bin/ls`, { ...userEnv, NO_COLOR: '1' });
  t.notOk(plain.includes('\x1b['), 'NO_COLOR: no escape at all');
  const piped = runCli(['run', path.join(M, 'uprobe.wasm'), '/bin/ls']);
  t.notOk(piped.stderr.includes('\x1b['), 'not a terminal: no escape at all');
  t.match(piped.stderr, /^wasm-bpf: attaching program 'uprobe_add'.*\nwasm-bpf: hint: check that/m, 'and the same text');
});

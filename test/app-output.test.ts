// The example apps' output (matrix/apps): the human layouts users of libbpf-bootstrap and bcc know
// (bootstrap, execve = execsnoop, opensnoop, runqlat's log2 histogram), read on the real kernel from
// events this test causes, and the `-j` machine format: escaped, and the same bytes from the Wasm
// guest and its native twin. (The matrix judges the apps by their -j events: matrix/harness/scenarios.ts.)
import t from 'tap';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CLI, ROOT, Running, ensureMounts, kernelIds, parseEvents, settledLeaks, sleep, untilEvent } from './helpers.js';

const M = path.join(ROOT, 'matrix', 'build');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-app-output-'));
t.teardown(() => fs.rmSync(TMP, { recursive: true, force: true }));
ensureMounts();
const before = kernelIds();
const COMM = fs.readFileSync('/proc/self/comm', 'utf8').trim();

/** every app started, so a failed check cannot leave one (and its kernel objects) behind */
const runs: Running[] = [];
function native(app: string, args: string[]): Running {
  const r = new Running(spawn(path.join(M, 'native', app), args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  runs.push(r);
  return r;
}
function wasm(app: string, args: string[]): Running {
  const r = new Running(spawn(process.execPath, [CLI, 'run', path.join(M, `${app}.wasm`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  runs.push(r);
  return r;
}
/** waits for the human layout's "# APP: attached" line, then its header */
async function attachedHuman(run: Running, app: string, header: string): Promise<void> {
  await run.waitFor(new RegExp(`^# ${app}: attached`), 60_000);
  await run.waitFor(new RegExp(`^${header.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`), 5_000);
}
/** runs fn until a stdout line matches re */
async function untilLine(run: Running, re: RegExp, fn: () => void, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const hit = run.lines(re)[0];
    if (hit !== undefined) return hit;
    if (Date.now() > deadline || run.done) throw new Error(`no line matching ${re}\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-2000)}`);
    fn();
    await sleep(50);
  }
}
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const tryOpen = (f: string): void => {
  try {
    fs.closeSync(fs.openSync(f, 'r'));
  } catch {
    /* a missing file is the point */
  }
};

t.test('the log2 histogram (hist.h) for known counts: buckets, counts, 40-star bars', async (t) => {
  const bin = path.join(TMP, 'app-print');
  const cc = spawnSync('gcc', ['-Wall', '-Werror', '-O2', '-I', path.join(ROOT, 'matrix', 'apps', 'common'), path.join(ROOT, 'test', 'fixtures', 'app-print.c'), '-o', bin], { encoding: 'utf8' });
  t.equal(cc.status, 0, cc.stderr);
  const hist = (unit: string, ...n: number[]): string => spawnSync(bin, ['hist', unit, ...n.map(String)], { encoding: 'utf8' }).stdout;
  t.equal(
    hist('usecs', 1, 0, 4, 2),
    [
      '     usecs               : count    distribution',
      '         0 -> 1          : 1        |**********                              |',
      '         2 -> 3          : 0        |                                        |',
      '         4 -> 7          : 4        |****************************************|',
      '         8 -> 15         : 2        |********************                    |',
      '',
    ].join('\n'),
  );
  t.equal(hist('msecs'), '', 'nothing counted: nothing printed');
  const wide = hist('msecs', ...Array<number>(25).fill(0), 3).split('\n');
  t.equal(wide[0], '     msecs               : count    distribution');
  t.equal(wide.length, 28, 'a row per slot up to the last non-empty one');
  t.equal(wide[26], '  33554432 -> 67108863   : 3        |****************************************|', 'slot 25: [2^25, 2^26)');
  const json = spawnSync(bin, ['json', 'a"b\\c\td\x7fé'], { encoding: 'utf8' }).stdout;
  t.equal(json, '{"event":"test","s":"a\\"b\\\\c\\u0009d\\u007fé","neg":-2,"big":18446744073709551615,"slots":[1,0,4294967295]}\n', 'json.h: escapes, numbers as numbers');
  t.same(JSON.parse(json).s, 'a"b\\c\td\x7fé', 'and the string comes back');
});

t.test('runqlat: a log2 histogram per interval; -m in msecs; -P one per process; -j its slots', async (t) => {
  for (const [args, unit] of [[['1', '1'], 'usecs'], [['-m', '1', '1'], 'msecs']] as const) {
    const r = spawnSync(path.join(M, 'native', 'runqlat'), [...args], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    t.match(lines[0], /^# runqlat: attached/);
    t.equal(lines[1], '', 'a blank line before the histogram');
    t.equal(lines[2], `     ${unit.padEnd(19)} : count    distribution`, `the header names ${unit}`);
    const rows = lines.slice(3).filter((l) => l);
    t.ok(rows.length > 0, 'rows');
    const counts = rows.map((row, i) => {
      const m = /^ *(\d+) -> (\d+) *: (\d+) +\|([* ]{40})\|$/.exec(row);
      t.ok(m, `row ${i}: ${row}`);
      if (!m) return 0;
      t.equal(row.indexOf('->'), 11, 'aligned');
      t.same([Number(m[1]), Number(m[2])], [i ? 2 ** i : 0, 2 ** (i + 1) - 1], `bucket ${i}`);
      t.match(m[4], /^\**( *)$/, 'stars, then spaces');
      return Number(m[3]);
    });
    const max = Math.max(...counts);
    rows.forEach((row, i) => t.equal(/\|(\**)/.exec(row)?.[1]?.length, Math.floor((counts[i]! * 40) / max), `bar ${i} is count*40/max stars`));
  }
  const per = spawnSync(path.join(M, 'native', 'runqlat'), ['-P', '1', '1'], { encoding: 'utf8', timeout: 20_000 }).stdout.split('\n');
  const heads = per.flatMap((l, i) => (/^pid = \d+$/.test(l) ? [i] : []));
  t.ok(heads.length > 0, '-P: a histogram per process');
  t.ok(heads.every((i) => per[i - 1] === '' && per[i + 1] === '     usecs               : count    distribution'), '-P: a blank line, "pid = PID", then the histogram');
  const j = spawnSync(path.join(M, 'native', 'runqlat'), ['-j', '-m', '1', '1'], { encoding: 'utf8', timeout: 20_000 });
  const [attached, hist] = parseEvents(j.stdout);
  t.same(attached, { event: 'attached', app: 'runqlat' });
  t.match(hist, { event: 'hist', key: 0, unit: 'msecs', total: Number });
});

t.test('opensnoop: PID COMM FD ERR PATH; -x failed only; the same text and JSON from the Wasm build and the native one', async (t) => {
  const file = path.join(TMP, 'opensnoop-layout.txt');
  fs.writeFileSync(file, 'x');
  const missing = path.join(TMP, 'no such "file" \\ é');
  const header = `${'PID'.padEnd(6)} ${'COMM'.padEnd(16)}  FD ERR PATH`;
  const jsonLines: string[] = [];
  const humanRows: string[] = [];
  for (const start of [native, wasm]) {
    const run = start('opensnoop', ['-p', String(process.pid)]);
    await attachedHuman(run, 'opensnoop', header);
    const ok = await untilLine(run, new RegExp(`${esc(file)}$`), () => tryOpen(file));
    t.match(ok, new RegExp(`^${process.pid} +${esc(COMM)} +\\d+   0 ${esc(file)}$`), `a successful open: ${ok}`);
    t.equal(ok.indexOf(COMM), 7, 'COMM in its column');
    const bad = await untilLine(run, /no_such/, () => tryOpen(missing));
    t.equal(bad, `${String(process.pid).padEnd(6)} ${COMM.padEnd(16)}  -1   2 ${missing.replace(/ /g, '_')}`, 'a failed one: FD -1, ERR 2 (spaces shown as _)');
    humanRows.push(bad);
    t.equal((await run.interrupt('SIGINT')).code, start === native ? 0 : 130);

    const x = start('opensnoop', ['-x', '-p', String(process.pid)]);
    await attachedHuman(x, 'opensnoop', header);
    await untilLine(x, /no_such/, () => (tryOpen(file), tryOpen(missing)));
    t.same(x.lines(new RegExp(`${esc(file)}$`)), [], '-x: no successful opens');
    await x.interrupt('SIGINT');

    const j = start('opensnoop', ['-j', '-p', String(process.pid)]);
    await j.attached('opensnoop');
    t.equal(j.stdout.split('\n')[0], '{"event":"attached","app":"opensnoop"}', '-j: the first line says attached');
    const e = await untilEvent(j, (e) => e['filename'] === missing, 'the missing file', () => tryOpen(missing));
    t.match(e, { event: 'open', pid: process.pid, comm: COMM, ret: -2, flags: Number });
    jsonLines.push(j.stdout.split('\n').find((l) => l.includes('no such'))!);
    await j.interrupt('SIGINT');
  }
  t.equal(humanRows[0], humanRows[1], 'the same row from both builds');
  t.equal(jsonLines[0], jsonLines[1], 'the same JSON bytes from both builds');
  t.match(jsonLines[0], /"filename":"[^"]*no such \\"file\\" \\\\ é"/, 'quotes and backslashes escaped, UTF-8 as it is');
});

t.test('execve: execsnoop\'s PCOMM PID PPID RET ARGS; successful calls only, -x adds the failed ones (execsnoop\'s --fails)', async (t) => {
  const header = `${'PCOMM'.padEnd(16)} ${'PID'.padEnd(6)} ${'PPID'.padEnd(6)} RET ARGS`;
  const failing = (): void => void spawn('/bin/sh', ['-c', 'exec /wasm-bpf-no-such-program 2>/dev/null'], { stdio: 'ignore' });
  const run = native('execve', []);
  await attachedHuman(run, 'execve', header);
  const pids = new Set<number>();
  const row = await untilLine(run, /wasm-bpf-layout-marker$/, () => {
    failing();
    pids.add(spawn('/bin/echo', ['wasm-bpf-layout-marker'], { stdio: 'ignore' }).pid ?? 0);
  });
  const m = /^echo {13}(\d+) +(\d+) +0 \/bin\/echo wasm-bpf-layout-marker$/.exec(row);
  t.ok(m, `the row: ${row}`);
  t.ok(pids.has(Number(m?.[1])), 'PID: the echo this test ran');
  t.equal(Number(m?.[2]), process.pid, 'PPID: this test');
  t.equal(row, `${'echo'.padEnd(16)} ${m?.[1]!.padEnd(6)} ${String(process.pid).padEnd(6)}   0 /bin/echo wasm-bpf-layout-marker`, 'columns');
  await sleep(300);
  t.same(run.lines(/wasm-bpf-no-such-program/), [], 'without -x: no failed call (execsnoop\'s default)');
  await run.interrupt('SIGINT');

  const x = native('execve', ['-x']);
  await attachedHuman(x, 'execve', header);
  const failed = await untilLine(x, /wasm-bpf-no-such-program$/, () => {
    failing();
    spawn('/bin/echo', ['wasm-bpf-layout-marker-x'], { stdio: 'ignore' });
  });
  t.match(failed, /^sh {15}\d+ +\d+ +-2 \/wasm-bpf-no-such-program$/, '-x: a failed execve, RET -2');
  await untilLine(x, /wasm-bpf-layout-marker-x$/, () => void spawn('/bin/echo', ['wasm-bpf-layout-marker-x'], { stdio: 'ignore' }));
  t.pass('-x: and the successful ones');
  await x.interrupt('SIGINT');
});

t.test('bootstrap: TIME EVENT COMM PID PPID FILENAME/EXIT CODE (libbpf-bootstrap)', async (t) => {
  const run = native('bootstrap', []);
  await attachedHuman(run, 'bootstrap', 'TIME     EVENT COMM             PID     PPID    FILENAME/EXIT CODE');
  const pids: number[] = [];
  const mineRe = (): RegExp => new RegExp(`^\\S+ EXIT  sh {15}(${pids.join('|') || 'none'}) `);
  let mine: string | undefined;
  for (let i = 0; i < 100 && !mine; i++) {
    if (i % 10 === 0) pids.push(spawn('/bin/sh', ['-c', 'sleep 0.01; exit 3'], { stdio: 'ignore' }).pid ?? 0);
    mine = run.lines(mineRe())[0];
    if (!mine) await sleep(100);
  }
  const pid = Number(/^\S+ EXIT  sh +(\d+)/.exec(mine ?? '')?.[1]);
  const pad = (n: number): string => String(n).padEnd(7);
  t.match(mine, new RegExp(`^\\d\\d:\\d\\d:\\d\\d EXIT  sh {15}${pad(pid)} ${pad(process.pid)} \\[3\\] \\(\\d+ms\\)$`), `the exit row: ${mine}`);
  t.match(run.lines(new RegExp(`^\\S+ EXEC  sh {15}${pid} `))[0], new RegExp(`^\\d\\d:\\d\\d:\\d\\d EXEC  sh {15}${pad(pid)} ${pad(process.pid)} /bin/sh$`), 'the exec row');
  await run.interrupt('SIGINT');
});

t.test('sockfilter: PROTO SRC DST LEN columns', async (t) => {
  const run = native('sockfilter', ['lo']);
  await attachedHuman(run, 'sockfilter', `${'PROTO'.padEnd(6)} ${'SRC'.padEnd(21)} ${'DST'.padEnd(21)} LEN`);
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const src = sock.address().port;
  const port = 40000 + ((process.pid + 7) % 20000);
  const row = await untilLine(run, new RegExp(`^UDP +127\\.0\\.0\\.1:${src} `), () => void sock.send('hello', port, '127.0.0.1'));
  sock.close();
  t.match(row, new RegExp(`^${esc(`${'UDP'.padEnd(6)} ${`127.0.0.1:${src}`.padEnd(21)} ${`127.0.0.1:${port}`.padEnd(21)} `)}\\d+$`), `the row: ${row}`);
  await run.interrupt('SIGINT');
});

t.test('no program, map or link is left in the kernel', async (t) => {
  for (const r of runs) if (!r.done) await r.interrupt('SIGKILL');
  t.same(await settledLeaks(before), { progs: [], maps: [], links: [] });
});

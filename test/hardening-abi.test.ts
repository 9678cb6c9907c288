// Issue 14 (hardening), the host functions' side: re-entrant polls (point 7), record callbacks of the
// wrong type (point 8), and hostile arguments to every host function. Real kernel, real objects:
// test/fixtures/hardening-abi.c with probe.bpf.o embedded, run through the CLI on both poll paths
// (the direct one, and WASM_BPF_DIRECT_POLL=0).
import t from 'tap';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateSkeleton } from '../src/guest/skeleton.js';
import { Bytes, OP, T } from '../src/wasm/writer.js';
import { BUILD, GUEST_INCLUDE, FIXTURES, buildBpf, buildGuest, embed, ensureMounts, kernelIds, kv, runCli, settledLeaks, startCli } from './helpers.js';
import { directPaths } from './kernel-lib.js';

ensureMounts();
const before = kernelIds();
const obj = buildBpf(path.join(FIXTURES, 'probe.bpf.c'), path.join(BUILD, 'probe.bpf.o'));
const hdr = embed(obj, 'probe_obj', path.join(BUILD, 'probe_obj.h'));
const wasm = buildGuest(path.join(FIXTURES, 'hardening-abi.c'), path.join(BUILD, 'hardening-abi.wasm'), [], [hdr]);

const PATHS = { direct: {}, js: { WASM_BPF_DIRECT_POLL: '0' } } as const;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  v: Record<string, string>;
}

/** runs the guest, calling getppid() (which makes records) until it exits */
async function run(args: string[], env: Record<string, string> = {}, cliArgs: string[] = []): Promise<Run> {
  const r = startCli([...cliArgs, wasm, ...args], { env: { ...process.env, ...env } });
  await r.waitFor(/^# ready/);
  const deadline = Date.now() + 60_000;
  while (r.child.exitCode === null && r.child.signalCode === null && Date.now() < deadline) {
    for (let i = 0; i < 20; i++) void process.ppid;
    await new Promise((res) => setTimeout(res, 5));
  }
  if (Date.now() >= deadline) r.child.kill('SIGKILL');
  const { code, signal } = await r.exited;
  return { code, signal, stdout: r.stdout, stderr: r.stderr, v: kv(r.stdout) };
}

for (const [name, env] of Object.entries(PATHS)) {
  for (const size of [64, 512, 4096]) {
    for (const wrapper of [false, true]) {
      const how = wrapper ? "TinyGo's wrapper poll" : 'wasm_bpf_buffer_poll';
      t.test(`[${name}] point 7: a callback polling again (${size}-byte buffers, ${how}) gets -EBUSY, first and later polls; the run goes on`, async (t) => {
        const verbose = size === 4096 && !wrapper ? ['--verbose'] : [];
        const r = await run(['reenter', String(size), ...(wrapper ? ['wrapper'] : [])], env, verbose);
        t.equal(r.code, 0, `exit 0\n${r.stderr}`);
        if (verbose.length > 0 && name === 'direct' && directPaths()) t.match(r.stderr, /buffer_poll: served by the backend from Wasm/, 'later polls: the direct poll');
        t.notMatch(r.stderr, /call stack|RangeError/, 'no stack overflow');
        const v = r.v;
        t.ok(Number(v['first']) > 0, `the first poll delivered a batch (${v['first']})`);
        t.ok(Number(v['later_seen']) > 0, `later polls delivered records (${v['later_seen']})`);
        t.equal(v['later_err'], '0', 'no later poll failed');
        t.equal(v['nested_other'], '0', `every nested poll returned -EBUSY (other: ${v['nested_other_value']})`);
        t.equal(Number(v['nested_busy']), 5 * Number(v['seen']), 'five nested polls per record, each -EBUSY');
        t.equal(v['dup'], '0', 'no record delivered twice');
        t.equal(v['after_rb2'], '1', 'a poll outside the callbacks works afterwards');
        t.equal(v['close'], '0');
      });
    }
  }

  t.test(`[${name}] point 8: callbacks of the wrong type, imports, empty and missing slots: -EINVAL, never called; the guest goes on`, async (t) => {
    const r = await run(['cbtype'], env);
    t.equal(r.code, 0, `exit 0\n${r.stderr}`);
    const cases = ['i64_param', 'i64_result', 'one_param', 'no_param', 'wasi_same_type', 'wasi_other_type', 'wasm_bpf_poll', 'wasm_bpf_fd_by_name', 'null_slot', 'past_end', 'negative'];
    for (const c of cases) t.equal(r.v[c], '-22,-22,-22', `${c}: -EINVAL from a small and a large buffer, twice`);
    t.equal(r.v['wrong_called'], '0', 'no wrong callback was called');
    t.equal(r.v['good'], '1', 'a good callback then gets the records');
    t.equal(r.v['close'], '0');
    t.match(r.stderr, /the callback \(table entry \d+\) has type \(i32, i32, i64\) -> i32, expected \(i32, i32, i32\) -> i32: -EINVAL/);
    t.match(r.stderr, /has type \(i32, i32, i32\) -> i64, expected/);
    t.match(r.stderr, /has type \(i32\) -> i32, expected/);
    t.match(r.stderr, /has type \(\) -> \(\), expected/);
    t.match(r.stderr, /is the module's import wasi_snapshot_preview1\.path_unlink_file, not one of its own functions/);
    t.match(r.stderr, /is the module's import wasm_bpf\.wasm_bpf_buffer_poll, not one of its own functions/);
    t.match(r.stderr, /the callback \(table entry 0\) is empty/);
    t.match(r.stderr, /callback index 100000 is outside the function table/);
  });
}

t.test("point 8: TinyGo's callback export of the wrong type or not a function: -EINVAL, never called", async (t) => {
  const expect: Record<string, RegExp> = {
    cb_i64_param: /the callback export "cb_i64_param" has type \(i32, i32, i64\) -> i32, expected \(i32, i32, i32\) -> i32: -EINVAL/,
    cb_i64_result: /"cb_i64_result" has type \(i32, i32, i32\) -> i64/,
    cb_one: /"cb_one" has type \(i32\) -> i32/,
    cb_void: /"cb_void" has type \(\) -> \(\)/,
    memory: /the callback export "memory" is not a function: -EINVAL/,
    no_such_export: /exports no function "no_such_export"/,
  };
  for (const [exp, re] of Object.entries(expect)) {
    const r = await run(['gocb'], {}, ['-c', exp]);
    t.equal(r.code, 0, `${exp}: exit 0\n${r.stderr}`);
    t.equal(r.v['gocb'], '-22', `${exp}: -EINVAL (large buffer)`);
    t.equal(r.v['gocb_small'], '-22', `${exp}: -EINVAL (small buffer)`);
    t.equal(r.v['wrong_called'], '0', `${exp}: never called`);
    t.match(r.stderr, re, `${exp}: the reason on stderr`);
  }
  const good = await run(['gocb']);
  t.equal(good.code, 0, good.stderr);
  t.ok(Number(good.v['gocb']) > 0, `the right export gets the records (${good.v['gocb']})`);
});

for (const [name, env] of Object.entries(PATHS)) {
  for (const size of [512, 4096]) {
    t.test(`[${name}] a callback that closes the object being polled (${size}-byte buffer), then loads it again: the poll ends normally`, async (t) => {
      const r = await run(['close-in-cb', String(size)], env);
      t.equal(r.code, 0, r.stderr);
      const v = r.v;
      t.equal(v['close_in_cb'], '0', 'the close inside the callback succeeds');
      t.equal(v['poll'], '1', 'the poll returns the records it delivered');
      t.equal(v['reloaded'], '1', 'an object loaded inside the callback');
      t.equal(v['old_handle'], '-22', 'the closed handle is refused afterwards');
      t.equal(v['attach2'], '0');
      t.equal(v['new_object_records'], '1', "the new object's buffer delivers its own records");
      t.equal(v['close2'], '0');
    });

    t.test(`[${name}] a callback that calls exit(7) (${size}-byte buffer): exit code 7, objects closed`, async (t) => {
      const r = await run(['exit-in-cb', String(size)], env);
      t.equal(r.code, 7, r.stderr);
      t.match(r.stdout, /^exiting$/m);
      t.notMatch(r.stdout, /not reached/);
      t.notMatch(r.stderr, /Symbol|Error/);
    });
  }
}

/**
 * A module whose start function (a Wasm start section: it runs inside instantiation, before the
 * module's exports exist) calls the wasm_bpf import `name` of type `params` -> `result` with `args`;
 * it exports memory and an empty _start.
 */
function startSectionModule(name: string, params: number[], result: number, args: Array<number | bigint>): Uint8Array {
  const sec = (out: Bytes, id: number, c: Bytes): void => void out.byte(id).u32(c.len).bytes(c.out());
  const out = new Bytes().bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const fn = new Bytes().byte(0x60).u32(params.length);
  for (const p of params) fn.byte(p);
  sec(out, 1, new Bytes().u32(2).bytes(fn.u32(1).byte(result).out()).byte(0x60).u32(0).u32(0));
  sec(out, 2, new Bytes().u32(1).str('wasm_bpf').str(name).byte(0).u32(0));
  sec(out, 3, new Bytes().u32(2).u32(1).u32(1));
  sec(out, 5, new Bytes().u32(1).byte(0).u32(1));
  sec(out, 7, new Bytes().u32(2).str('memory').byte(2).u32(0).str('_start').byte(0).u32(2));
  sec(out, 8, new Bytes().u32(1));
  const f1 = new Bytes().u32(0);
  args.forEach((a, i) => (params[i] === T.i64 ? f1.byte(OP.i64_const).s64(BigInt(a)) : f1.byte(OP.i32_const).s32(Number(a))));
  f1.byte(OP.call).u32(0).byte(OP.drop).byte(OP.end);
  const f2 = new Bytes().u32(0).byte(OP.end);
  sec(out, 10, new Bytes().u32(2).u32(f1.len).bytes(f1.out()).u32(f2.len).bytes(f2.out()));
  return out.out();
}

t.test('wasm_bpf functions called from a start section (before the memory is reachable): a clear error or a clean failure', async (t) => {
  const load = path.join(BUILD, 'hardening-start-load.wasm');
  writeFileSync(load, startSectionModule('wasm_load_bpf_object', [T.i32, T.i32], T.i64, [0, 16]));
  const r = runCli([load]);
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /the module called a wasm_bpf function from its start function, before its instantiation finished: the host cannot reach its memory yet \(call wasm_bpf functions from _start or main\)/);
  t.notMatch(r.stderr, /before bind/);
  const ops = path.join(BUILD, 'hardening-start-ops.wasm');
  writeFileSync(ops, startSectionModule('wasm_bpf_map_operate', [T.i32, T.i32, T.i32, T.i32, T.i32, T.i64], T.i32, [3, 1, 0, 8, 0, 0n]));
  for (const env of [{}, { WASM_BPF_DIRECT_MAP_OPS: '0' }]) {
    const o = runCli([ops], { env: { ...process.env, ...env } });
    t.equal(o.code, 0, `map_operate on no map of the guest fails cleanly (${JSON.stringify(env)}): ${o.stderr}`);
  }
  const close = path.join(BUILD, 'hardening-start-close.wasm');
  writeFileSync(close, startSectionModule('wasm_close_bpf_object', [T.i64], T.i32, [1n]));
  t.equal(runCli([close]).code, 0, 'closing a handle that does not exist fails cleanly');
});

for (const [name, env] of Object.entries(PATHS)) {
  t.test(`[${name}] random hostile calls of every host function (seeded; pointers at and past the end of memory, wrapping lengths, closed and made-up handles, other fds, wrong callbacks, calls from callbacks): the guest stays alive`, async (t) => {
    // (longer: WASM_BPF_ABI_FUZZ_SEEDS=N runs seeds 1..N; 8 seeds x 5000 calls on both paths passed)
    const seeds = Number(process.env['WASM_BPF_ABI_FUZZ_SEEDS'] ?? '2');
    for (let seed = 1; seed <= seeds; seed++) {
      const r = await run(['random', String(seed), '1500'], env);
      t.equal(r.code, 0, `seed ${seed}: exit 0\n${r.stderr.slice(-2000)}`);
      t.equal(r.v['alive'], '1', `seed ${seed}: the guest finished its ${r.v['calls']} calls (${r.v['in_callbacks']} callbacks)`);
      t.notMatch(r.stderr, /trapped|TypeError|RangeError|Symbol\(|internal error/, `seed ${seed}: no trap, no JavaScript error`);
    }
  });
}

t.test('a guest that makes the host log a lot while stderr is a pipe nobody reads for a while: the run goes on', async (t) => {
  const r = startCli([wasm, 'spam', '20000']);
  await r.waitFor(/^# ready/);
  r.child.stderr!.pause(); // the pipe fills up (64 KiB): the host's writes meet EAGAIN
  await new Promise((res) => setTimeout(res, 1500));
  r.child.stderr!.resume();
  const { code } = await r.exited;
  t.equal(code, 0, r.stderr.slice(-500));
  t.equal(kv(r.stdout)['bad'], '20000', 'every bad poll got -EINVAL');
  t.equal(r.stderr.split('\n').filter((l) => /callback index \d+ is outside the function table/.test(l)).length, 20000, 'no line lost');
});

// ---- point 11: gen skeleton with names the object chose ----------------------------------------

/** `bytes` with every occurrence of `from` replaced by `to` (padded with NULs to the same length) */
function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const a = Buffer.from(from, 'latin1');
  const b = Buffer.alloc(a.length);
  Buffer.from(to, 'latin1').copy(b);
  if (Buffer.from(to, 'latin1').length > a.length) throw new Error(`'${to}' is longer than '${from}'`);
  const out = Buffer.from(bytes);
  let n = 0;
  for (let i = out.indexOf(a); i >= 0; i = out.indexOf(a, i + a.length)) {
    b.copy(out, i);
    n++;
  }
  if (n === 0) throw new Error(`'${from}' is not in the object`);
  return new Uint8Array(out);
}

t.test('point 11: names from the object cannot inject code into the skeleton: valid C and C++, no injected token', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wasm-bpf-hardening-skel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const inc = readdirSync('/usr/include').find((e) => e.endsWith('-linux-gnu') && existsSync(`/usr/include/${e}/asm/types.h`));
  // what the crafted object's names become (each replaces a placeholder of the same length or longer)
  const names: Array<[string, string]> = [
    ['.data.' + 'p'.repeat(23), '.data.x*/ injected_code(); /*'], // a section name closing a comment
    ['.rodata.' + 'q'.repeat(24), '.rodata.y\\\n*/ injected_two(); /*'], // a backslash-newline splice, then the same
    ['.data.' + 'r'.repeat(21), '.data.??/\n injected_3();'], // a trigraph backslash, a newline
    ['kw_int_', 'int'], // a variable named like a keyword
    ['kw_for_', 'for'], // a map named like a keyword
    ['kw_while_', 'while'], // a program named like a keyword
    ['mac_null', 'NULL'], // a map named like a macro of the headers
    ['dup_aa', 'dup.a'], // two maps whose identifiers are the same once sanitized
    ['dup_bb', 'dup-a'],
    ['str_lit_xxxxxxxxxxxx', 'a"); injected_4("'], // a map name closing a string literal
    ['__pad_0x', '__pad_0'], // a variable named like the generator's padding
  ];
  const src = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
char c1 SEC("${names[0]![0]}") = 1;
int kw_int_ SEC("${names[0]![0]}") = 2;
int __pad_0x SEC("${names[0]![0]}") = 3;
const volatile int cfg SEC("${names[1]![0]}") = 4;
int other SEC("${names[2]![0]}") = 5;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); } kw_for_ SEC(".maps"), mac_null SEC(".maps"), dup_aa SEC(".maps"), dup_bb SEC(".maps"), str_lit_xxxxxxxxxxxx SEC(".maps");
SEC("tp/syscalls/sys_enter_getppid")
int kw_while_(void *ctx) { __u32 k = 0; __u32 *v = bpf_map_lookup_elem(&kw_for_, &k); if (v) *v = c1 + kw_int_ + __pad_0x + cfg + other; return 0; }
`;
  for (const debug of [true, false]) {
    const c = path.join(dir, 'crafted.bpf.c');
    const o = path.join(dir, 'crafted.bpf.o');
    writeFileSync(c, src);
    execFileSync('clang-16', [...(debug ? ['-g'] : []), '-O2', '-target', 'bpf', ...(inc ? [`-I/usr/include/${inc}`] : []), '-c', c, '-o', o]);
    let obj = new Uint8Array(readFileSync(o));
    for (const [from, to] of names) if (debug || !from.startsWith('kw_int') && !from.startsWith('__pad')) obj = patch(obj, from, to);
    const header = generateSkeleton(obj, 'crafted');
    const h = path.join(dir, 'crafted.skel.h');
    writeFileSync(h, header);
    const main = path.join(dir, 'main.c');
    writeFileSync(main, '#include "crafted.skel.h"\nint main(void) { struct crafted *s = crafted__open(); if (!s) return 1; crafted__destroy(s); return 0; }\n');
    const cc = spawnSync('clang-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-fsyntax-only', '-Wall', '-Wextra', '-Werror', `-I${GUEST_INCLUDE}`, `-I${dir}`, main], { encoding: 'utf8' });
    t.equal(cc.status, 0, `BTF ${debug}: the header compiles as C with -Wall -Wextra -Werror\n${cc.stderr}`);
    const cpp = path.join(dir, 'main.cpp');
    writeFileSync(cpp, '#include "crafted.skel.h"\nint main() { auto *s = crafted::open(); if (!s) return 1; crafted::destroy(s); return 0; }\n');
    const cx = spawnSync('clang++-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-fsyntax-only', '-Wall', `-I${GUEST_INCLUDE}`, `-I${dir}`, cpp], { encoding: 'utf8' });
    t.equal(cx.status, 0, `BTF ${debug}: and as C++\n${cx.stderr}`);
    // the tokens the compiler sees: comments gone (-E), string literals taken out
    const pre = spawnSync('clang-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-E', '-P', `-I${GUEST_INCLUDE}`, h], { encoding: 'utf8' });
    t.equal(pre.status, 0, pre.stderr);
    const tokens = pre.stdout.replace(/"(\\.|[^"\\\n])*"/g, '""');
    // (identifiers made of the names, like data_x___injected_code______, are the generator's own)
    t.notMatch(tokens, /\binjected/, `BTF ${debug}: no injected token outside comments and strings`);
    t.match(header, /struct bpf_map \*for_;/, 'a keyword map name is mangled');
    t.match(header, /struct bpf_map \*NULL_;/, 'a macro map name is mangled');
    t.match(header, /struct bpf_map \*dup_a;\n\t\tstruct bpf_map \*dup_a_2;/, 'names equal once sanitized are made unique');
    t.match(header, /struct bpf_program \*while_;/);
    t.match(header, /\.name = "a\\"\); injected_4\(\\"";/, 'a name in a string literal is escaped');
    if (debug) {
      t.match(header, /\tint int_;/, 'a keyword variable name is mangled');
      t.match(header, /\tchar __pad_0_2\[3\];\n\tint int_;\n\tint __pad_0;/, 'padding never reuses a variable\'s name');
    }
  }
});

t.test('no program, map or link created by these tests is left in the kernel', async (t) => {
  const leaked = await settledLeaks(before);
  t.same(leaked, { progs: [], maps: [], links: [] });
});

// Tests for src/guest/skeleton.ts and `wasm-bpf gen`: the generated header compiles for
// wasm32-wasi with libbpf-wasm.h, its rodata/data views sit at the right offsets of the embedded
// object (checked in C and in the bytes the guest hands to the host at load), and odd objects
// (no BTF, legacy maps, kconfig, string sections) still compile.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { genCommand } from '../src/cli/gen.js';
import { checkSkeletonName, generateSkeleton, SkeletonError, skeletonName } from '../src/guest/skeleton.js';
import { BtfError } from '../src/object/btf.js';
import { ElfError, findElfObjects, parseElf } from '../src/object/elf.js';

const GUEST_INCLUDE = new URL('../src/guest', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'wasm-bpf-skel-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function multiarchInclude(): string[] {
  const d = readdirSync('/usr/include').find((e) => e.endsWith('-linux-gnu') && existsSync(`/usr/include/${e}/asm/types.h`));
  return d ? [`-I/usr/include/${d}`] : [];
}

function compileBpf(name: string, src: string, debug = true): string {
  const c = join(dir, `${name}.bpf.c`);
  const o = join(dir, `${name}.bpf.o`);
  writeFileSync(c, src);
  execFileSync('clang-16', [...(debug ? ['-g'] : []), '-O2', '-target', 'bpf', ...multiarchInclude(), '-c', c, '-o', o]);
  return o;
}

/** Compiles a guest for wasm32-wasi; returns [wasm path, compiler stderr] or throws with stderr. */
function compileGuest(name: string, mainC: string, defines: string[] = []): string {
  const c = join(dir, `${name}.c`);
  const wasm = join(dir, `${name}.wasm`);
  writeFileSync(c, mainC);
  const r = spawnSync(
    'clang-16',
    ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-Wall', '-Wextra', '-Werror', `-I${GUEST_INCLUDE}`, `-I${dir}`, ...defines, c, '-o', wasm, '-Wl,--allow-undefined,--export-table', '-Wl,--strip-debug'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`wasm compile failed:\n${r.stderr}`);
  return wasm;
}

/** Runs a guest under node:wasi with the wasm_bpf imports stubbed; the object passed to
 * wasm_load_bpf_object is written to `loadedPath`. */
const RUNNER = `
const { WASI } = require('node:wasi');
const fs = require('node:fs');
const [wasmPath, loadedPath] = process.argv.slice(1);
(async () => {
  const wasi = new WASI({ version: 'preview1', args: ['guest'], env: {}, returnOnExit: true });
  const mod = await WebAssembly.compile(fs.readFileSync(wasmPath));
  let memory;
  const stubs = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.module !== 'wasm_bpf') continue;
    if (imp.name === 'wasm_load_bpf_object') {
      stubs[imp.name] = (ptr, size) => { fs.writeFileSync(loadedPath, new Uint8Array(memory.buffer, ptr, size)); return 1n; };
    } else {
      stubs[imp.name] = () => 0;
    }
  }
  const inst = await WebAssembly.instantiate(mod, { wasi_snapshot_preview1: wasi.wasiImport, wasm_bpf: stubs });
  memory = inst.exports.memory;
  process.exitCode = wasi.start(inst);
})();
`;

function runGuest(wasm: string, loaded: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--no-warnings', '-e', RUNNER, wasm, loaded], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BOOTSTRAP_SRC = `
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct cfg { int a; char b[3]; __u64 c; };
typedef __u32 u32;
typedef unsigned long kernel_size_t;
enum mode { MODE_A, MODE_B = 7 };

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} exec_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

const volatile bool verbose = true;
const volatile int level = 3;
const volatile __u64 min_duration_ns = 1000;
const volatile __u32 pids[4] = { 11, 22, 33, 44 };
const volatile struct cfg conf = { 7, { 1, 2, 3 }, 9 };
const volatile u32 tu = 5;
const volatile kernel_size_t ksz = 6;
const volatile long lg = -2;
const volatile enum mode md = MODE_B;
static const volatile int hidden_static = 4;
int counter = 42;
int custom_val SEC(".data.custom") = 99;
__u64 hits;
void *last_ptr;
char comm[16];

static __noinline int helper(int x) { return x + hidden_static; }

SEC("tp/sched/sched_process_exec")
int handle_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 ts = bpf_ktime_get_ns();
	if (verbose)
		bpf_printk("exec %d %d", pid, level);
	bpf_map_update_elem(&exec_start, &pid, &ts, BPF_ANY);
	hits += helper(conf.a + pids[1] + tu + ksz + md + lg + custom_val) + min_duration_ns;
	counter++;
	comm[0] = 1;
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	void *e = bpf_ringbuf_reserve(&rb, 16, 0);
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}
`;

const MAIN_C = `
#include "bootstrap.skel.h"

static int fails;
#define CHECK(cond) do { if (!(cond)) { printf("FAIL %s\\n", #cond); fails++; } } while (0)

int main(void)
{
	struct bootstrap_bpf *skel = bootstrap_bpf__open();
	if (!skel) {
		printf("FAIL open\\n");
		return 1;
	}
	/* The views point into the embedded object at the sections' file offsets. */
	CHECK((unsigned char *)skel->rodata == bootstrap_bpf__elf_bytes + RODATA_OFF);
	CHECK((unsigned char *)skel->data == bootstrap_bpf__elf_bytes + DATA_OFF);
	CHECK(skel->bss != NULL);
	/* Initial values come from the object: offsets are right. */
	CHECK(skel->rodata->verbose == true);
	CHECK(skel->rodata->level == 3);
	CHECK(skel->rodata->min_duration_ns == 1000);
	CHECK(skel->rodata->pids[2] == 33);
	CHECK(skel->rodata->conf[0] == 7);
	CHECK(skel->rodata->tu == 5);
	CHECK(skel->rodata->ksz == 6);
	CHECK(skel->rodata->lg == -2);
	CHECK(skel->rodata->md == 7);
	CHECK(skel->data->counter == 42);
	CHECK(skel->data_custom->custom_val == 99);
	CHECK(skel->bss->hits == 0 && skel->bss->comm[15] == 0);

	/* Config before load patches the embedded object. */
	unsigned before = bootstrap_bpf__elf_bytes[RODATA_OFF + LEVEL_OFF];
	skel->rodata->level = 0x5a;
	skel->rodata->min_duration_ns = 0x1122334455667788ULL;
	skel->rodata->pids[3] = 0x77;
	skel->rodata->verbose = false;
	skel->data->counter = 1234;
	skel->data_custom->custom_val = -5;
	skel->bss->hits = 9;
	CHECK(before == 3);
	CHECK(bootstrap_bpf__elf_bytes[RODATA_OFF + LEVEL_OFF] == 0x5a);
	printf("rodata byte %u -> %u\\n", before, bootstrap_bpf__elf_bytes[RODATA_OFF + LEVEL_OFF]);

	printf("maps");
	for (int i = 0; i < skel->skeleton->map_cnt; i++)
		printf(" %s", skel->skeleton->maps[i].name);
	printf("\\nprogs");
	for (int i = 0; i < skel->skeleton->prog_cnt; i++)
		printf(" %s", bpf_program__name(*skel->skeleton->progs[i].prog));
	printf("\\n");
	CHECK(skel->maps.rb != NULL && skel->maps.rodata != NULL && skel->progs.handle_exit != NULL);
	CHECK(skel->skeleton->data == bootstrap_bpf__elf_bytes);
	CHECK(skel->skeleton->data_sz == sizeof(bootstrap_bpf__elf_bytes));

	CHECK(bootstrap_bpf__load(skel) == 0);
	CHECK(bootstrap_bpf__attach(skel) == 0);
	CHECK(skel->links.handle_exec != NULL);
	bootstrap_bpf__detach(skel);
	bootstrap_bpf__destroy(skel);

	skel = bootstrap_bpf__open_and_load();
	CHECK(skel != NULL);
	bootstrap_bpf__destroy(skel);
	printf("done fails=%d\\n", fails);
	return fails != 0;
}
`;

t.test('skeleton names', async (t) => {
  t.equal(skeletonName('bootstrap.bpf.o'), 'bootstrap_bpf');
  t.equal(skeletonName('/a/b/my-prog.bpf.o'), 'my_prog_bpf');
  t.equal(skeletonName('x.o'), 'x');
  t.equal(skeletonName('x.bpf'), 'x_bpf');
  t.equal(skeletonName('3d.o'), '_3d');
  t.equal(checkSkeletonName('ok_name'), undefined);
  t.match(checkSkeletonName('bad-name'), /C identifier/);
  t.match(checkSkeletonName('bpf_map'), /collides/);
});

t.test('bootstrap-style object: compiles, views match, config reaches the loaded object', async (t) => {
  const objPath = compileBpf('bootstrap', BOOTSTRAP_SRC);
  const obj = new Uint8Array(readFileSync(objPath));
  const elf = parseElf(obj);
  const header = generateSkeleton(obj, skeletonName(objPath));
  writeFileSync(join(dir, 'bootstrap.skel.h'), header);

  t.match(header, '#include "libbpf-wasm.h"');
  t.match(header, /static unsigned char bootstrap_bpf__elf_bytes\[\d+\] __attribute__\(\(aligned\(8\)\)\) = \{/);
  t.match(header, /struct bootstrap_bpf__rodata \{\n\tbool verbose;\n\tchar __pad_0\[3\];\n\tint level;\n\t__u64 min_duration_ns;\n\t__u32 pids\[4\];\n\tunsigned char conf\[16\]; \/\* struct cfg \*\/\n\t__u32 tu;/);
  t.match(header, /\t__u64 ksz;/, 'unsigned long (8 bytes in BPF) becomes __u64');
  t.match(header, /\t__s64 lg;/, 'long becomes __s64');
  t.match(header, /\t__u32 md; \/\* enum mode \*\//);
  t.match(header, /\t__u64 last_ptr; \/\* void \* \(64-bit BPF pointer\) \*\//);
  t.notMatch(header, /hidden_static|____fmt/, 'static variables are not exposed');
  t.match(header, /struct \{\n\t\tstruct bpf_map \*exec_start;\n\t\tstruct bpf_map \*rb;\n\t\tstruct bpf_map \*rodata;/);
  t.match(header, /s->maps\[\d\]\.name = "\.rodata";/);
  t.match(header, /struct \{\n\t\tstruct bpf_program \*handle_exec;\n\t\tstruct bpf_program \*handle_exit;\n\t\} progs;/);
  t.match(header, /_Static_assert\(offsetof\(struct bootstrap_bpf__rodata, level\) == 4,/);
  t.notMatch(header, /helper/, '.text functions are not programs');

  const sym = (n: string) => elf.symbols.find((s) => s.name === n)!;
  const rodata = elf.section('.rodata')!;
  const data = elf.section('.data')!;
  const wasm = compileGuest('main', MAIN_C, [`-DRODATA_OFF=${rodata.offset}`, `-DDATA_OFF=${data.offset}`, `-DLEVEL_OFF=${sym('level').value}`]);

  const loadedPath = join(dir, 'loaded.bpf.o');
  const r = runGuest(wasm, loadedPath);
  t.comment(r.stdout.trim().replace(/\n/g, ' | '));
  t.equal(r.status, 0, `guest exits 0 (stderr: ${r.stderr.trim()})`);
  t.notMatch(r.stdout, /FAIL/);
  t.match(r.stdout, 'rodata byte 3 -> 90');
  const dataMaps = elf.sections.filter((s) => ['.rodata', '.data', '.data.custom', '.bss'].includes(s.name)).map((s) => s.name);
  t.match(r.stdout, `maps exec_start rb ${dataMaps.join(' ')}\n`);
  t.match(r.stdout, 'progs handle_exec handle_exit\n');
  t.match(r.stdout, 'done fails=0');

  // The object the host receives carries the values written before load.
  const loaded = new Uint8Array(readFileSync(loadedPath));
  t.equal(loaded.length, obj.length);
  const le = parseElf(loaded);
  const dv = (secName: string) => {
    const s = le.section(secName)!;
    return new DataView(loaded.buffer, loaded.byteOffset + s.offset, s.size);
  };
  t.equal(dv('.rodata').getInt32(sym('level').value, true), 0x5a);
  t.equal(dv('.rodata').getBigUint64(sym('min_duration_ns').value, true), 0x1122334455667788n);
  t.equal(dv('.rodata').getUint32(sym('pids').value + 12, true), 0x77);
  t.equal(dv('.rodata').getUint8(sym('verbose').value), 0);
  t.equal(dv('.data').getInt32(sym('counter').value, true), 1234);
  t.equal(dv('.data.custom').getInt32(sym('custom_val').value, true), -5);
  let changed = 0;
  for (let i = 0; i < obj.length; i++) if (obj[i] !== loaded[i]) changed++;
  t.ok(changed > 0 && changed <= 20, `only the patched bytes differ (${changed})`);

  // findElfObjects finds the embedded object in the compiled module.
  const wasmBytes = new Uint8Array(readFileSync(wasm));
  const found = findElfObjects(wasmBytes);
  t.equal(found.length, 1, 'one embedded object');
  t.same(wasmBytes.subarray(found[0]!.offset, found[0]!.offset + found[0]!.size), obj, 'the embedded bytes are the object');
});

t.test('a wrong offset fails to compile', async (t) => {
  const obj = new Uint8Array(readFileSync(compileBpf('bootstrap2', BOOTSTRAP_SRC)));
  const header = generateSkeleton(obj, 'bootstrap_bpf');
  const broken = header.replace('offsetof(struct bootstrap_bpf__rodata, level) == 4', 'offsetof(struct bootstrap_bpf__rodata, level) == 5');
  t.not(broken, header);
  writeFileSync(join(dir, 'broken.skel.h'), broken);
  t.throws(() => compileGuest('broken', '#include "broken.skel.h"\nint main(void) { return 0; }\n'), /wrong offset of 'level'/);
});

t.test('objects without BTF, legacy maps, kconfig and string sections', async (t) => {
  const src = `
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int LINUX_KERNEL_VERSION __kconfig;
struct { unsigned int type, key_size, value_size, max_entries, map_flags; } legacy SEC("maps") = { 1, 4, 4, 16, 0 };
const volatile int cfg_val = 3;
int dval = 1;
SEC("kprobe/do_nanosleep")
int probe(void *ctx) { bpf_trace_printk("lit %d\\n", 8, LINUX_KERNEL_VERSION + cfg_val + dval); return 0; }
char LICENSE[] SEC("license") = "GPL";
`;
  for (const debug of [true, false]) {
    const name = debug ? 'odd' : 'nobtf';
    const obj = new Uint8Array(readFileSync(compileBpf(name, src, debug)));
    t.equal(parseElf(obj).section('.BTF') !== undefined, debug);
    const header = generateSkeleton(obj, `${name}_bpf`);
    writeFileSync(join(dir, `${name}.skel.h`), header);
    t.match(header, /struct bpf_map \*legacy;/, 'legacy map');
    t.match(header, /struct bpf_map \*rodata_str1_1;/, 'string literal section map');
    t.match(header, /\tvoid \*rodata_str1_1;/);
    if (debug) {
      t.match(header, /struct bpf_map \*kconfig;/);
      t.match(header, /struct odd_bpf__rodata \{\n\tint cfg_val;\n\};/);
    } else {
      t.match(header, /\tvoid \*rodata; \/\* no BTF for \.rodata \*\//);
      t.notMatch(header, /_Static_assert/);
    }
    const wasm = compileGuest(`${name}_main`, `#include "${name}.skel.h"
int main(void) {
	struct ${name}_bpf *s = ${name}_bpf__open();
	if (!s) return 1;
	printf("%s %d %s\\n", s->skeleton->maps[0].name, s->skeleton->map_cnt, bpf_program__name(s->progs.probe));
	${name}_bpf__destroy(s);
	return 0;
}
`);
    const r = runGuest(wasm, join(dir, `${name}.loaded`));
    t.equal(r.status, 0, `${name}: guest runs (${r.stderr.trim()})`);
    t.match(r.stdout, /^legacy \d probe\n$/);
  }
});

t.test('the header is valid C++ too', async (t) => {
  const obj = new Uint8Array(readFileSync(compileBpf('cxx', BOOTSTRAP_SRC)));
  writeFileSync(join(dir, 'cxx.skel.h'), generateSkeleton(obj, 'cxx_bpf'));
  const cpp = join(dir, 'cxx.cpp');
  writeFileSync(cpp, '#include "cxx.skel.h"\nint main() { auto *s = cxx_bpf::open(); if (!s) return 1; s->rodata->level = 1; size_t n; cxx_bpf::elf_bytes(&n); cxx_bpf::destroy(s); return 0; }\n');
  const r = spawnSync('clang++-16', ['--target=wasm32-wasi', '--sysroot=/usr', '-fsyntax-only', '-Wall', `-I${GUEST_INCLUDE}`, `-I${dir}`, cpp], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('generateSkeleton rejects what is not an eBPF object', async (t) => {
  t.throws(() => generateSkeleton(new TextEncoder().encode('not an elf file, definitely not one at all, no no no no no no no')), ElfError);
  const host = join(dir, 'host.o');
  writeFileSync(join(dir, 'host.c'), 'int f(void) { return 1; }\n');
  execFileSync('clang-16', ['-c', join(dir, 'host.c'), '-o', host]);
  t.throws(() => generateSkeleton(new Uint8Array(readFileSync(host))), { name: 'SkeletonError', message: /EM_BPF/ });
  t.throws(() => generateSkeleton(new Uint8Array(0), 'bad name'), SkeletonError);
});

t.test('fuzz: damaged objects only ever throw ElfError, BtfError or SkeletonError', async (t) => {
  const obj = new Uint8Array(readFileSync(compileBpf('fuzz', BOOTSTRAP_SRC)));
  const elf = parseElf(obj);
  const btf = elf.section('.BTF')!;
  const symtab = elf.sections.find((s) => s.name === '.symtab')!;
  // Flip bytes where the skeleton generator looks: headers, .BTF, .symtab.
  const regions: [number, number][] = [[0, 64], [btf.offset, btf.size], [symtab.offset, symtab.size], [obj.length - 64 * elf.sections.length, 64 * elf.sections.length]];
  let seed = 0x1234567;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  let ok = 0;
  let rejected = 0;
  for (let iter = 0; iter < 600; iter++) {
    const b = new Uint8Array(obj);
    for (let k = 1 + rand(3); k > 0; k--) {
      const [start, len] = regions[rand(regions.length)]!;
      b[start + rand(len)] = rand(256);
    }
    try {
      generateSkeleton(b, 'fuzz_bpf');
      ok++;
    } catch (e) {
      rejected++;
      if (!(e instanceof ElfError || e instanceof BtfError || e instanceof SkeletonError)) {
        t.fail(`iteration ${iter}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
  }
  t.comment(`fuzz: ${ok} generated, ${rejected} rejected`);
  t.ok(ok > 0 && rejected > 0);
});

/** Runs genCommand capturing what it writes. */
function gen(argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const ow = process.stdout.write;
  const ew = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: genCommand(argv), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

t.test('wasm-bpf gen', async (t) => {
  const objPath = compileBpf('cli', BOOTSTRAP_SRC);
  let r = gen(['skeleton', objPath]);
  t.equal(r.code, 0);
  t.match(r.out, 'struct cli_bpf {');
  t.equal(r.err, '');

  r = gen(['skeleton', objPath, '-n', 'myskel']);
  t.equal(r.code, 0);
  t.match(r.out, 'struct myskel {');

  const outFile = join(dir, 'out.skel.h');
  r = gen(['skeleton', '--name=other', objPath, '-o', outFile]);
  t.equal(r.code, 0);
  t.equal(r.out, '');
  t.match(readFileSync(outFile, 'utf8'), 'static inline struct other *other__open(void)');

  r = gen(['--help']);
  t.equal(r.code, 0);
  t.match(r.out, 'Usage: wasm-bpf gen skeleton');
  t.equal(gen(['skeleton', '--help']).code, 0);

  r = gen(['skeleton', join(dir, 'missing.bpf.o')]);
  t.equal(r.code, 1);
  t.match(r.err, /^wasm-bpf gen: cannot read .*missing\.bpf\.o.*no such file/);

  const notElf = join(dir, 'text.o');
  writeFileSync(notElf, 'hello, I am a text file and not an object file at all, sorry about that');
  r = gen(['skeleton', notElf]);
  t.equal(r.code, 1);
  t.match(r.err, /^wasm-bpf gen: .*text\.o: not an ELF file/);

  writeFileSync(join(dir, 'h.c'), 'int g(void) { return 2; }\n');
  execFileSync('clang-16', ['-c', join(dir, 'h.c'), '-o', join(dir, 'h.o')]);
  r = gen(['skeleton', join(dir, 'h.o')]);
  t.equal(r.code, 1);
  t.match(r.err, /^wasm-bpf gen: .*not an eBPF object/);

  for (const argv of [[], ['skeleton'], ['frobnicate', objPath], ['skeleton', objPath, '-n'], ['skeleton', objPath, '-n', 'bad-name'], ['skeleton', objPath, '--bogus'], ['skeleton', objPath, objPath]]) {
    r = gen(argv);
    t.equal(r.code, 2, `usage error: ${argv.join(' ')}`);
    t.match(r.err, /^wasm-bpf gen: /);
  }
});

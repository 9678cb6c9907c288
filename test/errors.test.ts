// Errors that name the real cause and the fix, in one line, without --verbose (issue 17): libbpf's own
// cause carried into the attach error, a cgroup path that is not cgroup2, a driver refusing native XDP,
// an eBPF object given to `run`, an object whose CO-RE relocations find no vmlinux BTF (libbpf's ESRCH).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, runCli } from './helpers.js';
import { explainLoadFailure } from '../backends/linux/explain.js';

const M = path.join(ROOT, 'matrix', 'build');

t.test('a uprobe on a function the binary lacks: libbpf\'s reason and how to list its functions', async (t) => {
  const r = runCli(['run', path.join(M, 'uprobe.wasm'), '/bin/ls']);
  t.match(r.stderr, /attaching program 'uprobe_add' to '\/bin\/ls:uprobe_target_add' failed: .*\(ENOENT\): elf: failed to find symbol 'uprobe_target_add' in '\/bin\/ls'/, 'the cause, without -v');
  t.match(r.stderr, /hint: check that \/bin\/ls defines a function 'uprobe_target_add': `nm -D --defined-only \/bin\/ls`/, 'the fix');
});

t.test('--allow-cgroup /etc: /etc is not a cgroup2 directory, said before the kernel\'s EBADF', async (t) => {
  const r = runCli(['run', '--allow-cgroup', '/etc', path.join(M, 'sockops.wasm'), '/etc']);
  t.match(r.stderr, /program 'sockops_handler' \(sockops\): \/etc is not a cgroup2 directory \(its filesystem's magic is 0x[0-9a-f]+\)/);
  t.match(r.stderr, /hint: give a directory under the cgroup2 mount, e\.g\. \/sys\/fs\/cgroup/);
  t.notMatch(r.stderr, /Bad file descriptor \(EBADF\)/, 'not the bare errno');
});

t.test('xdp on a device whose driver refuses native XDP: generic mode, and the log says so', async (t) => {
  // this host's eth0 is virtio_net, which refuses native XDP (EOPNOTSUPP) while the host offloads GRO/checksums
  const driver = fs.existsSync('/sys/class/net/eth0/device/driver') ? path.basename(fs.readlinkSync('/sys/class/net/eth0/device/driver')) : 'none';
  t.equal(driver, 'virtio_net', 'eth0 is a virtio_net device (the case this test is about)');
  const r = runCli(['run', path.join(M, 'xdp.wasm'), '-t', '1', 'eth0'], { timeout: 30_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /program 'xdp_count' \(xdp\): the driver of eth0 refused native XDP \(EOPNOTSUPP.*\); attached in generic \(skb\) mode/);
  t.match(r.stdout, /attached/);
  t.notMatch(r.stderr, /failed/);
});

t.test('run on an eBPF object: the app is the .wasm; check and gen skeleton are named', async (t) => {
  const r = runCli(['run', path.join(M, 'uprobe.bpf.o')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /not a WebAssembly module but an ELF file \(an eBPF object\?\): .*`wasm-bpf check OBJ\.bpf\.o`.*`wasm-bpf gen skeleton OBJ\.bpf\.o`/);
});

/** a failed bpf_object__load as the addon and the FFI path report it: errno, op, message and libbpf's log */
const loadError = (errno: number, code: string, text: string, log: string): Error =>
  Object.assign(new Error(`bpf_object__load: ${text} (${code})`), { errno, code, op: 'bpf_object__load', log });

t.test('a load without vmlinux BTF (libbpf\'s ESRCH): the missing BTF and how to give one, not "the kernel refused"', async (t) => {
  const log = [
    "libbpf: loading object 'bootstrap' from buffer",
    "libbpf: loading kernel BTF '/sys/kernel/btf/vmlinux': -5",
    'libbpf: failed to find valid kernel BTF',
    'libbpf: Error loading vmlinux BTF: -3',
    "libbpf: failed to load object 'bootstrap'",
  ].join('\n');
  const e = explainLoadFailure(loadError(3, 'ESRCH', 'No such process', log), [{ name: 'handle_exec', section: 'tp/sched/sched_process_exec', type: 5 }]);
  t.match(e.message, /^loading the object failed: No such process \(ESRCH\): its CO-RE relocations need this kernel's vmlinux BTF, which libbpf could not load \(\/sys\/kernel\/btf\/vmlinux: error -5\)$/);
  t.notMatch(e.message, /kernel refused/);
  t.match(e.hint, /no usable vmlinux BTF: .*--btfhub-mirror URL .*--btfhub-archive DIR .*wasm-bpf btf fetch.*CONFIG_DEBUG_INFO_BTF=y/);
  t.equal(e.errno, 3, 'the guest still gets ESRCH');
  // any other failure of the object as a whole: libbpf's first line that says why, not its closing one
  const other = explainLoadFailure(loadError(22, 'EINVAL', 'Invalid argument', "libbpf: map 'rb': failed to create: Invalid argument(-22)\nlibbpf: failed to load object 'x'"), []);
  t.equal(other.message, "loading the object failed: Invalid argument (EINVAL): map 'rb': failed to create: Invalid argument(-22)");
});

// live: a mount namespace whose /sys/kernel/btf/vmlinux is empty, BTFHub off (as when the default mirror is out of reach)
const canNs = process.getuid?.() === 0 && fs.existsSync('/sys/kernel/btf/vmlinux') && spawnSync('unshare', ['-m', 'true']).status === 0;
t.test('run a CO-RE app where the kernel has no vmlinux BTF: the cause and the fix in the one-line error', { skip: !canNs && 'needs root and unshare' }, async (t) => {
  const api = path.join(ROOT, 'dist', 'src', 'index.js');
  const script = `const { run } = await import(${JSON.stringify(api)}); const app = run(${JSON.stringify(path.join(M, 'bootstrap.wasm'))}, { args: ['-t', '1'], btfhub: false }); let err = ''; app.stderr.on('data', (d) => (err += d)); const code = await app.exit; process.stdout.write(JSON.stringify({ code, err }));`;
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-errors-')), 'no-btf.mjs');
  fs.writeFileSync(file, script);
  t.teardown(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  const r = spawnSync('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "${process.execPath}" "$0"`, file], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { code: number; err: string };
  t.equal(out.code, 1, 'the guest fails its load');
  t.match(out.err, /wasm_load_bpf_object: loading the object failed: No such process \(ESRCH\): its CO-RE relocations need this kernel's vmlinux BTF, which libbpf could not load/);
  t.match(out.err, /hint: this kernel has no usable vmlinux BTF: give wasm-bpf one from BTFHub/);
});

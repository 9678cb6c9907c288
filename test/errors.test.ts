// Errors that name the real cause and the fix, in one line, without --verbose (issue 17): libbpf's own
// cause carried into the attach error, a cgroup path that is not cgroup2, a driver refusing native XDP,
// an eBPF object given to `run`.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli } from './helpers.js';

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

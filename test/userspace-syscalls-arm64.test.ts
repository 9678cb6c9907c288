// Syscall tracepoints in the userspace backend on a real arm64 kernel: the matrix's opensnoop app (unchanged;
// opensnoop reads the tracepoint's record, so one .wasm serves both arches) over `sh -c 'cat FILE; cat MISSING'`
// launched in the matrix's arm64 6.1 qemu guest (matrix/guests/boot.sh; arm64-build.sh cross-builds the
// agent and wbpf-ptrace into the cache). The agent has no arm64 syscall site rewriter, so the command goes to
// the ptrace tier (backends/userspace/attach/tier.ts): wbpf-ptrace makes it install a seccomp filter at its
// start (ptrace/sys.c, ptrace/arm64/sys.c) and runs the programs at its openat stops. Checked: as root
// (--backend userspace) and as uid 65534 (routed by the selection, and --backend userspace), cat's events
// equal the kernel backend's field by field (its fds aside: the launched command's first free fd differs
// between backends), --verbose names the tier and why, no tracer is left. Needs qemu-system-aarch64 and the
// cross compiler (matrix/guests/setup-host.sh): without them this test fails, it does not skip.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from './helpers.js';

t.setTimeout(900_000);

interface Open {
  pid: number;
  comm: string;
  ret: number;
  flags: number;
  filename: string;
}

const RUNS = ['kernel', 'root', 'nobody', 'nobodyu'] as const;
const TARGET = '/tmp/os/target.txt', MISSING = '/no-such-file-arm64sys';

t.test('opensnoop on launched commands in the arm64 6.1 guest', async (tt) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-bpf-arm64-sys-'));
  tt.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const script = path.join(tmp, 'guest.sh');
  fs.writeFileSync(script, [
    'echo "arch $(uname -m) kernel $(uname -r)"',
    'M=$WASM_BPF_ROOT/matrix/build; W=/tmp/os; mkdir -p $W/home; chmod 755 $W; chown 65534:65534 $W/home',
    `echo x > ${TARGET}; chmod 644 ${TARGET}`,
    `CMD="cat ${TARGET} > /dev/null; cat ${MISSING} 2> /dev/null; exit 0"`,
    'CLI="$WASM_BPF_ROOT/bin/wasm-bpf.js"',
    // the guest's busybox setpriv cannot change ids: node does (as matrix/harness/cells.ts's AS_USER)
    `AS='const [f,...a]=process.argv.slice(1);const c=require("node:child_process").spawn(f,a,{stdio:"inherit",uid:65534,gid:65534,cwd:"/tmp/os/home",env:{...process.env,HOME:"/tmp/os/home"}});c.on("exit",(code,sig)=>process.exit(sig?128:code));'`,
    'run() { name=$1; shift; "$@" > $W/$name.out 2> $W/$name.err; echo "status $name $?"; sed "s/^/$name out: /" $W/$name.out; grep -v "^wasm-bpf: \\(probe\\|select\\|btf\\)" $W/$name.err | head -40 | sed "s/^/$name err: /"; }',
    'run kernel $WASM_BPF_NODE $CLI run --backend linux $M/opensnoop.wasm -j -- /bin/sh -c "$CMD"',
    'run root $WASM_BPF_NODE $CLI run -v --backend userspace $M/opensnoop.wasm -j -- /bin/sh -c "$CMD"',
    'run nobody $WASM_BPF_NODE -e "$AS" $WASM_BPF_NODE $CLI run -v $M/opensnoop.wasm -j -- /bin/sh -c "$CMD"',
    'run nobodyu $WASM_BPF_NODE -e "$AS" $WASM_BPF_NODE $CLI run -v --backend userspace $M/opensnoop.wasm -j -- /bin/sh -c "$CMD"',
    'sleep 1',
    'n=0; for p in /proc/[0-9]*; do grep -q wbpf-ptrace $p/cmdline 2>/dev/null && n=$((n+1)); done; echo "tracers left $n"',
    '',
  ].join('\n'));
  const r = spawnSync('bash', [path.join(ROOT, 'matrix', 'guests', 'boot.sh'), 'arm64-6.1', script], {
    encoding: 'utf8', timeout: 840_000, env: { ...process.env, TIMEOUT: '780' },
  });
  const out = r.stdout ?? '';
  tt.equal(r.status, 0, 'the guest booted and ran the script', { stderr: (r.stderr ?? '').slice(-3000), stdout: out.slice(-3000) });
  tt.match(out, /^arch aarch64 kernel 6\.1\./m, 'an arm64 6.1 kernel');
  const lines = (run: string, kind: 'out' | 'err'): string[] => out.split('\n').filter((l) => l.startsWith(`${run} ${kind}: `)).map((l) => l.slice(run.length + kind.length + 3));
  const opens = (run: string): Open[] => lines(run, 'out').flatMap((l) => {
    try {
      const e = JSON.parse(l) as Open & { event: string };
      return e.event === 'open' ? [e] : [];
    } catch {
      return [];
    }
  });
  // cat's opens as the kernel reports them, fds as 'fd'; the kernel run's cat is under the preloaded agent (its library's open)
  const shape = (es: Open[]): string[] => es.filter((e) => e.comm === 'cat' && !e.filename.endsWith('libwbpf_agent.so'))
    .map((e) => `${e.filename} flags=${e.flags} ${e.ret >= 0 ? 'fd' : `ret=${e.ret}`}`);
  for (const run of RUNS) tt.match(out, new RegExp(`^status ${run} 0$`, 'm'), `${run}: the app and its command exit 0`, { stdout: out.slice(-4000) });
  const reference = shape(opens('kernel'));
  tt.ok(reference.includes(`${TARGET} flags=0 fd`) && reference.includes(`${MISSING} flags=0 ret=-2`), 'the kernel backend sees both of cat\'s opens', { reference });
  for (const run of ['root', 'nobody', 'nobodyu'] as const) {
    const es = opens(run);
    tt.same(shape(es), reference, `${run}: cat's opens equal the kernel backend's, field by field (filename, flags, ret; fds as fds)`);
    const file = es.find((e) => e.comm === 'cat' && e.filename === TARGET);
    tt.ok(file && file.ret >= 0 && file.pid > 0, `${run}: cat's open of the file has an fd`, { file });
    tt.ok(es.some((e) => e.comm === 'sh' && e.filename === '/dev/null' && e.flags === 577 && e.ret >= 0), `${run}: the shell's redirection is seen too`);
    const err = lines(run, 'err').join('\n');
    tt.match(err, /ptrace tier: .*the app has syscall tracepoint programs and the agent rewrites no syscall sites on arm64/, `${run}: --verbose says the command went to the ptrace tier, and why`);
    tt.match(err, /syscalls\/sys_enter_openat \(syscall 56, layout from (tracefs|table)\) .*ptrace tier: a seccomp filter/, `${run}: sys_enter_openat is syscall 56, stopped at by the filter`);
    tt.match(err, /wbpf-ptrace: [1-9]\d* traced syscalls \(seccomp filter/, `${run}: the tracer ran the programs at its filter's stops`);
    tt.notMatch(err, /every syscall stops instead|disabled/, `${run}: no fallback, no program disabled`);
  }
  tt.match(lines('nobody', 'err').join('\n'), /no_new_privs/, 'uid 65534: the filter needed no_new_privs, and says so');
  tt.match(lines('nobody', 'err').join('\n'), /attached tracepoint__syscalls__sys_enter_openat/, 'uid 65534: routed to the userspace backend without --backend');
  tt.match(out, /^tracers left 0$/m, 'no wbpf-ptrace is left in the guest');
});

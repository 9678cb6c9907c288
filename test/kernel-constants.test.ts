// The one source of kernel constants (src/kernel/uapi.ts): the committed module is what src/kernel/gen.ts
// writes from this machine's uapi headers, its values are the kernel's, and the hand-kept copies agree.
import t from 'tap';
import fs from 'node:fs';
import { generate, parseEnum, parseErrno, parseFlags, parseHelpers, readHeaders, UAPI_MODULE } from '../src/kernel/gen.js';
import { ATTACH_TYPE, BPF_CMD, BPF_F, BPF_PSEUDO, BPF_RB, BPF_UPDATE, BTF_KIND, CAP, ERRNO, ERRNO_NAME, HELPER, HELPER_NAME, LINK_TYPE, MAP_TYPE, PERF_COUNT_SW, PERF_TYPE, PROG_TYPE } from '../src/kernel/uapi.js';
import { scanBtf } from '../src/probe/btf.js';

const HEADERS = fs.existsSync('/usr/include/linux/bpf.h') && fs.existsSync('/usr/include/linux/version.h');

t.test('the committed module is what the generator writes from the installed headers', { skip: !HEADERS && 'no uapi headers' }, async (t) => {
  const want = generate(readHeaders());
  const have = fs.readFileSync(UAPI_MODULE, 'utf8');
  t.ok(have === want, 'src/kernel/uapi.ts is out of date: regenerate it with `node --import=tsx src/kernel/gen.ts` and commit it');
});

t.test('known values', async (t) => {
  t.equal(PROG_TYPE.KPROBE, 2);
  t.equal(PROG_TYPE.SYSCALL, 31);
  t.equal(PROG_TYPE.NETFILTER, 32);
  t.equal(MAP_TYPE.RINGBUF, 27);
  t.equal(MAP_TYPE.PERF_EVENT_ARRAY, 4);
  t.equal(MAP_TYPE.ARENA, 33);
  t.equal(ATTACH_TYPE.CGROUP_INET_INGRESS, 0);
  t.equal(ATTACH_TYPE.TRACE_FENTRY, 24);
  t.equal(ATTACH_TYPE.TRACE_UPROBE_MULTI, 48);
  t.equal(LINK_TYPE.PERF_EVENT, 7);
  t.equal(BPF_CMD.PROG_LOAD, 5);
  t.equal(BPF_CMD.PROG_RUN, BPF_CMD.PROG_TEST_RUN);
  t.equal(BPF_UPDATE.NOEXIST, 1);
  t.equal(BPF_F.LOCK, 4);
  t.equal(BPF_F.SLEEPABLE, 16);
  t.equal(BPF_F.INNER_MAP, 0x1000);
  t.equal(BPF_F.CURRENT_CPU, 0xffffffff);
  t.equal(BPF_F.LINK, 0x2000);
  t.equal(BPF_PSEUDO.MAP_FD, 1);
  t.equal(BPF_PSEUDO.MAP_VALUE, 2);
  t.equal(BPF_RB.FORCE_WAKEUP, 2);
  t.equal(BPF_RB.PROD_POS, 3);
  t.equal(BTF_KIND.FUNC_PROTO, 13);
  t.equal(BTF_KIND.ENUM64, 19);
  t.equal(PERF_TYPE.TRACEPOINT, 2);
  t.equal(PERF_COUNT_SW.BPF_OUTPUT, 10);
  t.equal(CAP.SYS_ADMIN, 21);
  t.equal(CAP.BPF, 39);
  t.equal(HELPER.map_lookup_elem, 1);
  t.equal(HELPER.ringbuf_output, 130);
  t.equal(HELPER.get_attach_cookie, 174);
  t.equal(HELPER.cgrp_storage_delete, 211);
  t.equal(HELPER_NAME[25], 'perf_event_output');
  for (const [n, id] of Object.entries(HELPER)) t.equal(HELPER_NAME[id], n, `HELPER_NAME[${id}]`);
  t.equal(ERRNO.EPERM, 1);
  t.equal(ERRNO.EWOULDBLOCK, 11);
  t.equal(ERRNO.EOPNOTSUPP, 95);
  t.equal(ERRNO.ENOTSUPP, 524);
  t.equal(ERRNO_NAME[11], 'EAGAIN');
  t.equal(ERRNO_NAME[524], 'ENOTSUPP');
});

t.test('errno values agree with the C library Node was built on', async (t) => {
  const { errno } = (await import('node:os')).constants;
  for (const [n, v] of Object.entries(errno)) if (n !== 'ENOTSUP') t.equal((ERRNO as Record<string, number>)[n], v, n);
});

t.test('the running kernel agrees where its BTF has the enum', { skip: !fs.existsSync('/sys/kernel/btf/vmlinux') && 'no vmlinux BTF' }, async (t) => {
  const hits = scanBtf(fs.readFileSync('/sys/kernel/btf/vmlinux'), [
    { kind: 'ENUM', name: 'bpf_prog_type' },
    { kind: 'ENUM', name: 'bpf_map_type' },
    { kind: 'ENUM', name: 'bpf_attach_type' },
    { kind: 'ENUM', name: 'bpf_func_id' },
  ]);
  const check = (enumName: string, prefix: string, table: Record<string, number>): void => {
    const values = new Map(hits.get(`ENUM:${enumName}`)?.values ?? []);
    if (values.size === 0) return;
    for (const [n, v] of Object.entries(table)) if (values.has(prefix + n)) t.equal(values.get(prefix + n), v, `${prefix}${n}`);
  };
  check('bpf_prog_type', 'BPF_PROG_TYPE_', PROG_TYPE);
  check('bpf_map_type', 'BPF_MAP_TYPE_', MAP_TYPE);
  check('bpf_attach_type', 'BPF_', ATTACH_TYPE);
  check('bpf_func_id', 'BPF_FUNC_', HELPER);
});

t.test('the parsers', async (t) => {
  t.same([...parseEnum('enum e { A_X, A_Y = 5, A_Z, A_W = A_Y, A_MAX, __A_MAX };', 'e', 'A_')], [['X', 0], ['Y', 5], ['Z', 6], ['W', 5]]);
  t.same([...parseHelpers('#define ___BPF_FUNC_MAPPER(FN, ctx...)\t\\\n\tFN(unspec, 0, ##ctx)\t\\\n\tFN(map_lookup_elem, 1, ##ctx)\t\\\n\t/* */\n')], [['unspec', 0], ['map_lookup_elem', 1]]);
  t.same([...parseHelpers('#define __BPF_FUNC_MAPPER(FN)\t\\\n\tFN(unspec),\t\\\n\tFN(map_lookup_elem),\t\\\n\t/* */\n')], [['unspec', 0], ['map_lookup_elem', 1]]);
  t.same([...parseFlags('#define BPF_F_A\t(1U << 3)\nenum {\n\tBPF_F_B = (1ULL << 32), /* x */\n\tBPF_F_C = BPF_F_A,\n#define BPF_F_D (BPF_F_A | BPF_F_B)\n};')], [['A', 8], ['B', 2 ** 32], ['C', 8], ['D', 2 ** 32 + 8]]);
  t.same([...parseFlags('#define BPF_RB_A 1\nenum { BPF_RB_B = (1ULL << 1) };', 'BPF_RB_')], [['A', 1], ['B', 2]]);
  const e = parseErrno('#define\tEPERM\t\t 1\t/* x */\n#define\tEAGAIN\t\t11\n', '#define\tEWOULDBLOCK\tEAGAIN\n');
  t.equal(e.get('EWOULDBLOCK'), 11);
  t.equal(e.get('ENOTSUPP'), 524);
  t.throws(() => parseEnum('enum f { A };', 'e', 'A_'), /enum e not found/);
});

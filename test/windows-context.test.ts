// The context pass of the Windows translation (backends/windows/translate/ctxflow.ts, context.ts) on
// hand-assembled code: which loads are the context's, what is refused rather than guessed, the XDP actions.
import t from 'tap';
import { ctxFlow, CtxFlowError } from '../backends/windows/translate/ctxflow.js';
import { translateContext } from '../backends/windows/translate/context.js';
import { WIN_PROG_TYPE } from '../src/kernel/ebpf-windows.js';

const I = (code: number, dst: number, src: number, off: number, imm: number): number[] => {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  b[0] = code;
  b[1] = (src << 4) | dst;
  dv.setInt16(2, off, true);
  dv.setInt32(4, imm, true);
  return [...b];
};
const prog = (...xs: number[][]): Uint8Array => new Uint8Array(xs.flat());
const LDXW = (d: number, s: number, off: number): number[] => I(0x61, d, s, off, 0);
const LDXDW = (d: number, s: number, off: number): number[] => I(0x79, d, s, off, 0);
const STXDW = (d: number, s: number, off: number): number[] => I(0x7b, d, s, off, 0);
const MOV = (d: number, s: number): number[] => I(0xbf, d, s, 0, 0);
const MOVI = (d: number, imm: number): number[] => I(0xb7, d, 0, 0, imm);
const ADDI = (d: number, imm: number): number[] => I(0x07, d, 0, 0, imm);
const JEQI = (d: number, imm: number, off: number): number[] => I(0x15, d, 0, off, imm);
const JA = (off: number): number[] => I(0x05, 0, 0, off, 0);
const CALL = (id: number): number[] => I(0x85, 0, 0, 0, id);
const PCALL = (off: number): number[] => I(0x85, 0, 1, 0, off);
const EXIT = I(0x95, 0, 0, 0, 0);
const flow = (b: Uint8Array): ReturnType<typeof ctxFlow> => ctxFlow(b, 0, b.length / 8);
const err = (b: Uint8Array): string => {
  try {
    flow(b);
    return 'no error';
  } catch (e) {
    return e instanceof CtxFlowError ? e.message : `other: ${String(e)}`;
  }
};

t.test('loads through r1, its copies and a spill slot; not through other registers', async (t) => {
  const b = prog(MOV(6, 1), LDXW(2, 6, 4), STXDW(10, 1, -8), MOVI(1, 0), LDXDW(7, 10, -8), LDXW(3, 7, 0), LDXW(4, 2, 0), MOVI(0, 2), EXIT);
  const f = flow(b);
  t.same(f.loads, [{ insn: 1, off: 4, size: 4 }, { insn: 5, off: 0, size: 4 }], 'r6 = r1 and r7 reloaded from fp-8; r2 (a packet pointer) is not ctx');
  t.same(f.returns, [7]);
  t.equal(f.returnsUnknown, undefined);
});

t.test('what is refused, not guessed', async (t) => {
  t.match(err(prog(ADDI(1, 4), LDXW(2, 1, 0), EXIT)), /instruction 0: arithmetic on the context pointer/);
  t.match(err(prog(I(0x63, 1, 2, 0, 0), EXIT)), /instruction 0: a write to the context/);
  t.match(err(prog(JEQI(2, 0, 1), MOVI(1, 0), LDXW(3, 1, 0), EXIT)), /instruction 2: a load through a register that holds the context on only some paths/);
  t.match(err(prog(PCALL(1), EXIT, MOVI(0, 0), EXIT)), /instruction 0: the context pointer is passed to a subprogram/);
  t.match(err(prog(STXDW(2, 1, 0), EXIT)), /instruction 0: the context pointer is stored outside the stack/);
  t.match(err(prog(JA(5), EXIT)), /a jump leaves the function/);
  t.match(err(prog(I(0xbc, 2, 1, 0, 0), EXIT)), /the context pointer used as a value/);
});

t.test('return values: constants reaching exits, or why not', async (t) => {
  t.same(flow(prog(JEQI(1, 0, 2), MOVI(0, 1), JA(1), MOVI(0, 2), EXIT)).returns, [1, 3], 'two constants, two paths');
  t.match(flow(prog(CALL(7), EXIT)).returnsUnknown ?? '', /exit at instruction 1 returns a value computed at run time \(instruction 0\)/);
  t.match(flow(prog(MOVI(0, 2), ADDI(0, 1), EXIT)).returnsUnknown ?? '', /computed at run time \(instruction 1\)/);
  t.match(flow(prog(MOVI(0, 2), JEQI(0, 2, 0), EXIT)).returnsUnknown ?? '', /the return value set at instruction 0 is also used before the exit/);
});

t.test('xdp: pointer loads widened, actions renumbered; anything else leaves the code as it was', async (t) => {
  const b = prog(LDXW(2, 1, 0), LDXW(3, 1, 4), LDXW(4, 1, 12), JEQI(2, 0, 2), MOVI(0, 1), EXIT, MOVI(0, 2), EXIT);
  const r = translateContext(b, 0, b.length / 8, WIN_PROG_TYPE.XDP, "program 'p' (xdp)");
  t.same(r.caveats, []);
  t.same(r.steps, ["program 'p' (xdp): context xdp_md loads data 0 -> 0 (pointer), data_end 4 -> 8 (pointer), ingress_ifindex 12 -> 24; XDP actions 1 -> 2, 2 -> 1"]);
  t.same([...b.subarray(0, 4), ...b.subarray(8, 12), ...b.subarray(16, 20)], [0x79, 0x12, 0, 0, 0x79, 0x13, 8, 0, 0x61, 0x14, 24, 0]);
  t.same([b[36], b[52]], [2, 1], 'XDP_DROP 1 -> 2, XDP_PASS 2 -> 1');
  const redirect = prog(LDXW(2, 1, 0), MOVI(0, 4), EXIT);
  const before = [...redirect];
  const r2 = translateContext(redirect, 0, 3, WIN_PROG_TYPE.XDP, "program 'r' (xdp)");
  t.match(r2.caveats[0] ?? '', /returns XDP action 4 \(instruction 1\), which Windows lacks \(no XDP_REDIRECT\)/);
  t.same([...redirect], before, 'refused: nothing rewritten');
  const rxq = prog(LDXW(2, 1, 16), MOVI(0, 2), EXIT);
  t.match(translateContext(rxq, 0, 3, WIN_PROG_TYPE.XDP, "program 'q' (xdp)").caveats[0] ?? '', /a 4-byte load of xdp_md at offset 16 \(instruction 0\) has no Windows counterpart/);
  const arith = prog(ADDI(1, 4), MOVI(0, 2), EXIT);
  t.match(translateContext(arith, 0, 3, WIN_PROG_TYPE.XDP, "program 'a' (xdp)").caveats[0] ?? '', /context not rewritten \(instruction 0: arithmetic on the context pointer\)/);
});

t.test('sock_ops: every field of the table; the op numbers stay a caveat', async (t) => {
  const offs: Array<[number, number]> = [[0, 0], [20, 4], [24, 28], [28, 8], [32, 28], [36, 32], [40, 36], [44, 40], [48, 8], [52, 12], [56, 16], [60, 20], [64, 44], [68, 24]];
  const b = prog(...offs.map(([l]) => LDXW(2, 1, l)), MOVI(0, 1), EXIT);
  const r = translateContext(b, 0, b.length / 8, WIN_PROG_TYPE.SOCK_OPS, "program 's' (sockops)");
  offs.forEach(([l, w], i) => t.equal(new DataView(b.buffer, i * 8 + 2, 2).getInt16(0, true), w, `bpf_sock_ops ${l} -> ${w}`));
  t.match(r.caveats.join('\n'), /the op numbers differ/);
  t.equal(b[offs.length * 8 + 4], 1, 'sock_ops return values are not XDP actions: unchanged');
});

// The floor of an interpreter written in JavaScript, for bench/vm/ANALYSIS.md: the memcpy kernel's inner
// loop (the eight eBPF instructions clang emits per byte), pre-decoded into typed arrays and run by the
// simplest switch loop V8 optimizes well: 32-bit registers only, no memory checks, no budget, no 64-bit
// halves, no faults. Whatever an interpreter with the VM's semantics does costs at least this much per
// instruction; it is set against the 30x-native budget per instruction of the same loop.
//
//   node --import=tsx bench/vm/floor.ts
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const N = 4096;
const REPS = 64;

// r6 = r2; r6 += r0; r7 = r4; r7 += r0; r7 = *(u8 *)(r7 + 0); *(u8 *)(r6 + 0) = r7; r0 += 1; if r3 > r0 goto -8
const MOV = 0;
const ADD = 1;
const LDXB = 2;
const STXB = 3;
const ADDI = 4;
const JGT = 5;
const EXIT = 6;
const prog: [number, number, number, number][] = [
  [MOV, 6, 2, 0],
  [ADD, 6, 0, 0],
  [MOV, 7, 4, 0],
  [ADD, 7, 0, 0],
  [LDXB, 7, 7, 0],
  [STXB, 6, 7, 0],
  [ADDI, 0, 0, 1],
  [JGT, 3, 0, -8],
  [EXIT, 0, 0, 0],
];
const op = new Int32Array(prog.map((x) => x[0]));
const dst = new Int32Array(prog.map((x) => x[1]));
const src = new Int32Array(prog.map((x) => x[2]));
const imm = new Int32Array(prog.map((x) => x[3]));
const mem = new Uint8Array(4 * N);
for (let i = 0; i < N; i++) mem[i] = (i * 37) & 0xff;

/** copy n bytes from 0 to 2n; returns r0 (n) */
function run(n: number): number {
  const R = new Int32Array(16);
  R[2] = 2 * N;
  R[4] = 0;
  R[3] = n;
  let pc = 0;
  for (;;) {
    const d = dst[pc]!;
    const s = src[pc]!;
    switch (op[pc]) {
      case MOV:
        R[d] = R[s]!;
        pc++;
        break;
      case ADD:
        R[d] = (R[d]! + R[s]!) | 0;
        pc++;
        break;
      case LDXB:
        R[d] = mem[R[s]!]!;
        pc++;
        break;
      case STXB:
        mem[R[d]!] = R[s]!;
        pc++;
        break;
      case ADDI:
        R[d] = (R[d]! + imm[pc]!) | 0;
        pc++;
        break;
      case JGT:
        pc = R[d]! >>> 0 > R[s]! >>> 0 ? pc + 1 + imm[pc]! : pc + 1;
        break;
      default:
        return R[0]!;
    }
  }
}

for (let i = 0; i < 300; i++) run(N);
const times: number[] = [];
for (let i = 0; i < 51; i++) {
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < REPS; r++) run(N);
  times.push(Number(process.hrtime.bigint() - t0));
}
times.sort((a, b) => a - b);
const floorNs = times[times.length >> 1]!;
const insns = REPS * N * 8;
let line = `interpreter floor (memcpy inner loop, ${REPS} x ${N} bytes): ${(floorNs / 1e6).toFixed(3)} ms, ${(floorNs / insns).toFixed(2)} ns per instruction`;

// the native copy of the same bytes, when bench/vm/run.ts has built it
const native = path.join(HERE, 'build', 'native');
const input = path.join(HERE, 'build', 'memcpy.in');
if (fs.existsSync(native) && fs.existsSync(input)) {
  const out = execFileSync(native, ['memcpy', input, '101'], { encoding: 'utf8' }).trim().split(' ');
  const nativeNs = Number(out[1]);
  line += `; native ${(nativeNs / 1e6).toFixed(3)} ms: the floor alone is ${(floorNs / nativeNs).toFixed(1)}x native (30x allows ${((30 * nativeNs) / insns).toFixed(2)} ns per instruction)`;
}
process.stdout.write(`${line}\n`);

// The BPF ISA of RFC 9669, opcode by opcode, on every engine (every case runs on the interpreter, on
// the compiler and on the native engine, and they must agree on r0, step count, memory and faults). Expected values are
// worked out from the RFC's definitions, not from either engine.
import t, { type Test } from 'tap';
import { vm } from '../backends/userspace/vm/index.js';
import { ENGINES, r0Of } from './fixtures/vm/util.js';

const M64 = (1n << 64n) - 1n;
const u = (v: bigint): bigint => v & M64;

type Case = [name: string, asm: string, want: bigint | string, mem?: string];

function run(t: Test, cases: Case[]): void {
  for (const [name, asm, want, mem] of cases) {
    const got = r0Of(asm, mem);
    t.equal(typeof got === 'bigint' ? `0x${got.toString(16)}` : got, typeof want === 'bigint' ? `0x${u(want).toString(16)}` : want, name);
  }
}

t.test('ALU64 arithmetic (base64, divmul64)', async (t) => {
  run(t, [
    ['add K', 'mov %r0, 1\nadd %r0, 2\nexit', 3n],
    ['add K sign-extends imm', 'mov %r0, 0\nadd %r0, -1\nexit', -1n],
    ['add wraps', 'lddw %r0, 0xffffffffffffffff\nadd %r0, 2\nexit', 1n],
    ['add X carries into the high half', 'lddw %r0, 0xffffffff\nmov %r1, 1\nadd %r0, %r1\nexit', 0x100000000n],
    ['sub K', 'mov %r0, 3\nsub %r0, 5\nexit', -2n],
    ['sub X borrows from the high half', 'lddw %r0, 0x100000000\nmov %r1, 1\nsub %r0, %r1\nexit', 0xffffffffn],
    ['mul X wraps mod 2^64', 'lddw %r0, 0x100000001\nlddw %r1, 0x100000001\nmul %r0, %r1\nexit', 0x200000001n],
    ['mul K negative', 'mov %r0, 3\nmul %r0, -2\nexit', -6n],
    ['mul X wide', 'lddw %r0, 0xdeadbeefcafebabe\nlddw %r1, 0x123456789abcdef1\nmul %r0, %r1\nexit', 0xca165e3e6f4690den],
    ['div X unsigned', 'lddw %r0, 0xfedcba9876543210\nlddw %r1, 0x1234567\ndiv %r0, %r1\nexit', 0xe0000069e0n],
    ['div X by zero is 0', 'mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit', 0n],
    ['div K: imm sign-extended, then unsigned', 'mov %r0, -1\ndiv %r0, -1\nexit', 1n],
    ['div K: 100 / 0xffff...ff is 0', 'mov %r0, 100\ndiv %r0, -1\nexit', 0n],
    ['mod X unsigned', 'lddw %r0, 0xfedcba9876543210\nlddw %r1, 0x1234567\nmod %r0, %r1\nexit', 0x38f0n],
    ['mod K', 'mov %r0, 7\nmod %r0, 3\nexit', 1n],
    ['mod X by zero leaves dst', 'lddw %r0, 0x123456789\nmov %r1, 0\nmod %r0, %r1\nexit', 0x123456789n],
    ['sdiv K truncates toward zero', 'mov %r0, -7\nsdiv %r0, 2\nexit', -3n],
    ['sdiv X wide negative', 'lddw %r0, 0xfedcba9876543210\nlddw %r1, 0x1234567\nsdiv %r0, %r1\nexit', 0xfffffffeffffff87n],
    ['sdiv X by negative', 'lddw %r0, 0xfedcba9876543210\nlddw %r1, 0xfffffffffedcba99\nsdiv %r0, %r1\nexit', 0x100000079n],
    ['sdiv INT64_MIN / -1 = INT64_MIN (X)', 'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit', 0x8000000000000000n],
    ['sdiv INT64_MIN / -1 = INT64_MIN (K)', 'lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit', 0x8000000000000000n],
    ['sdiv by zero is 0', 'mov %r0, -7\nmov %r1, 0\nsdiv %r0, %r1\nexit', 0n],
    ['smod: sign of the dividend', 'mov %r0, -7\nsmod %r0, 2\nexit', -1n],
    ['smod: positive dividend, negative divisor', 'mov %r0, 7\nsmod %r0, -2\nexit', 1n],
    ['smod X wide', 'lddw %r0, 0xfedcba9876543210\nlddw %r1, 0x1234567\nsmod %r0, %r1\nexit', -0x41n],
    ['smod INT64_MIN % -1 = 0', 'lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit', 0n],
    ['smod INT64_MIN % -1 = 0 (K)', 'lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit', 0n],
    ['smod by zero leaves dst', 'mov %r0, -7\nmov %r1, 0\nsmod %r0, %r1\nexit', -7n],
    ['neg', 'mov %r0, 5\nneg %r0\nexit', -5n],
    ['neg 0', 'mov %r0, 0\nneg %r0\nexit', 0n],
    ['neg INT64_MIN', 'lddw %r0, 0x8000000000000000\nneg %r0\nexit', 0x8000000000000000n],
  ]);
});

t.test('ALU64 bitwise, shifts, moves', async (t) => {
  run(t, [
    ['or K sign-extends', 'mov %r0, 0\nor %r0, -1\nexit', -1n],
    ['and K positive clears the high half', 'lddw %r0, 0xffffffffffffffff\nand %r0, 0x0f0f0f0f\nexit', 0x0f0f0f0fn],
    ['and K negative keeps it', 'lddw %r0, 0xffffffffffffffff\nand %r0, -16\nexit', -16n],
    ['xor X', 'lddw %r0, 0xff00ff00ff00ff00\nlddw %r1, 0x0ff00ff00ff00ff0\nxor %r0, %r1\nexit', 0xf0f0f0f0f0f0f0f0n],
    ['lsh K 63', 'mov %r0, 1\nlsh %r0, 63\nexit', 0x8000000000000000n],
    ['lsh K 32', 'mov %r0, 3\nlsh %r0, 32\nexit', 0x300000000n],
    ['lsh X masks the amount to 6 bits', 'mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit', 2n],
    ['rsh K is logical', 'lddw %r0, 0x8000000000000000\nrsh %r0, 63\nexit', 1n],
    ['rsh X across halves', 'lddw %r0, 0x123456789abcdef0\nmov %r1, 36\nrsh %r0, %r1\nexit', 0x1234567n],
    ['rsh X masked (68 -> 4)', 'mov %r0, 0x100\nmov %r1, 68\nrsh %r0, %r1\nexit', 0x10n],
    ['arsh K sign-fills', 'lddw %r0, 0x8000000000000000\narsh %r0, 63\nexit', -1n],
    ['arsh K masked (124 -> 60)', 'mov32 %r0, 1\nlsh %r0, 63\narsh %r0, 124\nexit', 0xfffffffffffffff8n],
    ['arsh X masked, negative amount', 'mov32 %r0, 1\nlsh %r0, 63\nmov32 %r1, -4\narsh %r0, %r1\nexit', 0xfffffffffffffff8n],
    ['arsh X 40', 'lddw %r0, 0xf000000000000000\nmov %r1, 40\narsh %r0, %r1\nexit', 0xfffffffffff00000n],
    ['lsh 0 is identity', 'lddw %r0, 0x123456789\nlsh %r0, 0\nexit', 0x123456789n],
    ['mov K sign-extends', 'mov %r0, -1\nexit', -1n],
    ['mov X', 'lddw %r1, 0x1122334455667788\nmov %r0, %r1\nexit', 0x1122334455667788n],
    ['movsx8 (64)', 'mov %r1, 0x180\nmovsx864 %r0, %r1\nexit', 0xffffffffffffff80n],
    ['movsx8 positive', 'mov %r1, 0x17f\nmovsx864 %r0, %r1\nexit', 0x7fn],
    ['movsx16 (64)', 'mov %r1, 0x18000\nmovsx1664 %r0, %r1\nexit', 0xffffffffffff8000n],
    ['movsx32 (64)', 'lddw %r1, 0x180000000\nmovsx3264 %r0, %r1\nexit', 0xffffffff80000000n],
    ['movsx8 (32) zero-extends the result', 'lddw %r1, 0x0123456789abcdef\nmovsx832 %r0, %r1\nexit', 0xffffffefn],
    ['movsx16 (32)', 'lddw %r1, 0xffffffffffff8001\nmovsx1632 %r0, %r1\nexit', 0xffff8001n],
  ]);
});

t.test('ALU32 (base32, divmul32): 32-bit results, upper half zeroed', async (t) => {
  run(t, [
    ['add32 wraps and zero-extends', 'lddw %r0, 0xffffffffffffffff\nadd32 %r0, 1\nexit', 0n],
    ['add32 ignores the upper half', 'lddw %r0, 0x1ffffffff\nadd32 %r0, 2\nexit', 1n],
    ['add32 X', 'mov32 %r0, 1\nlddw %r1, 0xffffffff00000002\nadd32 %r0, %r1\nexit', 3n],
    ['sub32', 'mov32 %r0, 0\nsub32 %r0, 1\nexit', 0xffffffffn],
    ['mul32 wraps', 'mov32 %r0, 0x10000\nmul32 %r0, 0x10000\nexit', 0n],
    ['mul32 -1 * -1', 'mov32 %r0, -1\nmul32 %r0, -1\nexit', 1n],
    ['mul32 X wide', 'mov32 %r0, 0xdeadbeef\nmov32 %r1, 0x12345\nmul32 %r0, %r1\nexit', (0xdeadbeefn * 0x12345n) & 0xffffffffn],
    ['div32 uses only the low half of the divisor', 'mov %r0, 12\nlddw %r1, 0x100000004\ndiv32 %r0, %r1\nexit', 3n],
    ['div32 by a register whose low half is 0 is 0', 'mov32 %r0, 1\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit', 0n],
    ['div32 imm is unsigned 32-bit', 'mov32 %r0, -1\ndiv32 %r0, -1\nexit', 1n],
    ['div32 K of a wide dst', 'lddw %r0, 0x10000000c\ndiv32 %r0, 4\nexit', 3n],
    ['sdiv32', 'mov32 %r0, -7\nsdiv32 %r0, 2\nexit', 0xfffffffdn],
    ['sdiv32 INT32_MIN / -1 = INT32_MIN', 'mov32 %r0, 0x80000000\nmov32 %r1, -1\nsdiv32 %r0, %r1\nexit', 0x80000000n],
    ['sdiv32 K INT32_MIN / -1', 'mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit', 0x80000000n],
    ['sdiv32 by zero is 0', 'mov32 %r0, 5\nmov32 %r1, 0\nsdiv32 %r0, %r1\nexit', 0n],
    ['mod32 by zero keeps the low half, zeroes the upper', 'lddw %r0, 0x100000005\nmov %r1, 0\nmod32 %r0, %r1\nexit', 5n],
    ['mod32', 'mov32 %r0, 0xfffffffe\nmod32 %r0, 10\nexit', 0xfffffffen % 10n],
    ['smod32', 'mov32 %r0, -7\nsmod32 %r0, 2\nexit', 0xffffffffn],
    ['smod32 INT32_MIN % -1 = 0', 'mov32 %r0, 0x80000000\nmov32 %r1, -1\nsmod32 %r0, %r1\nexit', 0n],
    ['smod32 by zero keeps dst (32 bits)', 'lddw %r0, 0xaaaaaaaafffffff9\nmov32 %r1, 0\nsmod32 %r0, %r1\nexit', 0xfffffff9n],
    ['lsh32 K masked (33 -> 1)', 'mov32 %r0, 1\nlsh32 %r0, 33\nexit', 2n],
    ['lsh32 drops carried bits', 'mov32 %r0, 0x80000001\nlsh32 %r0, 1\nexit', 2n],
    ['rsh32 ignores the upper half', 'lddw %r0, 0xffffffff00000010\nrsh32 %r0, 4\nexit', 1n],
    ['rsh32 X masked', 'mov32 %r0, 0x100\nmov32 %r1, 36\nrsh32 %r0, %r1\nexit', 0x10n],
    ['arsh32 sign-fills within 32 bits', 'mov32 %r0, 0x80000000\narsh32 %r0, 31\nexit', 0xffffffffn],
    ['arsh32 K masked (48 -> 16)', 'mov32 %r0, 0xf8\nlsh32 %r0, 28\narsh32 %r0, 48\nexit', 0xffff8000n],
    ['neg32', 'mov32 %r0, 1\nneg32 %r0\nexit', 0xffffffffn],
    ['mov32 X zero-extends', 'lddw %r1, 0xffffffffffffffff\nmov32 %r0, %r1\nexit', 0xffffffffn],
    ['mov32 K -1', 'mov32 %r0, -1\nexit', 0xffffffffn],
    ['or32 / and32 / xor32', 'lddw %r0, 0xffffffff0000ff00\nor32 %r0, 0xf\nand32 %r0, 0xff0f\nxor32 %r0, 0x1\nexit', 0xff0en],
  ]);
});

t.test('byte swaps (le, be, bswap)', async (t) => {
  const v = 'lddw %r0, 0x1122334455667788\n';
  run(t, [
    ['le16 truncates', `${v}le16 %r0\nexit`, 0x7788n],
    ['le32 truncates', `${v}le32 %r0\nexit`, 0x55667788n],
    ['le64 is identity', `${v}le64 %r0\nexit`, 0x1122334455667788n],
    ['be16', `${v}be16 %r0\nexit`, 0x8877n],
    ['be32', `${v}be32 %r0\nexit`, 0x88776655n],
    ['be64', `${v}be64 %r0\nexit`, 0x8877665544332211n],
    ['bswap16', `${v}bswap16 %r0\nexit`, 0x8877n],
    ['bswap32', `${v}bswap32 %r0\nexit`, 0x88776655n],
    ['bswap64', `${v}bswap64 %r0\nexit`, 0x8877665544332211n],
    ['be16 of memory', 'ldxh %r0, [%r1]\nbe16 %r0\nexit', 0x1122n, '1122'],
    ['be32 of memory', 'ldxw %r0, [%r1]\nbe32 %r0\nexit', 0x11223344n, '11223344'],
    ['be64 of memory', 'ldxdw %r0, [%r1]\nbe64 %r0\nexit', 0x1122334455667788n, '1122334455667788'],
  ]);
});

// ---- jumps: every condition on a matrix of edge values, checked against the RFC's definitions ----

const S64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const S32 = (v: bigint): bigint => BigInt.asIntN(32, v);
const U32 = (v: bigint): bigint => BigInt.asUintN(32, v);
const COND: Record<string, (a: bigint, b: bigint, w32: boolean) => boolean> = {
  jeq: (a, b, w) => (w ? U32(a) === U32(b) : a === b),
  jne: (a, b, w) => (w ? U32(a) !== U32(b) : a !== b),
  jgt: (a, b, w) => (w ? U32(a) > U32(b) : a > b),
  jge: (a, b, w) => (w ? U32(a) >= U32(b) : a >= b),
  jlt: (a, b, w) => (w ? U32(a) < U32(b) : a < b),
  jle: (a, b, w) => (w ? U32(a) <= U32(b) : a <= b),
  jset: (a, b, w) => (w ? (U32(a) & U32(b)) !== 0n : (a & b) !== 0n),
  jsgt: (a, b, w) => (w ? S32(a) > S32(b) : S64(a) > S64(b)),
  jsge: (a, b, w) => (w ? S32(a) >= S32(b) : S64(a) >= S64(b)),
  jslt: (a, b, w) => (w ? S32(a) < S32(b) : S64(a) < S64(b)),
  jsle: (a, b, w) => (w ? S32(a) <= S32(b) : S64(a) <= S64(b)),
};
const VALUES = [0n, 1n, 2n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 0x1ffffffffn, 0x7fffffffffffffffn, 0x8000000000000000n, u(-1n), u(-2n), 0xffffffff00000001n];
const IMMS = [0, 1, -1, 2, 0x7fffffff, -0x80000000, -2];

t.test('conditional jumps, JMP and JMP32, K and X, taken and not', async (t) => {
  let n = 0;
  let bad = 0;
  // one program per (condition, width, source) covering every value pair: r0 = bitmask of taken jumps
  for (const name of Object.keys(COND)) {
    for (const w32 of [false, true]) {
      const mn = `${name}${w32 ? '32' : ''}`;
      // X form
      for (const a of VALUES) {
        let src = `mov %r0, 0\nlddw %r1, 0x${a.toString(16)}\n`;
        let want = 0n;
        VALUES.forEach((b, k) => {
          src += `lddw %r2, 0x${b.toString(16)}\n${mn} %r1, %r2, +1\nja +1\nor %r0, ${1 << (k % 30)}\n`;
          if (k >= 30) throw new Error('too many values');
          if (COND[name]!(a, b, w32)) want |= 1n << BigInt(k);
        });
        src += 'exit';
        const got = r0Of(src);
        n++;
        if (got !== want) {
          bad++;
          t.fail(`${mn} X with dst 0x${a.toString(16)}: got ${String(got)}, want 0x${want.toString(16)}`);
        }
      }
      // K form (imm sign-extended to 64 bits for JMP; 32-bit compare for JMP32)
      for (const a of VALUES) {
        let src = `mov %r0, 0\nlddw %r1, 0x${a.toString(16)}\n`;
        let want = 0n;
        IMMS.forEach((imm, k) => {
          src += `${mn} %r1, ${imm}, +1\nja +1\nor %r0, ${1 << k}\n`;
          if (COND[name]!(a, u(BigInt(imm)), w32)) want |= 1n << BigInt(k);
        });
        src += 'exit';
        const got = r0Of(src);
        n++;
        if (got !== want) {
          bad++;
          t.fail(`${mn} K with dst 0x${a.toString(16)}: got ${String(got)}, want 0x${want.toString(16)}`);
        }
      }
    }
  }
  t.equal(bad, 0, `${n} jump programs (${n * 10} conditions) agree with the RFC`);
});

t.test('ja, gotol (ja32), backward jumps, exit in the middle', async (t) => {
  run(t, [
    ['ja +1 skips', 'mov %r0, 1\nja +1\nmov %r0, 2\nexit', 1n],
    ['ja +0 is a no-op', 'mov %r0, 1\nja +0\nexit', 1n],
    ['gotol (32-bit offset in imm)', 'mov %r0, 1\nja32 +1\nmov %r0, 2\nexit', 1n],
    ['backward loop sums 1..10', 'mov %r0, 0\nmov %r1, 10\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, -3\nexit', 55n],
    ['gotol backward', 'mov %r0, 0\nmov %r1, 3\nadd %r0, 2\nsub %r1, 1\njeq %r1, 0, +1\nja32 -4\nexit', 6n],
    ['exit not last', 'mov %r0, 0\nexit\nmov %r0, 1\nexit', 0n],
    ['labels', 'mov %r0, 0\nja skip\nmov %r0, 9\nskip:\nadd %r0, 4\nexit', 4n],
  ]);
});

t.test('loads and stores of every width, sign-extending loads', async (t) => {
  const mem = '1122334455667788 99aabbccddeeff00';
  run(t, [
    ['ldxb', 'ldxb %r0, [%r1+2]\nexit', 0x33n, mem],
    ['ldxh (little-endian)', 'ldxh %r0, [%r1+2]\nexit', 0x4433n, mem],
    ['ldxw', 'ldxw %r0, [%r1+4]\nexit', 0x88776655n, mem],
    ['ldxdw', 'ldxdw %r0, [%r1+8]\nexit', 0x00ffeeddccbbaa99n, mem],
    ['ldxdw unaligned', 'ldxdw %r0, [%r1+3]\nexit', 0xbbaa998877665544n, mem],
    ['ldxsb negative', 'ldxsb %r0, [%r1+7]\nexit', u(-0x78n), mem],
    ['ldxsb positive', 'ldxsb %r0, [%r1+0]\nexit', 0x11n, mem],
    ['ldxsh negative', 'ldxsh %r0, [%r1+8]\nexit', u(-0x5567n), mem],
    ['ldxsw negative', 'ldxsw %r0, [%r1+8]\nexit', u(-0x33445567n), mem],
    ['ldxsw positive', 'ldxsw %r0, [%r1+0]\nexit', 0x44332211n, mem],
    ['ldx with a negative offset', 'add %r1, 4\nldxb %r0, [%r1-1]\nexit', 0x44n, mem],
    ['stb / ldxdw', 'stb [%r1+0], 0xaa\nldxdw %r0, [%r1+0]\nexit', 0x88776655443322aan, mem],
    ['sth', 'sth [%r1+0], 0x1234\nldxdw %r0, [%r1+0]\nexit', 0x8877665544331234n, mem],
    ['stw', 'stw [%r1+0], -1\nldxdw %r0, [%r1+0]\nexit', 0x88776655ffffffffn, mem],
    ['stdw sign-extends imm', 'stdw [%r1+0], -2\nldxdw %r0, [%r1+0]\nexit', u(-2n), mem],
    ['stxb stores the low byte', 'lddw %r2, 0x1234567890abcdef\nstxb [%r1+1], %r2\nldxdw %r0, [%r1+0]\nexit', 0x887766554433ef11n, mem],
    ['stxh', 'lddw %r2, 0x1234567890abcdef\nstxh [%r1+1], %r2\nldxdw %r0, [%r1+0]\nexit', 0x8877665544cdef11n, mem],
    ['stxw', 'lddw %r2, 0x1234567890abcdef\nstxw [%r1+4], %r2\nldxdw %r0, [%r1+0]\nexit', 0x90abcdef44332211n, mem],
    ['stxdw', 'lddw %r2, 0x1234567890abcdef\nstxdw [%r1+8], %r2\nldxdw %r0, [%r1+8]\nexit', 0x1234567890abcdefn, mem],
    ['stack round trip', 'lddw %r2, 0x1234567890abcdef\nstxdw [%r10-8], %r2\nldxw %r0, [%r10-4]\nexit', 0x12345678n],
    ['the whole 512-byte frame', 'stdw [%r10-512], 7\nstdw [%r10-8], 8\nldxdw %r0, [%r10-512]\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit', 15n],
    ['the stack starts zeroed', 'ldxdw %r0, [%r10-256]\nexit', 0n],
    ['stack through a copied pointer', 'mov %r2, %r10\nadd %r2, -16\nstw [%r2+4], 9\nldxw %r0, [%r10-12]\nexit', 9n],
    ['past the frame is a fault', 'ldxb %r0, [%r10-513]\nexit', 'memory@0'],
    ['above the stack is a fault', 'ldxb %r0, [%r10+0]\nexit', 'memory@0'],
    ['past the memory is a fault', 'ldxw %r0, [%r1+14]\nexit', 'memory@0', mem],
    ['before the memory is a fault', 'ldxb %r0, [%r1-1]\nexit', 'memory@0', mem],
    ['NULL is a fault', 'mov %r1, 0\nldxb %r0, [%r1+0]\nexit', 'memory@1'],
    ['a store out of bounds is a fault', 'stb [%r1+16], 1\nexit', 'memory@0', mem],
    ['an address with high bits set is a fault', 'lddw %r2, 0x100000000\nadd %r1, %r2\nldxb %r0, [%r1+0]\nexit', 'memory@3', mem],
  ]);
});

t.test('r1 = memory, r2 = its length; no memory: r1 = r2 = 0', async (t) => {
  t.equal(r0Of('mov %r0, %r2\nexit', '0011223344'), 5n);
  t.equal(r0Of('mov %r0, %r1\nor %r0, %r2\nexit'), 0n);
  const mem = new Uint8Array([1, 2, 3, 4]);
  for (const engine of ENGINES) {
    const m = mem.slice();
    vm.run(vm.asm('stw [%r1+0], 0x01020304\nmov %r0, 0\nexit'), m, { engine });
    t.same([...m], [4, 3, 2, 1], `${engine}: stores reach the caller's buffer`);
  }
});

t.test('atomics (atomic32, atomic64)', async (t) => {
  const init = 'lddw %r2, 0x1111111122222222\nstxdw [%r10-8], %r2\n';
  run(t, [
    ['add', `${init}mov %r1, 3\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111122222225n],
    ['add32 touches only 32 bits', `${init}mov32 %r1, -1\nlock add32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111122222221n],
    ['or', `${init}mov %r1, 0x100\nlock or [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111122222322n],
    ['and32', `${init}mov32 %r1, 0xf0\nlock and32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111100000020n],
    ['xor', `${init}lddw %r1, 0xffffffff00000000\nlock xor [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0xeeeeeeee22222222n],
    ['xor32 (conformance lock_xor32 shape)', 'lddw %r0, 0xcccccccccccccccc\nlddw %r1, 0xffffffffffffffff\nstxdw [%r10-8], %r0\nlock xor32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit', 0xcccccccc33333333n],
    ['fetch add returns the old value in src', `${init}mov %r1, 1\nlock fetch add [%r10-8], %r1\nmov %r0, %r1\nexit`, 0x1111111122222222n],
    ['fetch add stores the sum', `${init}mov %r1, 1\nlock fetch add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111122222223n],
    ['fetch add32 zero-extends the old value', `${init}lddw %r1, 0xffffffff00000001\nlock fetch add32 [%r10-8], %r1\nmov %r0, %r1\nexit`, 0x22222222n],
    ['fetch or', `${init}mov %r1, 1\nlock fetch or [%r10-8], %r1\nldxdw %r0, [%r10-8]\nadd %r0, %r1\nexit`, 0x1111111122222223n + 0x1111111122222222n],
    ['fetch and32', `${init}mov %r1, 0x0f\nlock fetch and32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111100000002n],
    ['fetch xor', `${init}mov %r1, -1\nlock fetch xor [%r10-8], %r1\nmov %r0, %r1\nexit`, 0x1111111122222222n],
    ['xchg', `${init}mov %r1, 5\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 32\nor %r0, %r1\nexit`, 0x1111111522222222n],
    ['xchg returns the old value', `${init}mov %r1, 5\nlock xchg [%r10-8], %r1\nmov %r0, %r1\nexit`, 0x1111111122222222n],
    ['xchg32', `${init}mov %r1, 5\nlock xchg32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111100000005n],
    ['cmpxchg equal: stores src, r0 = old', `${init}lddw %r0, 0x1111111122222222\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nadd %r0, %r2\nexit`, 0x1111111122222222n + 9n],
    ['cmpxchg different: no store, r0 = old', `${init}mov %r0, 1\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nsub %r2, %r0\nmov %r0, %r2\nexit`, 0n],
    ['cmpxchg32 compares the low 32 bits of r0 only', `${init}lddw %r0, 0xabcdef0022222222\nmov %r1, 9\nlock cmpxchg32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit`, 0x1111111100000009n],
    ['cmpxchg32 zero-extends the old value into r0', `${init}lddw %r0, 0xabcdef0022222222\nmov %r1, 9\nlock cmpxchg32 [%r10-8], %r1\nexit`, 0x22222222n],
    ['atomic on memory', 'mov %r2, 2\nlock add32 [%r1+4], %r2\nldxdw %r0, [%r1+0]\nexit', 0x0000000300000001n, '0100000001000000'],
    ['atomic out of bounds faults', 'mov %r2, 2\nlock add [%r1+4], %r2\nexit', 'memory@1', '0100000001000000'],
  ]);
});

t.test('lddw', async (t) => {
  run(t, [
    ['imm64', 'lddw %r0, 0x123456789abcdef0\nexit', 0x123456789abcdef0n],
    ['high bit', 'lddw %r0, 0x8000000000000000\nexit', 0x8000000000000000n],
    ['low half negative as int32', 'lddw %r0, 0x00000000ffffffff\nexit', 0xffffffffn],
    ['two slots: a jump over it counts 2', 'mov %r0, 1\nja +2\nlddw %r0, 5\nexit', 1n],
  ]);
});

t.test('bpf-to-bpf calls: args, r6-r9 preserved, a frame per call', async (t) => {
  run(t, [
    // the conformance suite's call_local shape
    ['r0 = sum of r1..r5; r6..r9 survive', 'mov %r0, 0\nmov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\nmov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9\ncall local 10\njne %r0, 15, 6\njne %r6, 6, 5\njne %r7, 7, 4\njne %r8, 8, 3\njne %r9, 9, 2\nmov %r0, 1\nexit\nmov %r0, -1\nexit\nmov %r0, 0\nadd %r0, %r1\nadd %r0, %r2\nadd %r0, %r3\nadd %r0, %r4\nadd %r0, %r5\nmov %r6, 0\nmov %r7, 0\nmov %r8, 0\nmov %r9, 0\nexit', 1n],
    ['callee frame is separate', 'stdw [%r10-8], 1\ncall local f\nldxdw %r0, [%r10-8]\nexit\nf:\nstdw [%r10-8], 2\nexit', 1n],
    ['callee reaches the caller frame through a pointer', 'stdw [%r10-8], 1\nmov %r1, %r10\nadd %r1, -8\ncall local f\nldxdw %r0, [%r10-8]\nexit\nf:\nstdw [%r1+0], 42\nexit', 42n],
    ['callee r10 is 512 below', 'mov %r6, %r10\ncall local f\nsub %r6, %r0\nmov %r0, %r6\nexit\nf:\nmov %r0, %r10\nexit', 512n],
    ['nested 7 deep (8 frames) is allowed', 'mov %r0, 0\ncall local a\nexit\na:\nadd %r0, 1\ncall local b\nexit\nb:\nadd %r0, 1\ncall local c\nexit\nc:\nadd %r0, 1\ncall local d\nexit\nd:\nadd %r0, 1\ncall local e\nexit\ne:\nadd %r0, 1\ncall local f\nexit\nf:\nadd %r0, 1\ncall local g\nexit\ng:\nmov %r0, 7\nexit', 7n],
    ['recursion: factorial(5)', 'mov %r1, 5\ncall local fact\nexit\nfact:\nmov %r0, 1\njle %r1, 1, +4\nmov %r6, %r1\nsub %r1, 1\ncall local fact\nmul %r0, %r6\nexit\nexit', 120n],
    ['recursion past 8 frames is a stack fault', 'call local f\nexit\nf:\ncall local f\nexit', 'stack@2'],
    ['the conformance call_unwind_fail shape', 'mov %r0, 0\nmov %r1, 0x42\ncall local func1\nexit\nfunc1:\nmov %r0, %r1\nexit', 0x42n],
  ]);
});

t.test('callx: address-taken functions and helper ids', async (t) => {
  run(t, [
    ['callx of a code_addr', 'lddw %r2, code_addr(f)\nmov %r1, 20\ncallx %r2\nadd %r0, 1\nexit\nf:\nmov %r0, %r1\nexit', 21n],
    ['"call %r2" is callx too', 'lddw %r2, code_addr(f)\ncall %r2\nexit\nf:\nmov %r0, 3\nexit', 3n],
    ['callx of an unknown helper id faults', 'mov %r2, 5\ncallx %r2\nexit', 'call@1'],
    ['callx of a code address not taken faults', 'lddw %r2, 0xc0de000000000010\ncallx %r2\nexit\nmov %r0, 1\nexit', 'call@2'],
  ]);
  const env = vm.createEnvironment({ helpers: { 5: (r1) => r1 * 2n } });
  for (const engine of ENGINES) {
    const p = vm.load(vm.asm('mov %r1, 21\nmov %r2, 5\ncallx %r2\nexit'), { env });
    t.equal(vm.run(p, undefined, { engine }), 42n, `${engine}: callx of helper 5`);
  }
});

t.test('legacy packet loads (LD_ABS / LD_IND): network order, out of bounds ends with 0', async (t) => {
  const pkt = '0102030405060708';
  run(t, [
    ['ldabsb', 'ldabsb 3\nexit', 0x04n, pkt],
    ['ldabsh (big-endian)', 'ldabsh 2\nexit', 0x0304n, pkt],
    ['ldabsw', 'ldabsw 4\nexit', 0x05060708n, pkt],
    ['ldindb', 'mov %r6, 2\nldindb %r6, 3\nexit', 0x06n, pkt],
    ['ldindh with a negative imm', 'mov %r6, 4\nldindh %r6, -1\nexit', 0x0405n, pkt],
    ['ldabsw past the end returns 0 from the program', 'mov %r0, 9\nldabsw 6\nmov %r0, 7\nexit', 0n, pkt],
    ['ldind negative offset returns 0', 'mov %r0, 9\nmov %r6, -8\nldindb %r6, 0\nexit', 0n, pkt],
    ['no packet: 0', 'ldabsb 0\nmov %r0, 1\nexit', 0n],
  ]);
});

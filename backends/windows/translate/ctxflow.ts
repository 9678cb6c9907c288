// Where a program's code reads its context and what it returns: a data-flow pass over one function's
// instructions (registers and r10 stack slots holding the ctx pointer, must and may; the reaching
// definitions of r0). The context pass (./context.ts) rewrites what this finds; anything it cannot follow
// soundly (ctx arithmetic, ctx writes, a ctx load on only some paths, ctx passed to a subprogram) is a
// reason, not a guess.

export interface CtxLoad {
  insn: number;
  off: number;
  /** bytes: 1, 2, 4, 8 */
  size: number;
}

export interface CtxFlow {
  loads: CtxLoad[];
  /** `r0 = imm` instructions whose value reaches an exit and nothing else */
  returns: number[];
  /** why the return values cannot be rewritten (undefined: every exit returns one of `returns`) */
  returnsUnknown?: string;
}

type Key = string; // 'r1'..'r9' or 's<off>' (a stack slot at r10+off)
interface State {
  must: Set<Key>;
  may: Set<Key>;
  r0: Set<number>; // def sites of r0 (-1: the entry)
}

const SIZE: Record<number, number> = { 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 };

const at = (b: Uint8Array, i: number): { code: number; dst: number; src: number; off: number; imm: number } => {
  const dv = new DataView(b.buffer, b.byteOffset + i * 8, 8);
  return { code: b[i * 8]!, dst: b[i * 8 + 1]! & 0xf, src: b[i * 8 + 1]! >> 4, off: dv.getInt16(2, true), imm: dv.getInt32(4, true) };
};

function successors(b: Uint8Array, i: number): number[] {
  const x = at(b, i);
  if (x.code === 0x18) return [i + 2];
  const cls = x.code & 7;
  if (cls !== 5 && cls !== 6) return [i + 1];
  const op = x.code & 0xf0;
  if (op === 0x90) return []; // exit
  if (op === 0x80) return [i + 1]; // call
  if (op === 0x00) return [i + 1 + (cls === 6 ? x.imm : x.off)]; // ja / gotol
  return [i + 1, i + 1 + x.off];
}

export class CtxFlowError extends Error {}

/** The context loads and return values of the function at slots [start, end) of a section's code. */
export function ctxFlow(b: Uint8Array, start: number, end: number): CtxFlow {
  const states = new Map<number, State>();
  const work: number[] = [start];
  states.set(start, { must: new Set(['r1']), may: new Set(['r1']), r0: new Set([-1]) });
  const fail = (i: number, why: string): never => {
    throw new CtxFlowError(`instruction ${i}: ${why}`);
  };
  const transfer = (i: number, s: State): State => {
    const x = at(b, i);
    const cls = x.code & 7;
    const must = new Set(s.must);
    const may = new Set(s.may);
    let r0 = s.r0;
    const r = (n: number): Key => `r${n}`;
    const clear = (k: Key): void => {
      must.delete(k);
      may.delete(k);
    };
    const write = (n: number): void => {
      clear(r(n));
      if (n === 0) r0 = new Set([i]);
    };
    if (cls === 5 || cls === 6) {
      const op = x.code & 0xf0;
      if (op === 0x80) {
        if (x.src === 1 && [1, 2, 3, 4, 5].some((n) => may.has(r(n)))) fail(i, 'the context pointer is passed to a subprogram');
        for (const n of [1, 2, 3, 4, 5]) clear(r(n));
        r0 = new Set([i]);
      }
      return { must, may, r0 };
    }
    if (cls === 4 || cls === 7) {
      const op = x.code & 0xf0;
      if (op === 0xb0 && cls === 7 && (x.code & 0x08) !== 0) {
        // mov64 dst, src: the ctx pointer copied
        const ctxMust = must.has(r(x.src));
        const ctxMay = may.has(r(x.src));
        write(x.dst);
        if (ctxMust) must.add(r(x.dst));
        if (ctxMay) may.add(r(x.dst));
        return { must, may, r0 };
      }
      if (may.has(r(x.dst)) && op !== 0xb0) fail(i, 'arithmetic on the context pointer');
      if ((x.code & 0x08) !== 0 && may.has(r(x.src))) fail(i, 'the context pointer used as a value');
      write(x.dst);
      return { must, may, r0 };
    }
    if (x.code === 0x18) {
      write(x.dst);
      return { must, may, r0 };
    }
    if (cls === 1) {
      // ldx: from a ctx register (recorded by the caller) or a ctx spill slot
      if (x.src === 10 && (x.code & 0x18) === 0x18 && may.has(`s${x.off}`)) {
        if (!must.has(`s${x.off}`)) fail(i, 'the context pointer is reloaded from a stack slot that holds it on only some paths');
        write(x.dst);
        must.add(r(x.dst));
        may.add(r(x.dst));
        return { must, may, r0 };
      }
      write(x.dst);
      return { must, may, r0 };
    }
    if (cls === 2 || cls === 3) {
      if (may.has(r(x.dst))) fail(i, 'a write to the context');
      if (cls === 3 && (x.code & 0xe0) === 0xc0) {
        // atomics: cmpxchg writes r0, fetch variants write src
        if (may.has(r(x.src))) fail(i, 'the context pointer used as a value');
        if (x.imm === 0xf1) r0 = new Set([i]);
        if ((x.imm & 0x01) !== 0) clear(r(x.src));
        return { must, may, r0 };
      }
      if (x.dst === 10) {
        const size = SIZE[x.code & 0x18] ?? 8;
        for (const k of [...may]) {
          if (!k.startsWith('s')) continue;
          const o = Number(k.slice(1));
          if (o < x.off + size && x.off < o + 8) clear(k);
        }
        if (cls === 3 && may.has(r(x.src))) {
          if ((x.code & 0x18) !== 0x18 || !must.has(r(x.src))) fail(i, 'the context pointer is spilled on only some paths or in part');
          must.add(`s${x.off}`);
          may.add(`s${x.off}`);
        }
        return { must, may, r0 };
      }
      if (cls === 3 && may.has(r(x.src))) fail(i, 'the context pointer is stored outside the stack');
      return { must, may, r0 };
    }
    return { must, may, r0 };
  };
  const merge = (a: State, c: State): State => ({
    must: new Set([...a.must].filter((k) => c.must.has(k))),
    may: new Set([...a.may, ...c.may]),
    r0: new Set([...a.r0, ...c.r0]),
  });
  const same = (a: State, c: State): boolean =>
    a.must.size === c.must.size && a.may.size === c.may.size && a.r0.size === c.r0.size && [...a.must].every((k) => c.must.has(k)) && [...a.may].every((k) => c.may.has(k)) && [...a.r0].every((k) => c.r0.has(k));
  let steps = 0;
  while (work.length) {
    if (++steps > 200_000) throw new CtxFlowError('the code is too large to follow');
    const i = work.pop()!;
    if (i < start || i >= end) throw new CtxFlowError(`a jump leaves the function (to slot ${i})`);
    const out = transfer(i, states.get(i)!);
    for (const n of successors(b, i)) {
      if (n >= end || n < start) throw new CtxFlowError(`a jump leaves the function (to slot ${n})`);
      const prev = states.get(n);
      const next = prev ? merge(prev, out) : out;
      if (!prev || !same(prev, next)) {
        states.set(n, next);
        work.push(n);
      }
    }
  }
  // the loads through ctx registers, the uses of r0 and what each exit returns
  const loads: CtxLoad[] = [];
  const movImm = (i: number): boolean => {
    const x = at(b, i);
    return (x.code === 0xb7 || x.code === 0xb4) && x.dst === 0;
  };
  const returns = new Set<number>();
  let returnsUnknown: string | undefined;
  const used = new Set<number>();
  for (const [i, s] of [...states].sort((p, q) => p[0] - q[0])) {
    const x = at(b, i);
    const cls = x.code & 7;
    const reads: number[] = [];
    if (cls === 1) {
      if (s.may.has(`r${x.src}`)) {
        if (!s.must.has(`r${x.src}`)) fail(i, 'a load through a register that holds the context on only some paths');
        loads.push({ insn: i, off: x.off, size: SIZE[x.code & 0x18] ?? 8 });
      }
      reads.push(x.src);
    } else if (cls === 2) reads.push(x.dst);
    else if (cls === 3) reads.push(x.dst, x.src, ...((x.code & 0xe0) === 0xc0 && x.imm === 0xf1 ? [0] : []));
    else if (cls === 4 || cls === 7) {
      if ((x.code & 0xf0) !== 0xb0) reads.push(x.dst);
      if ((x.code & 0x08) !== 0) reads.push(x.src);
    } else if (cls === 5 || cls === 6) {
      const op = x.code & 0xf0;
      if (op === 0x90) {
        for (const d of s.r0) {
          if (d >= 0 && movImm(d)) returns.add(d);
          else returnsUnknown ??= `exit at instruction ${i} returns a value computed at run time (instruction ${d})`;
        }
      } else if (op === 0x80) reads.push(1, 2, 3, 4, 5);
      else if (op !== 0x00) {
        reads.push(x.dst);
        if ((x.code & 0x08) !== 0) reads.push(x.src);
      }
    }
    if (reads.includes(0)) for (const d of s.r0) used.add(d);
  }
  for (const d of returns) if (used.has(d)) returnsUnknown ??= `the return value set at instruction ${d} is also used before the exit`;
  return { loads, returns: [...returns].sort((p, q) => p - q), ...(returnsUnknown ? { returnsUnknown } : {}) };
}

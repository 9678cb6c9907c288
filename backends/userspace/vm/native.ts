// The 'native' engine: a loaded program runs on the uprobe agent's C engine (native/agent/vm/) in
// process through the addon (native/src/vm.cc), on the same VmMemory, with the same helpers, tail calls,
// faults and step counts as the interpreter; the faults become the interpreter's VmErrors here.

import { loadNative, type NativeAddon, type NativeVmProgram, type NativeVmResult } from '../../linux/native.js';
import { LDDW_SRC, MAX_CALL_DEPTH, VmError } from './api.js';
import { accessFault, REGION_STACK, REGION_WRITABLE, STACK_BASE, TABLE_INFO } from './memory.js';
import { K, LoadedProgram } from './program.js';
import { budgetError, callHelper, callxHelper, PacketExit, tailTarget, type RunState } from './state.js';

/** ebpf_vm.h's run results */
const STATUS = { DONE: 0, PACKET_EXIT: 1, MEMORY: 2, BUDGET: 3, STACK: 4, CALL: 5, HELPER: 6 } as const;
/** where the binding finds the region table (memory.ts mirrors it into the memory for the compiler) */
const LAYOUT = new Uint32Array([TABLE_INFO, REGION_WRITABLE, REGION_STACK]);

type Engine = Required<Pick<NativeAddon, 'vmLoad' | 'vmRun'>>;
let addon: Engine | undefined;

function engine(): Engine {
  if (addon !== undefined) return addon;
  let a: NativeAddon;
  try {
    a = loadNative();
  } catch (e) {
    throw new VmError('unsupported', `the native engine needs the addon: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof a.vmLoad !== 'function' || typeof a.vmRun !== 'function') {
    throw new VmError('unsupported', 'the native addon has no eBPF engine (rebuild it: npx cmake-js compile -d native --out native/build)');
  }
  addon = { vmLoad: a.vmLoad.bind(a), vmRun: a.vmRun.bind(a) };
  return addon;
}

// ---- the run in progress (runs nest only through helpers, on other memories: saved and restored) ----

const NONE: unique symbol = Symbol('none');
let current: RunState | undefined;
/** what a hook threw: the run ends and this is rethrown, as the interpreter would have let it pass */
let failure: unknown = NONE;
/** tail-call targets the engine may be running: kept alive (with their engine copies) until the run ends */
let pinned: LoadedProgram[] = [];

function resolveHook(owner: object, id: number): boolean {
  try {
    return (owner as LoadedProgram).env.helper(id) !== undefined;
  } catch (e) {
    if (failure === NONE) failure = e;
    return false;
  }
}

function helperHook(owner: object, pc: number, id: number, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint): bigint | undefined {
  const p = owner as LoadedProgram;
  try {
    if (p.kind[pc] === K.CALLX) return callxHelper(p, pc, BigInt(id), current!, r1, r2, r3, r4, r5);
    return callHelper(p, pc, p.helpers[pc]!, id, current!, r1, r2, r3, r4, r5);
  } catch (e) {
    failure = e;
    return undefined;
  }
}

function tailHook(owner: object, pc: number, map: bigint, index: number): NativeVmProgram | null | undefined {
  try {
    const t = tailTarget(owner as LoadedProgram, pc, current!, map, BigInt(index));
    if (t === undefined) return null;
    pinned.push(t);
    return handleOf(t);
  } catch (e) {
    failure = e;
    return undefined;
  }
}

// ---- programs ------------------------------------------------------------------------------------------

const handles = new WeakMap<LoadedProgram, NativeVmProgram>();

/** the program's instructions with its map references (lddw src 1, 2, 5, 6) as the constants load() resolved */
function resolvedInsns(p: LoadedProgram): Uint8Array {
  const b = p.insns.slice();
  const dv = new DataView(b.buffer);
  for (let pc = 0; pc < p.length; pc++) {
    if (p.kind[pc] !== K.LDDW) continue;
    const s = p.src[pc]!;
    if (s !== LDDW_SRC.IMM64 && s !== LDDW_SRC.CODE_ADDR) {
      b[pc * 8 + 1] = p.dst[pc]!;
      dv.setInt32(pc * 8 + 4, p.kLo[pc]!, true);
      dv.setInt32(pc * 8 + 12, p.kHi[pc]!, true);
    }
    pc++;
  }
  return b;
}

/** the engine's copy of a program, loaded on its first native run */
function handleOf(p: LoadedProgram): NativeVmProgram {
  const have = handles.get(p);
  if (have !== undefined) return have;
  let h: NativeVmProgram;
  try {
    h = engine().vmLoad(resolvedInsns(p), p, p.env.tailCall !== undefined, resolveHook);
  } catch (e) {
    const x = e as { kind?: unknown; pc?: unknown; message?: unknown };
    if (x.kind !== 'invalid' && x.kind !== 'unsupported') throw e;
    // load() accepted it, so this is a disagreement between the engines: report it as the engine's refusal
    const pc = typeof x.pc === 'number' ? x.pc : undefined;
    throw new VmError(x.kind, `native engine: ${String(x.message)}`, { pc, insn: pc === undefined ? undefined : p.text(pc), program: p.name });
  }
  handles.set(p, h);
  return h;
}

// ---- runs ----------------------------------------------------------------------------------------------

/** Run `p` from its entry (depth 0; the engine runs tail calls itself) with r1..r5 = args. Returns r0. */
export function nativeRun(p: LoadedProgram, args: readonly bigint[], depth: number, st: RunState): bigint {
  if (depth !== 0) throw new Error('the native engine runs tail calls itself');
  const e = engine();
  const h = handleOf(p);
  const a = new BigUint64Array(5);
  for (let k = 0; k < 5; k++) a[k] = BigInt.asUintN(64, args[k] ?? 0n);
  const pk = st.packet;
  const saved = [current, failure, pinned] as const;
  current = st;
  failure = NONE;
  pinned = [];
  let r: NativeVmResult;
  let failed: unknown;
  try {
    r = e.vmRun(h, p.memory.wasm, a, st.budget, pk?.addr ?? 0, pk?.size ?? 0, STACK_BASE, LAYOUT, helperHook, resolveHook, tailHook);
  } finally {
    failed = failure;
    [current, failure, pinned] = saved;
  }
  const [status, r0, left, pc, owner] = r;
  st.budget = left;
  if (status === STATUS.DONE) return r0;
  if (status === STATUS.PACKET_EXIT) throw new PacketExit();
  if (status === STATUS.HELPER) {
    if (failed !== NONE) throw failed;
    throw new VmError('helper', 'the native engine aborted a helper call', { pc, insn: p.text(pc), program: p.name });
  }
  const fp = owner instanceof LoadedProgram ? owner : p;
  const where = { pc, insn: fp.text(pc), program: fp.name };
  switch (status) {
    case STATUS.MEMORY: {
      const addr = r[5];
      const msg = accessFault(fp.memory, Number(addr & 0xffffffffn) | 0, Number(addr >> 32n) | 0, r[6], r[7], r[8]);
      throw new VmError('memory', msg, where);
    }
    case STATUS.BUDGET:
      throw budgetError(fp, pc, st);
    case STATUS.STACK:
      throw new VmError('stack', `call depth exceeds ${MAX_CALL_DEPTH} frames`, where);
    case STATUS.CALL:
      throw new VmError('call', `callx to 0x${r[9].toString(16)}: neither a function nor a known helper`, where);
    default:
      throw new VmError('call', `the native engine returned status ${status}`, where);
  }
}

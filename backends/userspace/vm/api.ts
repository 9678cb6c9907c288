// The public contract of the userspace eBPF VM (backends/userspace/vm/). The object loader, maps and
// helpers of the userspace backend (backends/userspace/) code against this file only; keep it stable.
//
// Model, in one paragraph: a program is the linked array of 8-byte eBPF instructions (RFC 9669) of one
// entry point and every subprogram it calls, with ELF relocations already applied by the loader
// (bpf-to-bpf call imms pc-relative, lddw map imms holding map fds). `vm.load()` validates it once,
// resolves its lddw pseudo loads and helper calls through a `VmEnvironment` the loader supplies, and
// returns a `VmProgram`. `vm.run()` executes it on one of three engines with one semantics: 'interp' (a
// reference interpreter), 'jit' (a compiler to WebAssembly, compiled once per program and cached) or
// 'native' (the uprobe agent's C engine, native/agent/vm/, through the addon).
// Everything the program can touch lives in one address space, a `VmMemory` (one WebAssembly.Memory):
// the stack, ctx, map values, ring buffer records, packet data. Pointers in registers are byte offsets
// into it; every load and store is checked against the live `Region`s of that memory, and a program can
// run at most `budget` instructions. Faults are `VmError`s naming the instruction, never host crashes.

import { WasmBpfError } from '../../../src/errors.js';
import { BPF_PSEUDO, HELPER } from '../../../src/kernel/uapi.js';

// ---- limits and well-known numbers ------------------------------------------------------------------

/** bytes of stack per call frame; r10 points one past the frame's top (the frame is [r10-512, r10)) */
export const STACK_FRAME_SIZE = 512;
/** frames: the entry program plus 7 nested bpf-to-bpf calls (the kernel's MAX_CALL_FRAMES) */
export const MAX_CALL_DEPTH = 8;
/** successful tail calls one run may make (the kernel's MAX_TAIL_CALL_CNT) */
export const MAX_TAIL_CALLS = 33;
/** instructions a run may execute unless RunOptions.budget says otherwise */
export const DEFAULT_BUDGET = 100_000_000;
/** bpf_tail_call(ctx, prog_array_map, index): implemented by the VM itself, see VmEnvironment.tailCall */
export const HELPER_TAIL_CALL = HELPER.tail_call;
/** addresses below this are never mapped: NULL and small integers used as pointers always fault */
export const NULL_GUARD = 0x10000;

/** lddw (opcode 0x18) src_reg values (RFC 9669 section 5.4) */
export const LDDW_SRC = {
  /** dst = imm64 */
  IMM64: 0,
  /** dst = map_by_fd(imm): resolved by VmEnvironment.mapByFd */
  MAP_FD: BPF_PSEUDO.MAP_FD,
  /** dst = map_val(map_by_fd(imm)) + next_imm: resolved by VmEnvironment.mapValue */
  MAP_VALUE: BPF_PSEUDO.MAP_VALUE,
  /** dst = var_addr(imm) (kernel BTF variable): refused at load */
  VAR_ADDR: BPF_PSEUDO.BTF_ID,
  /** dst = code_addr(imm): the address of the function at pc + imm + 1, usable by callx */
  CODE_ADDR: BPF_PSEUDO.FUNC,
  /** dst = map_by_idx(imm): resolved by VmEnvironment.mapByIndex (refused when absent) */
  MAP_IDX: BPF_PSEUDO.MAP_IDX,
  /** dst = map_val(map_by_idx(imm)) + next_imm: resolved by VmEnvironment.mapValueByIndex */
  MAP_IDX_VALUE: BPF_PSEUDO.MAP_IDX_VALUE,
} as const;

/** call (opcode 0x85) src_reg values */
export const CALL_SRC = {
  /** helper by static id in imm: resolved by VmEnvironment.helper */
  HELPER: 0,
  /** bpf-to-bpf call, target = pc + imm + 1; the VM handles it (r1-r5 args, r6-r9 preserved, new frame) */
  LOCAL: BPF_PSEUDO.CALL,
  /** helper by BTF id (kfunc): refused at load */
  KFUNC: BPF_PSEUDO.KFUNC_CALL,
} as const;

// ---- errors -----------------------------------------------------------------------------------------

export type VmErrorKind =
  /** the program is malformed: bad opcode or register, jump out of range, truncated lddw, ... (at load) */
  | 'invalid'
  /** well formed but needs something the VM or the environment does not provide (kfunc, unknown helper
   *  id, unknown map fd, lddw src 3, ...) (at load) */
  | 'unsupported'
  /** a load or store outside every region it may touch, or a store into a read-only region */
  | 'memory'
  /** the instruction budget ran out (see RunOptions.budget) */
  | 'budget'
  /** a bpf-to-bpf call (or callx) past MAX_CALL_DEPTH frames */
  | 'stack'
  /** callx to something that is neither a function nor a known helper */
  | 'call'
  /** a helper threw (the helper's error is the cause), or returned something that is not a bigint */
  | 'helper';

/**
 * Every failure of load or run. `pc` is the instruction index (in 8-byte slots, as the disassembler
 * numbers them) and `insn` its disassembly, when the failure belongs to one instruction. The message
 * names both, e.g. "memory: load of 8 bytes at 0x0 out of bounds at pc 3 (ldxdw %r0, [%r1+0])".
 */
export class VmError extends WasmBpfError {
  readonly kind: VmErrorKind;
  readonly pc: number | undefined;
  readonly insn: string | undefined;
  /** the program's name */
  readonly program: string | undefined;
  constructor(
    kind: VmErrorKind,
    message: string,
    where?: { pc?: number; insn?: string; program?: string },
    options?: { cause?: unknown },
  ) {
    const at = where?.pc === undefined ? '' : ` at pc ${where.pc}${where.insn === undefined ? '' : ` (${where.insn})`}`;
    const prog = where?.program === undefined ? '' : ` in ${where.program}`;
    super(kind === 'invalid' || kind === 'unsupported' ? 'UNSUPPORTED' : 'GUEST_TRAP', `${kind}: ${message}${at}${prog}`, options);
    this.name = 'VmError';
    this.kind = kind;
    this.pc = where?.pc;
    this.insn = where?.insn;
    this.program = where?.program;
  }
}

// ---- memory -----------------------------------------------------------------------------------------

/** What a region holds; used in messages, statistics and for the JIT's fast paths (stack, last region). */
export type RegionKind = 'stack' | 'ctx' | 'map-value' | 'ringbuf' | 'packet' | 'input' | 'other';

/** A live, bounds-checked range [addr, addr + size) of a VmMemory. */
export interface Region {
  /** address (byte offset into the VmMemory), >= NULL_GUARD, 8-byte aligned unless align said otherwise */
  readonly addr: number;
  readonly size: number;
  readonly kind: RegionKind;
  /** for messages, e.g. the map's name */
  readonly name: string;
  /** stores into a read-only region fault (frozen .rodata maps, read-only ctx) */
  readonly writable: boolean;
}

export interface AllocOptions {
  kind: RegionKind;
  name?: string;
  /** default true */
  writable?: boolean;
  /** power of two, default 8 */
  align?: number;
  /** zero the bytes (default true; fresh memory is always zero) */
  zero?: boolean;
}

/**
 * One VM address space: a WebAssembly.Memory that the JIT imports and the interpreter reads through
 * typed views. The loader allocates map storage here (one region per map, kernel-style preallocation,
 * is the fast choice: the JIT caches the last region a load/store hit; regions may be sub-divided by
 * their owner), helpers reach program memory through it, and every program that shares maps must
 * share it. Allocation may grow the memory, which replaces its ArrayBuffer: take `bytes()`/`view()`
 * afresh after any allocation, and never keep a view across a run (helpers may allocate).
 * Not thread-safe; one run at a time per VmMemory (a nested run on the same memory is an error).
 */
export interface VmMemory {
  readonly wasm: WebAssembly.Memory;
  /** the whole memory (a fresh view over the current buffer) */
  bytes(): Uint8Array;
  /** DataView over the whole memory (a fresh view over the current buffer) */
  view(): DataView;
  /** allocate a region; throws RangeError when the memory cannot grow enough */
  alloc(size: number, opts: AllocOptions): Region;
  /** unmap a region (later accesses fault); its bytes may be reused by a later alloc */
  free(region: Region): void;
  /** the live region holding [addr, addr + len), if any */
  find(addr: number | bigint, len: number): Region | undefined;
  /**
   * Checked access for helpers: the offset of [addr, addr + len) in bytes() when it lies inside one
   * live region (writable when `write`); otherwise throws VmError('memory'). len 0 is allowed anywhere
   * (returns the address clamped to a number, or 0). Helpers see the whole stack area (all frames).
   */
  check(addr: bigint | number, len: number, write: boolean): number;
  /** checked read: a copy of [addr, addr + len) */
  read(addr: bigint | number, len: number): Uint8Array;
  /** checked write of `data` at addr */
  write(addr: bigint | number, data: Uint8Array): void;
  /** live regions, in address order */
  regions(): readonly Region[];
}

export interface MemoryOptions {
  /** initial size in 64 KiB pages (default 4) */
  initialPages?: number;
  /** upper bound in 64 KiB pages (default 16384 = 1 GiB) */
  maximumPages?: number;
}

// ---- helpers and the environment ----------------------------------------------------------------------

/** What a helper knows about the call it serves. The object is reused across calls: do not keep it. */
export interface HelperCall {
  readonly memory: VmMemory;
  /** the program executing the call (the tail-called one after a tail call) */
  readonly program: VmProgram;
  /** the call instruction's index */
  readonly pc: number;
  /** RunOptions.data of this run */
  readonly data: unknown;
}

/**
 * A helper: r1..r5 in, r0 out, all as u64 bits (BigInt.asUintN(64, x) or asIntN: both are accepted
 * and truncated to 64 bits). Pointer arguments are VmMemory addresses: read them with call.memory.check
 * / read / write, which fault cleanly. A helper that throws ends the run with VmError('helper') caused
 * by the thrown error (a VmError thrown by the helper, e.g. from memory.check, passes through as is).
 * Helpers must be synchronous. r6-r9 and the stack are preserved by the VM; r1-r5 are clobbered.
 */
export type Helper = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint, call: HelperCall) => bigint;

/**
 * What the loader supplies to resolve a program's external references. Everything is resolved once,
 * at vm.load(): unknown helper ids, map fds and map indexes are refused there ('unsupported') naming the
 * instruction, so a loaded program never meets an unresolved reference at run time (except callx).
 */
export interface VmEnvironment {
  /** the address space the program's pointers live in (maps must be allocated here) */
  readonly memory: VmMemory;
  /** the helper with this static id (call src_reg 0, and callx of a helper id), or undefined */
  helper(id: number): Helper | undefined;
  /**
   * lddw src_reg 1: the 64-bit value dst receives for the map with this fd (any value that helpers
   * recognise as that map: e.g. the address of a small descriptor region, or an opaque handle). The VM
   * only passes it around (to helpers, and to tailCall). Undefined: unknown fd.
   */
  mapByFd?(fd: number): bigint | undefined;
  /**
   * lddw src_reg 2: the address of the map's value (array-like maps: element 0, e.g. .data/.rodata/.bss)
   * before `offset` is added by the VM. Undefined: unknown fd or a map without a direct value.
   */
  mapValue?(fd: number): bigint | undefined;
  /** lddw src_reg 5 (map by index into the object's maps), as mapByFd */
  mapByIndex?(index: number): bigint | undefined;
  /** lddw src_reg 6, as mapValue */
  mapValueByIndex?(index: number): bigint | undefined;
  /**
   * bpf_tail_call (helper 12) with r2 = `map` (a value mapByFd returned) and r3 = index (u32): the
   * program in slot `index` of that prog array, or undefined (bad map, index out of range, empty slot),
   * in which case the call falls through to the next instruction with r0 = -ENOENT (-2) like a failed
   * kernel tail call (so does every tail call after MAX_TAIL_CALLS successful ones in the same run,
   * without asking). A found program runs with r1 = the r1 given to the helper (ctx), a fresh stack,
   * and its r0 becomes the r0 of the calling frame's exit: the rest of the caller's frame is skipped.
   * The target may have been loaded in a different environment only if it shares the same VmMemory.
   * Absent: helper 12 is unknown unless helper(12) supplies an ordinary helper.
   */
  tailCall?(map: bigint, index: number): VmProgram | undefined;
}

// ---- programs and runs -------------------------------------------------------------------------------

/** 'native': the uprobe agent's C engine (native/agent/vm/) through the addon, for conformance and benchmarks */
export type Engine = 'interp' | 'jit' | 'native';

export interface LoadOptions {
  /** used in error messages (default 'prog') */
  name?: string;
  /** default: a fresh environment with its own VmMemory, no helpers and no maps */
  env?: VmEnvironment;
}

/** A validated, resolved program. Immutable; may be run any number of times, on any engine. */
export interface VmProgram {
  readonly name: string;
  /** a copy of the instructions as given (8 bytes each, little-endian) */
  readonly insns: Uint8Array;
  /** instruction slots (insns.length / 8; lddw counts as 2) */
  readonly length: number;
  readonly env: VmEnvironment;
  /** hex SHA-256 of insns: the JIT cache key together with the resolved environment values */
  readonly hash: string;
}

export interface RunOptions {
  /** default 'jit' ('native' needs the addon) */
  engine?: Engine;
  /**
   * Instructions the run may execute, tail-called programs included (default DEFAULT_BUDGET). Counted
   * per basic block; checked at every loop header (target of a backward jump) and at every exit, so a
   * run stops with VmError('budget') at most one loop-free path after the count passes the budget.
   */
  budget?: number;
  /**
   * initial r1..r5 (u64 bits). When omitted and `input` is given: r1 = address of the input's copy,
   * r2 = its length (the conformance-suite convention); otherwise all zero.
   */
  args?: readonly bigint[];
  /** passed to helpers as HelperCall.data */
  data?: unknown;
  /** kind of the region holding the input copy (default 'input'; e.g. 'ctx' or 'packet') */
  inputKind?: RegionKind;
  /**
   * The packet the legacy LD_ABS / LD_IND instructions read (network byte order, like the kernel's skb
   * loads); an access outside it ends the program with r0 = 0 as in the kernel. Default: the input copy.
   */
  packet?: { addr: number; size: number };
}

export interface RunResult {
  /** r0 at the entry program's exit, as u64 */
  r0: bigint;
  /** instructions executed (counted per basic block on every engine, so they agree exactly) */
  steps: number;
}

/** The VM's entry points (exported as `vm` from backends/userspace/vm/index.ts). */
export interface VmApi {
  /** validate + resolve; throws VmError('invalid' | 'unsupported') naming the instruction */
  load(insns: Uint8Array, opts?: LoadOptions): VmProgram;
  /**
   * Run and return r0 (u64). `program` may be raw instruction bytes (loaded with the default
   * environment). `input`, when given, is copied into a fresh region of the program's memory for the
   * run (r1 = its address, r2 = its length unless options.args says otherwise), copied back into
   * `input` afterwards (also after a fault), and freed. Throws VmError on any fault.
   */
  run(program: VmProgram | Uint8Array, input?: Uint8Array, options?: RunOptions): bigint;
  /** as run, with the instruction count */
  execute(program: VmProgram | Uint8Array, input?: Uint8Array, options?: RunOptions): RunResult;
  /** compile for the JIT ahead of the first run (cached; later runs reuse it); returns milliseconds spent */
  compile(program: VmProgram): number;
  /** a new address space */
  createMemory(opts?: MemoryOptions): VmMemory;
  /** an environment over `memory` with these helpers and nothing else (convenient for tests) */
  createEnvironment(opts?: { memory?: VmMemory; helpers?: ReadonlyMap<number, Helper> | Record<number, Helper> }): VmEnvironment;
  /** assemble text: the kernel/LLVM syntax ("w0 = 1", "r0 = *(u64 *)(r1 + 8)") and the ubpf one ("mov32 %r0, 1"), decided per line unless `syntax` says; throws AsmError (code USAGE) naming the line */
  asm(text: string, opts?: { syntax?: 'llvm' | 'ubpf' | 'auto' }): Uint8Array;
  /** one instruction per line, in the syntax asm() reads (default 'ubpf'; 'llvm': what llvm-objdump prints) */
  disasm(insns: Uint8Array, opts?: { syntax?: 'llvm' | 'ubpf' }): string;
}

// The VM's public entry: `vm` implements VmApi (see api.ts for the contract).

import {
  DEFAULT_BUDGET,
  VmError,
  type Engine,
  type Helper,
  type LoadOptions,
  type MemoryOptions,
  type Region,
  type RunOptions,
  type RunResult,
  type VmApi,
  type VmEnvironment,
  type VmMemory,
  type VmProgram,
} from './api.js';
import { assemble, disassemble } from './asm.js';
import { interpret } from './interp.js';
import { compileProgram, jitRun } from './jit.js';
import { Memory, STACK_BASE, STACK_SIZE } from './memory.js';
import { nativeRun } from './native.js';
import { LoadedProgram, loadProgram } from './program.js';
import { HelperCallImpl, PacketExit, type RunState } from './state.js';

export * from './api.js';
export { AsmError } from './asm.js';

function createEnvironment(opts: { memory?: VmMemory; helpers?: ReadonlyMap<number, Helper> | Record<number, Helper> } = {}): VmEnvironment {
  const memory = opts.memory ?? new Memory();
  const h = opts.helpers;
  const map = h === undefined ? new Map<number, Helper>() : h instanceof Map ? h : new Map(Object.entries(h).map(([k, v]) => [Number(k), v]));
  return { memory, helper: (id: number) => map.get(id) };
}

function asProgram(program: VmProgram | Uint8Array): LoadedProgram {
  if (program instanceof Uint8Array) return loadProgram(program, undefined, () => createEnvironment());
  if (!(program instanceof LoadedProgram)) throw new TypeError('vm.run: not a program returned by vm.load()');
  return program;
}

function runEngine(engine: Engine, p: LoadedProgram, args: readonly bigint[], depth: number, st: RunState): bigint {
  return engine === 'interp' ? interpret(p, args, depth, st) : engine === 'native' ? nativeRun(p, args, depth, st) : jitRun(p, args, depth, st);
}

function execute(program: VmProgram | Uint8Array, input?: Uint8Array, options: RunOptions = {}): RunResult {
  const p = asProgram(program);
  const engine: Engine = options.engine ?? 'jit';
  if (engine !== 'jit' && engine !== 'interp' && engine !== 'native') throw new TypeError(`unknown engine '${String(engine)}'`);
  const budget = options.budget ?? DEFAULT_BUDGET;
  if (!(budget >= 0) || !Number.isSafeInteger(budget)) throw new TypeError(`bad budget ${budget}`);
  const mem = p.memory;
  if (mem.running) throw new VmError('call', 'a run is already using this VmMemory (runs do not nest)', { program: p.name });
  let region: Region | undefined;
  mem.running = true;
  try {
    if (input !== undefined && input.length > 0) {
      region = mem.alloc(input.length, { kind: options.inputKind ?? 'input', name: 'input', zero: false });
      mem.bytes().set(input, region.addr);
    }
    const args: bigint[] = [0n, 0n, 0n, 0n, 0n];
    if (options.args !== undefined) options.args.slice(0, 5).forEach((v, k) => (args[k] = BigInt.asUintN(64, v)));
    else if (region !== undefined) {
      args[0] = BigInt(region.addr);
      args[1] = BigInt(region.size);
    }
    mem.bytes().fill(0, STACK_BASE, STACK_BASE + STACK_SIZE);
    const st: RunState = {
      engine,
      budget,
      tailCalls: 0,
      call: new HelperCallImpl(mem, p, options.data),
      packet: options.packet ?? (region !== undefined ? { addr: region.addr, size: region.size } : undefined),
      tail: (target, ctx, depth) => runEngine(engine, target, [ctx, 0n, 0n, 0n, 0n], depth, st),
    };
    let r0: bigint;
    try {
      r0 = runEngine(engine, p, args, 0, st);
    } catch (e) {
      if (e instanceof PacketExit) r0 = 0n;
      else if (e instanceof RangeError && /call stack/i.test(e.message)) {
        throw new VmError('stack', 'host stack exhausted (too many nested tail calls and calls)', { program: p.name }, { cause: e });
      } else throw e;
    }
    return { r0, steps: budget - st.budget };
  } finally {
    if (region !== undefined && input !== undefined) {
      input.set(mem.bytes().subarray(region.addr, region.addr + input.length));
      mem.free(region);
    }
    mem.running = false;
  }
}

export const vm: VmApi = {
  load(insns: Uint8Array, opts?: LoadOptions): VmProgram {
    return loadProgram(insns, opts, () => createEnvironment());
  },
  run(program: VmProgram | Uint8Array, input?: Uint8Array, options?: RunOptions): bigint {
    return execute(program, input, options).r0;
  },
  execute,
  compile(program: VmProgram): number {
    return compileProgram(asProgram(program));
  },
  createMemory(opts?: MemoryOptions): VmMemory {
    return new Memory(opts);
  },
  createEnvironment,
  asm: assemble,
  disasm: disassemble,
};

export default vm;

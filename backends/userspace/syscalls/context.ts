// Builds the context record a tracepoint program reads (its `ctx`) from an event layout and values: the
// common header, syscall numbers and register values as the kernel stores them, strings via __data_loc.
import { WasmBpfError } from '../../../src/errors.js';
import type { TraceField } from './format.js';
import { ABIS, type Arch, type EventLayout } from './layout.js';

export type FieldValue = number | bigint | string | Uint8Array | readonly (number | bigint)[];

/** the common header's values: common_type is the layout's event id */
export interface RecordHeader {
  /** the thread id (common_pid) */
  pid: number;
  /** common_flags (irqs-off, need-resched, ...: 0 in a traced thread's syscall) */
  flags?: number;
  /** common_preempt_count */
  preemptCount?: number;
  /**
   * The record as a BPF program's ctx: the kernel stores its pt_regs pointer over the 8 header bytes before it runs
   * a tracepoint program (perf_trace_run_bpf_submit, perf_call_bpf_enter/exit), and the verifier refuses direct
   * reads below offset 8. Give the pointer value the backend exposes (e.g. a pt_regs image's VM address).
   */
  regs?: bigint;
}

const utf8 = new TextEncoder();

function bytesOf(v: string | Uint8Array, nul: boolean): Uint8Array {
  if (typeof v !== 'string') return v;
  const b = utf8.encode(v);
  if (!nul) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

function writeInt(dv: DataView, off: number, size: number, v: number | bigint): void {
  const u = BigInt.asUintN(size * 8, BigInt(v));
  if (size === 8) dv.setBigUint64(off, u, true);
  else if (size === 4) dv.setUint32(off, Number(u), true);
  else if (size === 2) dv.setUint16(off, Number(u), true);
  else if (size === 1) dv.setUint8(off, Number(u));
  else throw new WasmBpfError('UNSUPPORTED', `a ${size}-byte scalar field cannot be written: give its bytes (Uint8Array) instead`);
}

function badValue(layout: EventLayout, f: TraceField, v: FieldValue): WasmBpfError {
  return new WasmBpfError('USAGE', `field '${f.decl}' of ${layout.category}/${layout.name} cannot hold ${typeof v === 'object' ? 'an array' : typeof v}: give a number/bigint for a scalar, a string or bytes for char arrays and __data_loc, an array for '${f.name}[${f.count}]'`);
}

/** a record: every named field written (missing ones stay 0), __data_loc payloads after the fixed part in field order */
export function buildRecord(layout: EventLayout, header: RecordHeader, values: Readonly<Record<string, FieldValue>>): Uint8Array {
  const all: Record<string, FieldValue> = {
    common_type: layout.id,
    common_flags: header.flags ?? 0,
    common_preempt_count: header.preemptCount ?? 0,
    common_pid: header.pid,
    ...values,
  };
  const known = new Set(layout.fields.map((f) => f.name));
  for (const k of Object.keys(values)) {
    if (!known.has(k)) throw new WasmBpfError('USAGE', `${layout.category}/${layout.name} has no field '${k}' (it has ${[...known].join(', ')})`);
  }
  const payloads: [TraceField, Uint8Array][] = [];
  let total = layout.size;
  for (const f of layout.fields) {
    const v = all[f.name];
    if (f.dataLoc && v !== undefined) {
      if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw badValue(layout, f, v);
      const b = bytesOf(v, true);
      payloads.push([f, b]);
      total += b.length;
    }
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let next = layout.size;
  for (const f of layout.fields) {
    const v = all[f.name];
    if (v === undefined) continue;
    if (f.dataLoc) {
      const b = payloads.find((p) => p[0] === f)![1];
      out.set(b, next);
      writeInt(dv, f.offset, f.size, (b.length << 16) | next);
      next += b.length;
    } else if (typeof v === 'string' || v instanceof Uint8Array) {
      if (f.count === 0) throw badValue(layout, f, v);
      out.set(bytesOf(v, false).subarray(0, f.size - 1), f.offset);
    } else if (typeof v === 'object') {
      if (f.count === 0 || v.length > f.count) throw badValue(layout, f, v);
      const each = f.size / f.count;
      v.forEach((x, i) => writeInt(dv, f.offset + i * each, each, x));
    } else {
      if (f.count !== 0) throw badValue(layout, f, v);
      writeInt(dv, f.offset, f.size, v);
    }
  }
  if (header.regs !== undefined) dv.setBigUint64(0, BigInt.asUintN(64, header.regs), true);
  return out;
}

/** a syscall as the registers hold it: the number, the six argument registers, the result (sys_exit) */
export interface SyscallValues {
  nr: number | bigint;
  args: readonly (number | bigint)[];
  ret?: number | bigint;
}

/** syscalls/sys_enter_*|sys_exit_* and raw_syscalls/sys_enter|sys_exit records: arguments as full registers, as the kernel stores them */
export function syscallRecord(layout: EventLayout, header: RecordHeader, sc: SyscallValues): Uint8Array {
  const exit = /^sys_exit/.test(layout.name);
  const values: Record<string, FieldValue> = {};
  if (layout.category === 'raw_syscalls') {
    values.id = sc.nr;
    if (exit) values.ret = sc.ret ?? 0;
    else values.args = [...sc.args, 0, 0, 0, 0, 0, 0].slice(0, 6);
  } else if (layout.category === 'syscalls') {
    values.__syscall_nr = sc.nr;
    if (exit) values.ret = sc.ret ?? 0;
    else layout.fields.filter((f) => f.offset >= 16).forEach((f, i) => (values[f.name] = sc.args[i] ?? 0));
  } else {
    throw new WasmBpfError('USAGE', `${layout.category}/${layout.name} is not a syscall event: build it with buildRecord`);
  }
  return buildRecord(layout, header, values);
}

/** the syscall in a register set named as the arch's ABI names them (abi/<arch>.ts) */
export function syscallFromRegs(arch: Arch, regs: Readonly<Record<string, bigint>>): SyscallValues {
  const abi = ABIS[arch];
  const reg = (n: string): bigint => {
    const v = regs[n];
    if (v === undefined) throw new WasmBpfError('USAGE', `register '${n}' missing: ${arch} syscalls need ${[abi.nr, ...abi.args].join(', ')}`);
    return v;
  };
  return { nr: reg(abi.nr), args: abi.args.map(reg), ret: regs[abi.ret] };
}

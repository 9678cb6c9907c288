// The userspace backend's eBPF helpers, by id (enum bpf_func_id in linux/bpf.h, from the generated
// src/kernel/uapi.ts).
//
// Helpers run inside a VM run: pointer arguments are VM addresses, read and written through the run's
// VmMemory (faults end the run with a VmError naming the instruction). Map arguments are the opaque
// handles the environment gave the program's lddw (see index.ts). What the kernel takes from the
// current task (pid, uid, comm, the task pointer) comes from the RunContext the backend sets per run.

import { randomBytes } from 'node:crypto';
import type { Helper, HelperCall, VmMemory } from './vm/api.js';
import { ERRNO, HELPER, HELPER_NAME } from '../../src/kernel/uapi.js';
import { CORE_POISON_HELPER } from '../../src/object/loader.js';
import { E, type UserMap } from './maps/common.js';
import { RingBufMap } from './maps/ringbuf.js';
import { PerfEventArrayMap } from './maps/perf.js';
import { QueueStackMap } from './maps/queue.js';

/** "bpf_map_lookup_elem (1)", "CO-RE poison (0xbad2310)", "helper 9999" */
export function helperName(id: number): string {
  if (id === CORE_POISON_HELPER) return 'CO-RE poison (0xbad2310)';
  const n = HELPER_NAME[id];
  return n ? `bpf_${n} (${id})` : `helper ${id}`;
}

/** The traced task a run pretends to run in (a later issue fills it from live processes). */
export interface CurrentTask {
  pid: number;
  tgid: number;
  uid: number;
  gid: number;
  /** up to 15 bytes are visible, like the kernel's TASK_COMM_LEN 16 */
  comm: string;
  /**
   * A task_struct image for bpf_get_current_task(_btf), laid out as the program's CO-RE target BTF
   * says; a function receives the address the image will have (for pointers into itself, e.g.
   * real_parent). Absent: those helpers return 0 (NULL), so BPF_CORE_READ through it reads zeros with
   * -EFAULT, as a faulting kernel read would. Programs may read the image, not write it.
   */
  taskStruct?: Uint8Array | { size: number; build: (addr: number) => Uint8Array };
}

/** Per-run state the helpers read (set by the backend before each run). */
export interface RunContext {
  task: CurrentTask;
  cpu: number;
  /** address of the task_struct image in VM memory for this run (0: none) */
  taskAddr: number;
}

export interface HelperHost {
  /** the map behind a handle from lddw, or undefined */
  mapByHandle(handle: bigint): UserMap | undefined;
  /** the object's ring buffers (submit/discard find the record's owner) */
  ringbufs(): readonly RingBufMap[];
  run(): RunContext;
  /** bpf_trace_printk output (one call, one string, without the trailing newline handling of trace_pipe) */
  trace(text: string): void;
  /** CLOCK_MONOTONIC in ns */
  now(): bigint;
  /** what a poisoned CO-RE instruction means, for the error (program, pc) */
  poisonInfo?(call: HelperCall): string;
}

const { EAGAIN } = ERRNO;
const neg = (errno: number): bigint => BigInt.asUintN(64, BigInt(-errno));
const errnoResult = (r: number): bigint => (r < 0 ? BigInt.asUintN(64, BigInt(r)) : BigInt(r));
const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

/** xorshift128+ seeded from the OS: bpf_get_prandom_u32 is not cryptographic in the kernel either */
function makeRandom(): () => number {
  const seed = randomBytes(16);
  let s0 = seed.readBigUInt64LE(0) | 1n;
  let s1 = seed.readBigUInt64LE(8) | 2n;
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = BigInt.asUintN(64, x ^ (x << 23n));
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(BigInt.asUintN(32, (s1 + y) >> 16n));
  };
}

/** copy [src, src+size) if it lies in a live region: the bytes, or undefined (a kernel read would fault) */
function probeBytes(mem: VmMemory, src: bigint, size: number): Uint8Array | undefined {
  if (size === 0) return new Uint8Array(0);
  const r = mem.find(src, size);
  if (!r) return undefined;
  const a = Number(src);
  return mem.bytes().slice(a, a + size);
}

/**
 * strncpy_from_*_nofault: up to size - 1 bytes then NUL. Returns the bytes to store (with the NUL)
 * or undefined when the string runs off mapped memory before a NUL or the limit.
 */
function probeString(mem: VmMemory, src: bigint, size: number): Uint8Array | undefined {
  if (size === 0) return new Uint8Array(0);
  const r = mem.find(src, 1);
  if (!r) return undefined;
  const a = Number(src);
  const end = r.addr + r.size;
  const bytes = mem.bytes();
  const limit = Math.min(a + size - 1, end);
  let i = a;
  while (i < limit && bytes[i] !== 0) i++;
  if (i < a + size - 1 && i === end) return undefined; // ran off the region before NUL or limit
  const out = new Uint8Array(i - a + 1);
  out.set(bytes.subarray(a, i));
  return out;
}

/** The helper table for one loaded object. */
export function buildHelpers(host: HelperHost): Map<number, Helper> {
  const random = makeRandom();
  const h = new Map<number, Helper>();

  const mapArg = (handle: bigint, helper: number): UserMap => {
    const m = host.mapByHandle(handle);
    if (!m) throw new Error(`${helperName(helper)}: 0x${handle.toString(16)} is not a map of this object`);
    return m;
  };
  const keyOf = (m: UserMap, call: HelperCall, addr: bigint): Uint8Array => {
    const ks = m.spec.keySize;
    const off = call.memory.check(addr, ks, false);
    return call.memory.bytes().subarray(off, off + ks);
  };
  const valueIn = (m: UserMap, call: HelperCall, addr: bigint): Uint8Array => {
    const vs = m.spec.valueSize;
    const off = call.memory.check(addr, vs, false);
    return call.memory.bytes().subarray(off, off + vs);
  };
  const valueOut = (m: UserMap, call: HelperCall, addr: bigint): Uint8Array => {
    const vs = m.spec.valueSize;
    const off = call.memory.check(addr, vs, true);
    return call.memory.bytes().subarray(off, off + vs);
  };

  // ---- maps ------------------------------------------------------------------------------------------
  h.set(HELPER.map_lookup_elem, (r1, r2, _r3, _r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_lookup_elem);
    return BigInt(m.progLookup(keyOf(m, call, r2)));
  });
  h.set(HELPER.map_update_elem, (r1, r2, r3, r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_update_elem);
    return errnoResult(m.progUpdate(keyOf(m, call, r2), valueIn(m, call, r3), u32(r4)));
  });
  h.set(HELPER.map_delete_elem, (r1, r2, _r3, _r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_delete_elem);
    return errnoResult(m.progDelete(keyOf(m, call, r2)));
  });
  h.set(HELPER.map_push_elem, (r1, r2, r3, _r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_push_elem);
    if (!(m instanceof QueueStackMap)) return neg(E.EINVAL);
    return errnoResult(m.progPush(valueIn(m, call, r2), u32(r3)));
  });
  h.set(HELPER.map_pop_elem, (r1, r2, _r3, _r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_pop_elem);
    if (!(m instanceof QueueStackMap)) return neg(E.EINVAL);
    return errnoResult(m.progPop(valueOut(m, call, r2)));
  });
  h.set(HELPER.map_peek_elem, (r1, r2, _r3, _r4, _r5, call) => {
    const m = mapArg(r1, HELPER.map_peek_elem);
    if (!(m instanceof QueueStackMap)) return neg(E.EINVAL);
    return errnoResult(m.progPeek(valueOut(m, call, r2)));
  });

  // ---- memory -----------------------------------------------------------------------------------------
  const probeRead: Helper = (r1, r2, r3, _r4, _r5, call) => {
    const size = u32(r2);
    const dst = call.memory.check(r1, size, true);
    const data = probeBytes(call.memory, r3, size);
    const bytes = call.memory.bytes();
    if (!data) {
      bytes.fill(0, dst, dst + size);
      return neg(E.EFAULT);
    }
    bytes.set(data, dst);
    return 0n;
  };
  const probeReadStr: Helper = (r1, r2, r3, _r4, _r5, call) => {
    const size = u32(r2);
    const dst = call.memory.check(r1, size, true);
    const data = probeString(call.memory, r3, size);
    const bytes = call.memory.bytes();
    if (!data) {
      bytes.fill(0, dst, dst + size);
      return neg(E.EFAULT);
    }
    bytes.set(data, dst);
    return BigInt(data.length);
  };
  for (const id of [HELPER.probe_read, HELPER.probe_read_user, HELPER.probe_read_kernel]) h.set(id, probeRead);
  for (const id of [HELPER.probe_read_str, HELPER.probe_read_user_str, HELPER.probe_read_kernel_str]) h.set(id, probeReadStr);

  // ---- time, cpu, random ----------------------------------------------------------------------------
  h.set(HELPER.ktime_get_ns, () => host.now());
  // CLOCK_BOOTTIME differs from CLOCK_MONOTONIC only by time spent suspended
  h.set(HELPER.ktime_get_boot_ns, () => host.now());
  // CLOCK_MONOTONIC_COARSE: tick resolution; 4 ms (HZ=250) granularity
  h.set(HELPER.ktime_get_coarse_ns, () => {
    const t = host.now();
    return t - (t % 4_000_000n);
  });
  h.set(HELPER.get_prandom_u32, () => BigInt(random()));
  h.set(HELPER.get_smp_processor_id, () => BigInt(host.run().cpu));
  h.set(HELPER.get_numa_node_id, () => 0n);

  // ---- current task -----------------------------------------------------------------------------------
  h.set(HELPER.get_current_pid_tgid, () => {
    const t = host.run().task;
    return (BigInt(t.tgid >>> 0) << 32n) | BigInt(t.pid >>> 0);
  });
  h.set(HELPER.get_current_uid_gid, () => {
    const t = host.run().task;
    return (BigInt(t.gid >>> 0) << 32n) | BigInt(t.uid >>> 0);
  });
  h.set(HELPER.get_current_comm, (r1, r2, _r3, _r4, _r5, call) => {
    const size = u32(r2);
    const dst = call.memory.check(r1, size, true);
    const bytes = call.memory.bytes();
    bytes.fill(0, dst, dst + size);
    if (size === 0) return 0n;
    const comm = new TextEncoder().encode(host.run().task.comm).subarray(0, Math.min(15, size - 1));
    bytes.set(comm, dst);
    return 0n;
  });
  const currentTask: Helper = () => BigInt(host.run().taskAddr);
  h.set(HELPER.get_current_task, currentTask);
  h.set(HELPER.get_current_task_btf, currentTask);

  // ---- output -------------------------------------------------------------------------------------------
  h.set(HELPER.trace_printk, (r1, r2, r3, r4, r5, call) => {
    const size = u32(r2);
    if (size === 0) return neg(E.EINVAL);
    const fmt = call.memory.read(r1, size);
    const text = formatPrintk(fmt, [r3, r4, r5], call.memory);
    if (text === undefined) return neg(E.EINVAL);
    host.trace(text);
    return BigInt(new TextEncoder().encode(text).length);
  });
  h.set(HELPER.perf_event_output, (_r1, r2, r3, r4, r5, call) => {
    const m = mapArg(r2, HELPER.perf_event_output);
    if (!(m instanceof PerfEventArrayMap)) return neg(E.EINVAL);
    const size = u32(r5);
    const off = call.memory.check(r4, size, false);
    return errnoResult(m.output(r3, call.memory.bytes().subarray(off, off + size)));
  });
  const ringArg = (handle: bigint, id: number): RingBufMap => {
    const m = mapArg(handle, id);
    if (!(m instanceof RingBufMap)) throw new Error(`${helperName(id)}: map '${m.name}' is not a ring buffer`);
    return m;
  };
  h.set(HELPER.ringbuf_output, (r1, r2, r3, r4, _r5, call) => {
    const m = ringArg(r1, HELPER.ringbuf_output);
    const size = u32(r3);
    const off = call.memory.check(r2, size, false);
    const r = m.output(call.memory.bytes().slice(off, off + size), u32(r4));
    return r === -EAGAIN ? neg(EAGAIN) : errnoResult(r);
  });
  h.set(HELPER.ringbuf_reserve, (r1, r2, r3) => {
    const m = ringArg(r1, HELPER.ringbuf_reserve);
    return BigInt(m.reserve(r2 > 0xffffffffn ? -1 : Number(r2), r3 === 0n ? 0 : 1));
  });
  const finish = (id: number, what: 'submit' | 'discard'): Helper => (r1, r2) => {
    const addr = r1 <= 0xffffffffn ? Number(r1) : -1;
    const rb = host.ringbufs().find((m) => m.owns(addr));
    if (!rb) throw new Error(`${helperName(id)}: 0x${r1.toString(16)} is not a reserved ring buffer record`);
    if (what === 'submit') rb.submit(addr, u32(r2));
    else rb.discard(addr, u32(r2));
    return 0n;
  };
  h.set(HELPER.ringbuf_submit, finish(HELPER.ringbuf_submit, 'submit'));
  h.set(HELPER.ringbuf_discard, finish(HELPER.ringbuf_discard, 'discard'));
  h.set(HELPER.ringbuf_query, (r1, r2) => ringArg(r1, HELPER.ringbuf_query).query(Number(BigInt.asUintN(32, r2))));

  // an instruction whose CO-RE relocation found no target: fails only if reached, as in the kernel
  h.set(CORE_POISON_HELPER, (_r1, _r2, _r3, _r4, _r5, call) => {
    throw new Error(`reached an instruction whose CO-RE relocation could not be resolved against the target BTF${host.poisonInfo ? ` (${host.poisonInfo(call)})` : ''}`);
  });
  return h;
}

// ---- bpf_trace_printk formatting (the kernel's bpf_bprintf_prepare subset) ------------------------------

/** Formats like bpf_trace_printk; undefined for a format the kernel refuses (-EINVAL). */
function formatPrintk(fmt: Uint8Array, args: readonly bigint[], mem: VmMemory): string | undefined {
  const nul = fmt.indexOf(0);
  if (nul < 0) return undefined; // the kernel wants the NUL inside fmt_size
  const f = fmt.subarray(0, nul);
  let out = '';
  let argi = 0;
  for (let i = 0; i < f.length; i++) {
    const c = f[i]!;
    if (c > 0x7e || (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0b && c !== 0x0c && c !== 0x0d)) return undefined;
    if (c !== 0x25) {
      out += String.fromCharCode(c);
      continue;
    }
    if (f[i + 1] === 0x25) {
      out += '%';
      i++;
      continue;
    }
    if (argi >= args.length) return undefined;
    const arg = args[argi++]!;
    i++;
    let flags = '';
    while (f[i] === 0x30 || f[i] === 0x2b || f[i] === 0x2d || f[i] === 0x20) flags += String.fromCharCode(f[i++]!);
    let width = 0;
    while (f[i] !== undefined && f[i]! >= 0x30 && f[i]! <= 0x39) width = width * 10 + (f[i++]! - 0x30);
    const ch = f[i] === undefined ? '' : String.fromCharCode(f[i]!);
    const pad = (s: string, numeric: boolean): string => {
      if (s.length >= width) return s;
      if (flags.includes('-')) return s.padEnd(width);
      if (numeric && flags.includes('0')) {
        const sign = s[0] === '-' || s[0] === '+' ? s[0] : '';
        return sign + s.slice(sign.length).padStart(width - sign.length, '0');
      }
      return s.padStart(width);
    };
    if (ch === 'p') {
      const n = f[i + 1] === undefined ? '' : String.fromCharCode(f[i + 1]!);
      if ((n === 'k' || n === 'u') && f[i + 2] === 0x73) {
        i += 2;
        out += pad(readCString(mem, arg), false);
        continue;
      }
      if (n === '' || /[\s\p{P}KxsS]/u.test(n)) {
        if (n === 'K' || n === 'x' || n === 's' || n === 'S') i++;
        out += pad(BigInt.asUintN(64, arg).toString(16).padStart(16, '0'), false);
        continue;
      }
      if ((n === 'i' || n === 'I') && (f[i + 2] === 0x34 || f[i + 2] === 0x36)) {
        const v6 = f[i + 2] === 0x36;
        i += 2;
        const b = probeBytes(mem, arg, v6 ? 16 : 4);
        if (!b) out += '(efault)';
        else if (!v6) out += pad(Array.from(b).join('.'), false);
        else {
          const words: string[] = [];
          for (let k = 0; k < 16; k += 2) words.push(((b[k]! << 8) | b[k + 1]!).toString(16).padStart(n === 'I' ? 1 : 4, '0'));
          out += pad(words.join(':'), false);
        }
        continue;
      }
      return undefined;
    }
    if (ch === 's') {
      out += pad(readCString(mem, arg), false);
      continue;
    }
    if (ch === 'c') {
      out += pad(String.fromCharCode(Number(arg & 0xffn)), false);
      continue;
    }
    let long = false;
    if (ch === 'l') {
      long = true;
      i++;
      if (f[i] === 0x6c) i++;
    }
    const conv = f[i] === undefined ? '' : String.fromCharCode(f[i]!);
    const bits = long ? 64 : 32;
    let s: string;
    switch (conv) {
      case 'd':
      case 'i': {
        const v = BigInt.asIntN(bits, arg);
        s = (v >= 0n && flags.includes('+') ? '+' : v >= 0n && flags.includes(' ') ? ' ' : '') + v.toString();
        break;
      }
      case 'u':
        s = BigInt.asUintN(bits, arg).toString();
        break;
      case 'x':
        s = BigInt.asUintN(bits, arg).toString(16);
        break;
      case 'X':
        s = BigInt.asUintN(bits, arg).toString(16).toUpperCase();
        break;
      default:
        return undefined;
    }
    out += pad(s, true);
  }
  return out;
}

function readCString(mem: VmMemory, addr: bigint): string {
  const b = probeString(mem, addr, 1024);
  if (!b) return '';
  return new TextDecoder().decode(b.subarray(0, b.length - 1));
}

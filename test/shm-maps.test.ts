// The agent's shared-memory maps (native/agent/maps/) through the addon (native/src/shmmaps.cc): the
// map_operate table (test/fixtures/mapop-cases.ts) on hash and per-CPU array maps gives what the
// TypeScript userspace maps give (and the kernel, the table's `want`); random operation sequences agree
// with the TypeScript maps for every hash and array type; ring buffer and perf event array records,
// drops and wake-ups; then the C programs: maps_unit (the program side) and maps_stress (N processes x
// M threads, SIGKILLed holders, one wake-up per sleep, the consumer's batches on a small ring).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadNative, type NativeShmMap } from '../backends/linux/native.js';
import { vm } from '../backends/userspace/vm/index.js';
import { createMap, MapCreateError, type MapSpec, PerfEventArrayMap, RingBufMap, type UserMap } from '../backends/userspace/maps/index.js';
import { KEY, MAPOP_CASES, type MapOpCase, NEXT, type Ptr, VAL } from './fixtures/mapop-cases.js';
import { BUILD, ROOT } from './helpers.js';

const native = loadNative();
const NCPUS = native.numPossibleCpus();
const EFAULT = 14, EINVAL = 22, EINTR = 4, EAGAIN = 11, ENOBUFS = 105;

interface Pair {
  ts: UserMap;
  shm: NativeShmMap;
}
const opened: NativeShmMap[] = [];
t.teardown(() => {
  for (const m of opened) native.shmMapClose(m.id);
});

function spec(type: number, keySize: number, valueSize: number, maxEntries: number, flags = 0, name = 'm'): MapSpec {
  return { name, type, keySize, valueSize, maxEntries, flags };
}
function shmCreate(s: MapSpec, perfBytesPerCpu = 0): NativeShmMap {
  const m = native.shmMapCreate(s.type, s.keySize, s.valueSize, s.maxEntries, s.flags, NCPUS, perfBytesPerCpu, s.name);
  opened.push(m);
  return m;
}
let cpu = 0;
function pair(s: MapSpec): Pair {
  const ts = createMap(s, { memory: vm.createMemory(), ncpus: NCPUS, cpu: () => cpu, maxMapBytes: 1 << 24 });
  return { ts, shm: shmCreate(s) };
}

/** backends/userspace/index.ts's mapOperate (UserspaceObject): offsets into mem, -1 = NULL */
function tsMapOperate(map: UserMap, cmd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number): number {
  const len = mem.byteLength;
  const ks = map.spec.keySize;
  const view = (off: number, n: number): Uint8Array | undefined => (off < 0 ? undefined : off + n <= len ? mem.subarray(off, off + n) : undefined);
  if (keyOff >= 0 && keyOff + ks > len) return -EFAULT;
  const key = view(keyOff, ks);
  switch (cmd) {
    case 1:
    case 2:
    case 21: {
      const v = view(valOff, map.opValueSize);
      if (!v) return -EFAULT;
      return cmd === 1 ? map.sysLookup(key, v, flags) : cmd === 2 ? map.sysUpdate(key, v, flags) : map.sysLookupAndDelete(key, v, flags);
    }
    case 3:
      return map.sysDelete(key, flags);
    case 4: {
      const out = view(valOff, ks);
      if (!out && ks > 0) return -EFAULT;
      return map.sysNextKey(key, out ?? new Uint8Array(0), flags);
    }
    default:
      return -EINVAL;
  }
}

/** src/abi/host.ts's mapOperate checks (pointers, flags, command) in front of a backend's mapOperate */
type BackendOp = (cmd: number, mem: Uint8Array, keyOff: number, valOff: number, flags: number) => number;
function abiMapOperate(op: BackendOp, keySize: number, opValueSize: number, mem: Uint8Array, cmd: number, key: number, value: number, next: number, flags: bigint): number {
  const len = mem.length;
  const keyOff = keySize === 0 ? -1 : key;
  if (keySize !== 0 && key + keySize > len) return -EFAULT;
  const f = flags === 0n ? 0 : flags <= 0xffffffffn && flags >= 0n ? Number(flags) : -1;
  if (f < 0) return -EINVAL;
  switch (cmd) {
    case 2:
    case 1:
    case 21:
      if (value + opValueSize > len) return -EFAULT;
      return op(cmd, mem, keyOff, value, f);
    case 3:
      return op(cmd, mem, keyOff, -1, f);
    case 4:
      if (next + keySize > len) return -EFAULT;
      return op(cmd, mem, key === 0 ? -1 : keyOff, next, f);
    default:
      return -EINVAL;
  }
}

t.test('the map_operate table: hash and per-CPU array cases, TypeScript maps and shared maps alike', async (t) => {
  const maps: Record<string, Pair> = { h: pair(spec(1, 4, 8, 8, 0, 'h')), pa: pair(spec(6, 4, 8, 2, 0, 'pa')) };
  const cases = MAPOP_CASES.filter((c): c is MapOpCase & { fd: string } => typeof c.fd === 'string' && c.fd in maps);
  t.ok(cases.length >= 39, `${cases.length} cases apply`);
  const memTs = new Uint8Array(65536);
  const memShm = new Uint8Array(65536);
  const ptr = (p: Ptr): number => (typeof p === 'number' ? p : memTs.length - p.end - (p.cpus ? 8 * NCPUS : 0));
  for (const c of cases) {
    const { ts, shm } = maps[c.fd]!;
    const results: number[] = [];
    for (const [mem, op] of [
      [memTs, (cmd: number, m: Uint8Array, k: number, v: number, f: number) => tsMapOperate(ts, cmd, m, k, v, f)],
      [memShm, (cmd: number, m: Uint8Array, k: number, v: number, f: number) => native.shmMapOp(cmd, shm.id, m, k, v, f)],
    ] as const) {
      const dv = new DataView(mem.buffer);
      for (const [off, v] of c.set ?? []) {
        if (typeof v === 'bigint') dv.setBigUint64(off, v, true);
        else dv.setUint32(off, typeof v === 'number' ? v >>> 0 : 0, true);
      }
      const r = abiMapOperate(op, ts.spec.keySize, ts.opValueSize, mem, c.cmd, ptr(c.key ?? KEY), ptr(c.value ?? VAL), ptr(c.next ?? NEXT), c.flags ?? 0n);
      results.push(r);
      if (c.out && r === 0) t.equal(dv.getUint32(c.out[0], true), c.out[1], `${c.name}: out`);
    }
    t.same(results, [c.want, c.want], c.name);
  }
});

t.test('creation checks: the same errnos as the TypeScript maps', async (t) => {
  const bad: MapSpec[] = [
    spec(1, 0, 8, 4), spec(1, 4, 0, 4), spec(1, 4, 8, 0), spec(1, 600, 8, 4), spec(1, 4, 8, 4, 0x2), spec(9, 4, 8, 4, 0x1),
    spec(1, 4, 8, 4, 0x80000), spec(2, 8, 8, 4), spec(6, 4, 40000, 4), spec(27, 0, 0, 1000), spec(27, 0, 0, 2048),
    spec(27, 4, 0, 4096), spec(4, 4, 8, 4), spec(4, 4, 4, 4, 0x1), spec(11, 8, 8, 4), spec(2, 4, 8, 4, 0x400 | 0x1000, 'ok-flags'),
  ];
  for (const s of bad) {
    let tsErr = 0;
    try {
      createMap(s, { memory: vm.createMemory(), ncpus: NCPUS, cpu: () => 0, maxMapBytes: 1 << 24 });
    } catch (e) {
      tsErr = (e as MapCreateError).errno;
    }
    let shmErr = 0;
    try {
      shmCreate(s);
    } catch (e) {
      shmErr = (e as { errno: number }).errno;
    }
    t.equal(shmErr, tsErr, `type ${s.type} key ${s.keySize} value ${s.valueSize} entries ${s.maxEntries} flags 0x${s.flags.toString(16)}: errno ${tsErr}`);
  }
});

/** a small deterministic PRNG */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

t.test('random operation sequences: every hash and array type agrees with the TypeScript maps', async (t) => {
  for (const [type, n] of [[1, 6], [5, 6], [9, 5], [10, 5], [2, 6], [6, 4]] as const) {
    const { ts, shm } = pair(spec(type, 4, 12, n));
    const rnd = rng(type * 7919);
    const vs = ts.opValueSize;
    const memTs = new Uint8Array(256);
    const memShm = new Uint8Array(256);
    let same = 0;
    const hashLike = type !== 2 && type !== 6;
    for (let i = 0; i < 3000; i++) {
      const cmd = [1, 2, 2, 2, 3, 4, 21][Math.floor(rnd() * 7)]!;
      const key = Math.floor(rnd() * (n + 3));
      const flags = [0, 0, 0, 1, 2, 3, 4][Math.floor(rnd() * 7)]!;
      const useFlags = cmd === 2 || rnd() < 0.05 ? flags : 0;
      const nullKey = cmd === 4 && rnd() < 0.2;
      for (const mem of [memTs, memShm]) {
        mem.fill(0);
        new DataView(mem.buffer).setUint32(0, key, true);
        for (let b = 0; b < vs; b++) mem[16 + b] = (i + b) & 0xff;
      }
      // get_next_key of a present hash key: its successor depends on the walk order (slots vs the kernel's
      // buckets), so only a NULL or absent key (the first key of each walk) is compared
      const orderDependent = cmd === 4 && hashLike && !nullKey && ts.sysLookup(memTs.subarray(0, 4), new Uint8Array(vs), 0) === 0;
      const a = tsMapOperate(ts, cmd, memTs, nullKey ? -1 : 0, cmd === 4 ? 8 : 16, useFlags);
      const b = native.shmMapOp(cmd, shm.id, memShm, nullKey ? -1 : 0, cmd === 4 ? 8 : 16, useFlags);
      const outSame = cmd === 4 && hashLike ? true : Buffer.compare(memTs.subarray(8, 16 + vs), memShm.subarray(8, 16 + vs)) === 0;
      if (orderDependent || (a === b && outSame)) same++;
      else {
        t.fail(`type ${type} op ${i}: cmd ${cmd} key ${key} flags ${useFlags}: ${a} vs ${b}${outSame ? '' : ' (outputs differ)'}`);
        break;
      }
    }
    t.equal(same, 3000, `type ${type}: 3000 operations, same results and values`);
    if (hashLike) {
      // the walk visits the same set of keys
      const walk = (op: (k: number, o: number, m: Uint8Array) => number): number[] => {
        const m = new Uint8Array(64);
        const keys: number[] = [];
        let k = -1;
        while (keys.length < 100 && op(k, 8, m) === 0) {
          keys.push(new DataView(m.buffer).getUint32(8, true));
          m.copyWithin(0, 8, 12);
          k = 0;
        }
        return keys.sort((x, y) => x - y);
      };
      t.same(walk((k, o, m) => tsMapOperate(ts, 4, m, k, o, 0)), walk((k, o, m) => native.shmMapOp(4, shm.id, m, k, o, 0)), `type ${type}: get_next_key walks the same keys`);
    }
  }
});

t.test('a second mapping of the memfd (as an agent maps it) sees the same map', async (t) => {
  const a = shmCreate(spec(1, 4, 8, 4));
  const b = native.shmMapOpen(a.fd, a.notifyFd);
  opened.push(b);
  const mem = new Uint8Array(32);
  const dv = new DataView(mem.buffer);
  dv.setUint32(0, 7, true);
  dv.setBigUint64(8, 99n, true);
  t.equal(native.shmMapOp(2, a.id, mem, 0, 8, 0), 0);
  dv.setBigUint64(8, 0n, true);
  t.equal(native.shmMapOp(1, b.id, mem, 0, 8, 0), 0);
  t.equal(dv.getBigUint64(8, true), 99n, 'written through one mapping, read through the other');
  t.throws(() => native.shmMapOpen(1, -1), { code: 'EINVAL' }, 'a file that is not a map: EINVAL');
});

t.test('read-only maps: frozen, BPF_F_RDONLY, BPF_F_WRONLY, as the TypeScript maps', async (t) => {
  const mem = new Uint8Array(32);
  const cases: [MapSpec, boolean][] = [[spec(2, 4, 8, 1), true], [spec(1, 4, 8, 2), true], [spec(1, 4, 8, 2, 0x8), false], [spec(1, 4, 8, 2, 0x10), false], [spec(2, 4, 8, 2, 0x8), false]];
  for (const [s, freeze] of cases) {
    const { ts, shm } = pair(s);
    const ops = (): number[] => [2, 1, 3, 4, 21].map((cmd) => {
      const a = tsMapOperate(ts, cmd, mem, 0, 8, 0);
      const b = native.shmMapOp(cmd, shm.id, mem, 0, 8, 0);
      return a === b ? a : 1000 + b;
    });
    const before = ops();
    t.notOk(before.some((r) => r >= 1000), `type ${s.type} flags 0x${s.flags.toString(16)}: ${before.join(' ')}`);
    if (freeze) {
      ts.frozen = true;
      native.shmMapFreeze(shm.id);
      const after = ops();
      t.notOk(after.some((r) => r >= 1000), `type ${s.type} frozen: ${after.join(' ')}`);
      t.equal(after[0], -1, 'frozen: update EPERM');
    }
  }
});

t.test('ring buffer: records in the RecordSource format, drops when full, wake-up and stop', async (t) => {
  const s = spec(27, 0, 0, 4096, 0, 'rb');
  const ts = createMap(s, { memory: vm.createMemory(), ncpus: NCPUS, cpu: () => 0, maxMapBytes: 1 << 24 }) as RingBufMap;
  const shm = shmCreate(s);
  const u64 = (n: bigint): Uint8Array => new Uint8Array(new BigUint64Array([n]).buffer);
  t.equal(native.shmRingPoll(shm.id, 0, new Uint8Array(64), -1), 0, 'empty, timeout 0: 0');
  for (const data of [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(13).fill(9)]) {
    t.equal(native.shmRingbufOutput(shm.id, data, 0), ts.output(data, 0));
  }
  t.equal(native.shmRingbufOutput(shm.id, u64(1n), 4), -EINVAL, 'bad flags: EINVAL');
  t.equal(native.shmRingPendingSize(shm.id), ts.pendingSize(), 'pending size');
  const a = new Uint8Array(256);
  const b = new Uint8Array(256);
  t.equal(native.shmRingPoll(shm.id, 0, a, -1), ts.drain(b));
  t.same(a, b, 'the same bytes as the TypeScript ring buffer\'s drain');
  let n = 0;
  while (native.shmRingbufOutput(shm.id, u64(BigInt(n)), 0) === 0) n++;
  t.equal(n, 255, '4096 / 16 - 1 records fit');
  t.equal(native.shmRingbufOutput(shm.id, u64(0n), 0), -EAGAIN, 'full: -EAGAIN');
  t.equal(native.shmMapDrops(shm.id), 2, 'each refused output counted');
  t.equal(native.shmRingPoll(shm.id, 0, new Uint8Array(8), -1), -ENOBUFS, 'a record larger than out: -ENOBUFS');
  const out = new Uint8Array(8192);
  t.equal(native.shmRingPoll(shm.id, 0, out, -1), 255, 'every record, in order');
  const dv = new DataView(out.buffer);
  let inOrder = true;
  for (let i = 0; i < 255; i++) inOrder &&= dv.getUint32(i * 16, true) === 8 && dv.getBigUint64(i * 16 + 8, true) === BigInt(i);
  t.ok(inOrder, '[u32 8][u32 0][value i] for i = 0..254');
  const stop = native.eventFd();
  const t0 = Date.now();
  t.equal(native.shmRingPoll(shm.id, 100, out, stop), 0, 'timeout: 0');
  t.ok(Date.now() - t0 >= 90, 'the poll slept its timeout');
  fs.writeSync(stop, Buffer.from(u64(1n)));
  t.equal(native.shmRingPoll(shm.id, 5000, out, stop), -EINTR, 'the stop fd: -EINTR at once');
  native.closeFd(stop);
});

t.test('perf event array: per-CPU rings, errnos and lost samples as the TypeScript map', async (t) => {
  const s = spec(4, 4, 4, 2, 0, 'pe');
  const ts = createMap(s, { memory: vm.createMemory(), ncpus: 2, cpu: () => cpu, maxMapBytes: 1 << 24 }, { perfBytesPerCpu: 64 }) as PerfEventArrayMap;
  const shm = native.shmMapCreate(4, 4, 4, 2, 0, 2, 64, 'pe');
  opened.push(shm);
  const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const both = (flags: bigint, c: number): [number, number] => {
    cpu = c;
    return [ts.output(flags, data), native.shmPerfEventOutput(shm.id, flags, data, c)];
  };
  const same = (r: [number, number], what: string): void => void t.equal(r[1], r[0], `${what}: ${r[0]}`);
  same(both(0xffffffffn, 0), 'no reader yet');
  ts.openReaders();
  native.shmPerfOpenReaders(shm.id);
  same(both(0x1_0000_0000n, 0), 'flags beyond the index mask');
  same(both(5n, 0), 'index past max_entries');
  same(both(1n, 0), 'another CPU\'s buffer');
  same(both(1n, 1), 'its own CPU by index');
  same(both(0xffffffffn, 0), 'BPF_F_CURRENT_CPU');
  same(both(0xffffffffn, 0), 'a second sample');
  same(both(0xffffffffn, 0), 'CPU 0 full');
  t.equal(native.shmMapDrops(shm.id), ts.lost(), 'lost samples');
  t.equal(native.shmRingPendingSize(shm.id), 12, 'raw sample size: data padded so that size + 4 is 8-aligned');
  const a = new Uint8Array(256);
  const n = native.shmRingPoll(shm.id, 0, a, -1);
  t.equal(n, 3, 'every sample');
  t.same([...a.subarray(0, 20)], [12, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]);
  const b = new Uint8Array(256);
  t.equal(ts.drain(b), n);
  t.same(a, b, 'the same bytes as the TypeScript map\'s drain (across CPUs, records come per CPU, as libbpf\'s perf buffer gives them)');
  same(both(0xffffffffn, 0), 'room again after the reader consumed');
  const mem = new Uint8Array(16);
  t.equal(native.shmMapOp(1, shm.id, mem, 0, 4, 0), ts.sysLookup(mem.subarray(0, 4), mem.subarray(4, 8), 0), 'lookup');
  new DataView(mem.buffer).setUint32(0, 7, true);
  t.equal(native.shmMapOp(2, shm.id, mem, 0, 4, 0), ts.sysUpdate(mem.subarray(0, 4), mem.subarray(4, 8), 0), 'update out of range');
  new DataView(mem.buffer).setUint32(0, 0, true);
  t.equal(native.shmMapOp(2, shm.id, mem, 0, 4, 0), ts.sysUpdate(mem.subarray(0, 4), mem.subarray(4, 8), 0), 'update: no perf event fds');
  t.equal(native.shmMapOp(3, shm.id, mem, 0, -1, 0), ts.sysDelete(mem.subarray(0, 4), 0), 'delete removes CPU 0\'s reader');
  t.equal(native.shmMapOp(3, shm.id, mem, 0, -1, 0), ts.sysDelete(mem.subarray(0, 4), 0), 'delete again');
  same(both(0xffffffffn, 0), 'output to a deleted slot');
  cpu = 0;
});

t.test('the C programs: the program side, and the stress (processes x threads, exact totals, SIGKILLed holders)', async (t) => {
  const out = path.join(BUILD, 'agent-maps');
  const make = spawnSync('make', ['-C', path.join(ROOT, 'native', 'agent'), `B=${out}`, 'maps-tests'], { encoding: 'utf8' });
  t.equal(make.status, 0, 'make maps-tests', { stderr: make.stderr });
  const r = spawnSync(path.join(out, 'test', 'maps_stress'), ['4', '4', '20000'], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.signal, null, 'no crash');
  t.equal(r.status, 0, 'every check holds', { stdout: r.stdout, stderr: r.stderr });
  t.notMatch(r.stdout, /^not ok/m);
  t.match(r.stdout, /^ok - no lost atomic adds/m);
  t.match(r.stdout, /^ok - drops counted exactly when full/m);
  t.match(r.stdout, /^ok - a process killed holding every bucket lock: the next takers recover/m);
  t.match(r.stdout, /^ok - the dead process's reserved record is discarded/m);
  t.match(r.stdout, /^ok - a sleeping consumer is woken by another process's output/m);
  t.match(r.stdout, /^ok - a process SIGKILLed mid-update: the others finish/m);
  t.match(r.stdout, /^ok - LRU hash under contention: every update succeeded/m);
  t.match(r.stdout, /^ok - a sleeping consumer costs one eventfd write, not one per record/m);
  t.match(r.stdout, /^ok - batched draining of a 4 KiB ring, .*: each committed record once, in order, whole/m);
  t.match(r.stdout, /^ok - the small ring filled up/m);
  const u = spawnSync(path.join(out, 'test', 'maps_unit'), [], { encoding: 'utf8', timeout: 60_000 });
  t.equal(u.status, 0, 'maps_unit: the program side (LRU order, per-CPU updates, ring reserve/submit/discard)', { stdout: u.stdout, stderr: u.stderr });
  t.notMatch(u.stdout, /^not ok/m);
});

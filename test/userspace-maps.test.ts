// Userspace maps (backends/userspace/maps/): the kernel's semantics for every map type, every update
// flag and every errno, LRU eviction order, per-CPU values, ring buffer and perf buffer accounting.
import t from 'tap';
import { vm } from '../backends/userspace/vm/index.js';
import {
  ArrayMap,
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_NOEXIST,
  createMap,
  E,
  HashMap,
  MapCreateError,
  type MapEnv,
  type MapSpec,
  PerfEventArrayMap,
  ProgArrayMap,
  QueueStackMap,
  RingBufMap,
  type UserMap,
} from '../backends/userspace/maps/index.js';

let cpu = 0;
function env(over: Partial<MapEnv> = {}): MapEnv {
  return { memory: vm.createMemory(), ncpus: 2, cpu: () => cpu, maxMapBytes: 1 << 24, ...over };
}
const spec = (type: number, keySize: number, valueSize: number, maxEntries: number, flags = 0, name = 'm'): MapSpec => ({ name, type, keySize, valueSize, maxEntries, flags });
const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: bigint): Uint8Array => new Uint8Array(new BigUint64Array([n]).buffer);
const rdU64 = (b: Uint8Array, off = 0): bigint => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);
const rdU32 = (b: Uint8Array, off = 0): number => new DataView(b.buffer, b.byteOffset).getUint32(off, true);

/** syscall-side helpers */
function lookup(m: UserMap, key: Uint8Array | undefined): [number, Uint8Array] {
  const out = new Uint8Array(m.opValueSize);
  return [m.sysLookup(key, out, 0), out];
}
function nextKeys(m: UserMap): number[] {
  const keys: number[] = [];
  let k: Uint8Array | undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 1000 && m.sysNextKey(k, out, 0) === 0; i++) {
    keys.push(rdU32(out));
    k = out.slice();
  }
  return keys;
}

t.test('creation checks (the kernel\'s map_alloc_check)', async (t) => {
  const bad: [MapSpec, number, RegExp][] = [
    [spec(1, 0, 8, 4), E.EINVAL, /key size must not be 0/],
    [spec(1, 4, 0, 4), E.EINVAL, /value size must not be 0/],
    [spec(1, 4, 8, 0), E.EINVAL, /max_entries must not be 0/],
    [spec(1, 600, 8, 4), E.E2BIG, /key size 600 is larger than 512/],
    [spec(1, 4, 8, 4, 0x2), E.EINVAL, /NO_COMMON_LRU needs an LRU map/],
    [spec(9, 4, 8, 4, 0x1), E.ENOTSUPP, /always preallocated/],
    [spec(1, 4, 8, 4, 0x80000), E.EINVAL, /unsupported map_flags/],
    [spec(2, 8, 8, 4), E.EINVAL, /key size must be 4/],
    [spec(6, 4, 40000, 4), E.E2BIG, /per-CPU value size/],
    [spec(22, 4, 8, 4), E.EINVAL, /key size must be 0/],
    [spec(23, 0, 0, 4), E.EINVAL, /value size must not be 0/],
    [spec(27, 0, 0, 1000), E.EINVAL, /power of two/],
    [spec(27, 0, 0, 2048), E.EINVAL, /at least the page size/],
    [spec(27, 4, 0, 4096), E.EINVAL, /key size must be 0/],
    [spec(3, 4, 8, 4), E.EINVAL, /value size must be 4/],
    [spec(4, 4, 4, 4, 0x1), E.EINVAL, /unsupported map_flags/],
    [spec(11, 8, 8, 4), E.EOPNOTSUPP, /lpm_trie map, which the userspace backend does not implement/],
  ];
  for (const [s, errno, re] of bad) {
    try {
      createMap(s, env());
      t.fail(`type ${s.type} should fail`);
    } catch (e) {
      t.type(e, MapCreateError);
      t.equal((e as MapCreateError).errno, errno, `type ${s.type}: errno ${errno}`);
      t.match((e as Error).message, re);
    }
  }
});

t.test('oversized maps are refused with a clear error', async (t) => {
  const small = env({ maxMapBytes: 1 << 20 });
  for (const [type, k, v, n] of [
    [1, 4, 1024, 2048],
    [2, 4, 4096, 1024],
    [6, 4, 1024, 1024],
    [22, 0, 1024, 2048],
    [27, 0, 0, 1 << 20],
  ] as const) {
    try {
      createMap(spec(type, k, v, n, 0, 'big'), small);
      t.fail(`type ${type} should be refused`);
    } catch (e) {
      t.equal((e as MapCreateError).errno, E.E2BIG);
      t.match((e as Error).message, /map 'big' needs \d+ bytes.*more than the userspace backend's limit of 1048576 bytes per map/);
    }
  }
  // a map that does not fit the VM memory at all
  const tiny = env({ memory: vm.createMemory({ initialPages: 1, maximumPages: 2 }), maxMapBytes: 1 << 30 });
  try {
    createMap(spec(2, 4, 1024, 1024), tiny);
    t.fail('should not fit');
  } catch (e) {
    t.equal((e as MapCreateError).errno, E.ENOMEM, 'a map larger than the VM memory: ENOMEM');
  }
});

t.test('hash: flags and errnos on both sides', async (t) => {
  const m = createMap(spec(1, 4, 8, 3), env()) as HashMap;
  t.equal(lookup(m, u32(1))[0], -E.ENOENT, 'lookup missing: ENOENT');
  t.equal(m.sysDelete(u32(1), 0), -E.ENOENT, 'delete missing: ENOENT');
  t.equal(m.sysUpdate(u32(1), u64(10n), BPF_EXIST), -E.ENOENT, 'EXIST on missing: ENOENT');
  t.equal(m.sysUpdate(u32(1), u64(10n), BPF_NOEXIST), 0, 'NOEXIST on missing: created');
  t.equal(m.sysUpdate(u32(1), u64(11n), BPF_NOEXIST), -E.EEXIST, 'NOEXIST on existing: EEXIST');
  t.equal(m.sysUpdate(u32(1), u64(12n), BPF_EXIST), 0, 'EXIST on existing: replaced');
  t.equal(rdU64(lookup(m, u32(1))[1]), 12n);
  t.equal(m.sysUpdate(u32(1), u64(13n), BPF_ANY), 0, 'ANY: replaced');
  t.equal(m.sysUpdate(u32(1), u64(13n), 3), -E.EINVAL, 'flags 3: EINVAL');
  t.equal(m.sysUpdate(u32(1), u64(13n), 8), -E.EINVAL, 'unknown flag: EINVAL');
  t.equal(m.sysUpdate(u32(1), u64(13n), BPF_F_LOCK), -E.EINVAL, 'BPF_F_LOCK without a spin lock: EINVAL');
  t.equal(m.sysUpdate(u32(2), u64(20n), BPF_ANY), 0);
  t.equal(m.sysUpdate(u32(3), u64(30n), BPF_ANY), 0);
  t.equal(m.sysUpdate(u32(4), u64(40n), BPF_ANY), -E.E2BIG, 'a new key in a full hash: E2BIG');
  t.equal(m.sysUpdate(u32(3), u64(31n), BPF_ANY), 0, 'replacing in a full hash works');
  t.equal(m.sysUpdate(u32(4), u64(40n), BPF_NOEXIST), -E.E2BIG);
  t.equal(lookup(m, u32(1))[1].length, 8);
  t.equal(m.sysLookup(u32(1), new Uint8Array(8), 1), -E.EINVAL, 'lookup flags: EINVAL');
  t.equal(m.sysLookup(undefined, new Uint8Array(8), 0), -E.EFAULT, 'NULL key: EFAULT');
  t.equal(m.sysDelete(u32(2), 0), 0);
  t.equal(m.sysDelete(u32(2), 0), -E.ENOENT);
  t.equal(m.sysUpdate(u32(4), u64(40n), BPF_ANY), 0, 'room again after a delete');
  t.same(nextKeys(m).sort(), [1, 3, 4], 'get_next_key walks every key once');
  const out = new Uint8Array(4);
  t.equal(m.sysNextKey(u32(99), out, 0), 0, 'a missing key restarts the walk');
  t.equal(m.sysNextKey(undefined, new Uint8Array(4), 5), -E.EINVAL);
  // lookup-and-delete
  const v = new Uint8Array(8);
  t.equal(m.sysLookupAndDelete(u32(4), v, 0), 0);
  t.equal(rdU64(v), 40n);
  t.equal(m.sysLookupAndDelete(u32(4), v, 0), -E.ENOENT);
  // program side: lookups return the address of the value; writes through it are seen by the syscall side
  const a = m.progLookup(u32(1));
  t.ok(a > 0, 'program lookup: address');
  m['env'].memory.view().setBigUint64(a, 77n, true);
  t.equal(rdU64(lookup(m, u32(1))[1]), 77n, 'in-place write seen by the syscall side');
  t.equal(m.progLookup(u32(42)), 0, 'missing: NULL');
  t.equal(m.progUpdate(u32(1), u64(5n), BPF_NOEXIST), -E.EEXIST);
  t.equal(m.progUpdate(u32(7), u64(5n), BPF_EXIST), -E.ENOENT);
  t.equal(m.progDelete(u32(7)), -E.ENOENT);
  t.equal(m.progUpdate(u32(7), u64(5n), BPF_ANY), 0);
  t.equal(m.progUpdate(u32(8), u64(5n), BPF_ANY), -E.E2BIG, 'program update into a full hash: E2BIG');
  t.equal(m.size, 3);
});

t.test('hash: a deleted element\'s slot stays mapped and is reused (preallocation)', async (t) => {
  const m = createMap(spec(1, 4, 8, 2), env()) as HashMap;
  m.sysUpdate(u32(1), u64(1n), 0);
  const a = m.progLookup(u32(1));
  m.sysDelete(u32(1), 0);
  t.ok(m['env'].memory.find(a, 8), 'the stale pointer still points into the map region');
  m.sysUpdate(u32(2), u64(2n), 0);
  t.equal(m.progLookup(u32(2)), a, 'the slot is reused');
});

t.test('LRU hash: eviction order', async (t) => {
  const m = createMap(spec(9, 4, 8, 3), env()) as HashMap;
  for (const k of [1, 2, 3]) t.equal(m.sysUpdate(u32(k), u64(BigInt(k)), BPF_ANY), 0);
  t.same(m.lruOrder().map((k) => rdU32(k)), [1, 2, 3]);
  t.equal(m.sysUpdate(u32(4), u64(4n), BPF_ANY), 0, 'full LRU: no E2BIG');
  t.equal(lookup(m, u32(1))[0], -E.ENOENT, 'the least recently used (1) was evicted');
  // a program lookup makes 2 the most recent; a syscall lookup does not touch 3
  t.ok(m.progLookup(u32(2)) > 0);
  t.equal(lookup(m, u32(3))[0], 0);
  t.same(m.lruOrder().map((k) => rdU32(k)), [3, 4, 2]);
  t.equal(m.sysUpdate(u32(5), u64(5n), BPF_ANY), 0);
  t.equal(lookup(m, u32(3))[0], -E.ENOENT, '3 evicted next: syscall lookups do not refresh');
  // an update refreshes
  t.equal(m.sysUpdate(u32(4), u64(44n), BPF_EXIST), 0);
  t.same(m.lruOrder().map((k) => rdU32(k)), [2, 5, 4]);
  t.equal(m.progUpdate(u32(6), u64(6n), BPF_ANY), 0);
  t.same(m.lruOrder().map((k) => rdU32(k)), [5, 4, 6], 'program update evicts too');
  t.equal(m.sysUpdate(u32(4), u64(1n), BPF_NOEXIST), -E.EEXIST, 'flags still apply');
  t.equal(m.sysUpdate(u32(9), u64(1n), BPF_EXIST), -E.ENOENT);
  t.equal(m.sysDelete(u32(5), 0), 0);
  t.same(m.lruOrder().map((k) => rdU32(k)), [4, 6]);
  t.equal(m.size, 2);
});

t.test('per-CPU hash and LRU per-CPU hash: one value per CPU', async (t) => {
  for (const type of [5, 10]) {
    const m = createMap(spec(type, 4, 4, 4), env()) as HashMap;
    t.equal(m.opValueSize, 16, 'round8(4) * 2 CPUs');
    const both = new Uint8Array(16);
    new DataView(both.buffer).setUint32(0, 100, true);
    new DataView(both.buffer).setUint32(8, 200, true);
    t.equal(m.sysUpdate(u32(1), both, 0), 0);
    const [r, out] = lookup(m, u32(1));
    t.equal(r, 0);
    t.same([rdU32(out, 0), rdU32(out, 8)], [100, 200], 'the syscall side sees every CPU');
    cpu = 1;
    const a = m.progLookup(u32(1));
    t.equal(m['env'].memory.view().getUint32(a, true), 200, 'a program sees its own CPU');
    t.equal(m.progUpdate(u32(2), u32(7), 0), 0, 'program update of a new key on CPU 1');
    const [, o2] = lookup(m, u32(2));
    t.same([rdU32(o2, 0), rdU32(o2, 8)], [0, 7], 'other CPUs zeroed');
    cpu = 0;
    t.equal(m.progUpdate(u32(2), u32(9), 0), 0, 'program update of an existing key on CPU 0');
    const [, o3] = lookup(m, u32(2));
    t.same([rdU32(o3, 0), rdU32(o3, 8)], [9, 7], 'only this CPU changes');
  }
});

t.test('array: every element exists', async (t) => {
  const m = createMap(spec(2, 4, 12, 4), env()) as ArrayMap;
  const [r, out] = lookup(m, u32(3));
  t.equal(r, 0, 'lookup of a never-written index: zeros');
  t.same([...out], new Array(12).fill(0));
  t.equal(lookup(m, u32(4))[0], -E.ENOENT, 'index >= max_entries: ENOENT');
  t.equal(m.sysUpdate(u32(4), new Uint8Array(12), 0), -E.E2BIG, 'update out of range: E2BIG');
  t.equal(m.sysUpdate(u32(1), new Uint8Array(12), BPF_NOEXIST), -E.EEXIST, 'NOEXIST: EEXIST');
  t.equal(m.sysUpdate(u32(1), new Uint8Array(12).fill(3), BPF_EXIST), 0);
  t.equal(m.sysUpdate(u32(1), new Uint8Array(12), 3), -E.EINVAL);
  t.equal(m.sysUpdate(u32(1), new Uint8Array(12), BPF_F_LOCK), -E.EINVAL);
  t.equal(m.sysDelete(u32(1), 0), -E.EINVAL, 'delete: EINVAL');
  t.equal(m.sysDelete(u32(9), 0), -E.EINVAL);
  t.same(nextKeys(m), [0, 1, 2, 3], 'next_key: 0..max_entries-1');
  const out4 = new Uint8Array(4);
  t.equal(m.sysNextKey(u32(3), out4, 0), -E.ENOENT, 'after the last: ENOENT');
  t.equal(m.sysNextKey(u32(77), out4, 0), 0);
  t.equal(rdU32(out4), 0, 'out of range: start over');
  t.equal(m.progLookup(u32(4)), 0);
  const a = m.progLookup(u32(1));
  t.equal(a, m.addr(1));
  t.equal(m.addr(1) - m.addr(0), 16, 'elements round8(value_size) apart');
  t.equal(m.progUpdate(u32(9), new Uint8Array(12), 0), -E.E2BIG);
  t.equal(m.progUpdate(u32(0), new Uint8Array(12), BPF_NOEXIST), -E.EEXIST);
  t.equal(m.progDelete(u32(0)), -E.EINVAL);
  t.equal(m.directValue(), m.addr(0));
});

t.test('per-CPU array', async (t) => {
  cpu = 1;
  const m = createMap(spec(6, 4, 8, 2), env()) as ArrayMap;
  t.equal(m.opValueSize, 16);
  t.equal(m.progUpdate(u32(1), u64(5n), 0), 0);
  const [, out] = lookup(m, u32(1));
  t.same([rdU64(out, 0), rdU64(out, 8)], [0n, 5n]);
  t.equal(m.directValue(), undefined, 'no direct value for per-CPU arrays');
  cpu = 0;
});

t.test('read-only maps: RDONLY_PROG, frozen, RDONLY/WRONLY', async (t) => {
  const e = env();
  const ro = createMap(spec(2, 4, 8, 1, 0x80), e, { initial: u64(42n) }) as ArrayMap;
  t.equal(ro.progUpdate(u32(0), u64(1n), 0), -E.EPERM, 'program update of a RDONLY_PROG map: EPERM');
  const region = e.memory.find(ro.directValue()!, 8)!;
  t.equal(region.writable, false, 'its region is read-only to programs');
  t.equal(rdU64(lookup(ro, u32(0))[1]), 42n, 'initial value');
  t.equal(ro.sysUpdate(u32(0), u64(1n), 0), 0, 'not frozen yet: the syscall side writes');
  ro.frozen = true;
  t.equal(ro.sysUpdate(u32(0), u64(2n), 0), -E.EPERM, 'frozen: EPERM');
  const rd = createMap(spec(1, 4, 8, 2, 0x8), env());
  t.equal(rd.sysUpdate(u32(0), u64(1n), 0), -E.EPERM, 'BPF_F_RDONLY: syscall update EPERM');
  const wr = createMap(spec(1, 4, 8, 2, 0x10), env());
  t.equal(wr.sysUpdate(u32(0), u64(1n), 0), 0);
  t.equal(lookup(wr, u32(0))[0], -E.EPERM, 'BPF_F_WRONLY: syscall lookup EPERM');
});

t.test('queue and stack', async (t) => {
  const q = createMap(spec(22, 0, 4, 3), env()) as QueueStackMap;
  const s = createMap(spec(23, 0, 4, 3), env()) as QueueStackMap;
  for (const m of [q, s]) {
    const out = new Uint8Array(4);
    t.equal(m.progPop(out), -E.ENOENT, 'pop empty: ENOENT');
    t.equal(m.progPeek(out), -E.ENOENT, 'peek empty: ENOENT');
    t.equal(m.sysLookup(undefined, out, 0), -E.ENOENT, 'syscall lookup = peek');
    for (const v of [1, 2, 3]) t.equal(m.progPush(u32(v), 0), 0);
    t.equal(m.progPush(u32(4), 0), -E.E2BIG, 'full: E2BIG');
    t.equal(m.progPush(u32(4), BPF_NOEXIST), -E.EINVAL, 'NOEXIST: EINVAL');
    t.equal(m.progPush(u32(4), 4), -E.EINVAL, 'other flags: EINVAL');
    t.equal(m.sysUpdate(undefined, u32(4), BPF_EXIST), 0, 'BPF_EXIST overwrites the oldest (syscall update = push)');
    t.equal(m.sysDelete(undefined, 0), -E.EINVAL, 'delete: EINVAL');
    t.equal(m.sysNextKey(undefined, new Uint8Array(0), 0), -E.EINVAL, 'next_key: EINVAL');
    t.equal(m.sysLookup(undefined, out, BPF_F_LOCK), -E.EINVAL);
    const got: number[] = [];
    t.equal(m.progPeek(out), 0);
    const peeked = rdU32(out);
    while (m.sysLookupAndDelete(undefined, out, 0) === 0) got.push(rdU32(out));
    t.equal(peeked, got[0], 'peek shows what pop takes');
    t.same(got, m === q ? [2, 3, 4] : [4, 3, 2], m === q ? 'FIFO, 1 overwritten' : 'LIFO, 1 overwritten');
  }
});

t.test('ring buffer: reserve/submit/discard, order, capacity', async (t) => {
  const e = env();
  const rb = createMap(spec(27, 0, 0, 4096), e) as RingBufMap;
  const out = new Uint8Array(8192);
  const dv = new DataView(out.buffer);
  t.equal(rb.reserve(8, 1), 0, 'reserve flags must be 0');
  t.equal(rb.reserve(5000, 0), 0, 'larger than the ring: NULL');
  const a = rb.reserve(10, 0);
  const b = rb.reserve(3, 0);
  t.ok(a > 0 && b > 0);
  t.equal(b - a, 24, 'records are round8(size + 8) apart');
  t.ok(e.memory.find(a, 10)?.kind === 'ringbuf' || e.memory.find(a, 10)?.kind === 'map-value', 'records live in VM memory');
  e.memory.bytes().set([1, 2, 3], b);
  rb.submit(b, 0);
  t.equal(rb.drain(out), 0, 'the first record is still reserved: nothing to consume');
  t.equal(rb.pendingSize(), 0);
  rb.discard(a, 0);
  t.equal(rb.pendingSize(), 3);
  t.equal(rb.drain(out), 1, 'discarded records are skipped');
  t.same([dv.getUint32(0, true), dv.getUint32(4, true), ...out.subarray(8, 16)], [3, 0, 1, 2, 3, 0, 0, 0, 0, 0], '[u32 size][u32 0][data padded to 8]');
  t.throws(() => rb.submit(b, 0), /not a record reserved/, 'double submit is refused');
  t.equal(rb.query(0), 0n, 'AVAIL_DATA 0 after consuming');
  t.equal(rb.query(1), 4096n, 'RING_SIZE');
  t.equal(rb.query(2), rb.query(3), 'CONS_POS == PROD_POS');
  // fill: 8-byte records take 16 bytes; the producer may get at most capacity - 1 bytes ahead
  let n = 0;
  while (rb.output(u64(BigInt(n)), 0) === 0) n++;
  t.equal(n, 255, '4096 / 16 - 1 records fit');
  t.equal(rb.output(u64(0n), 0), -11, 'full: -EAGAIN');
  t.equal(rb.output(u64(0n), 4), -E.EINVAL, 'bad flags: EINVAL');
  t.equal(rb.query(0), 255n * 16n);
  const small = new Uint8Array(16);
  t.equal(rb.drain(small), 1, 'as many whole records as fit');
  t.equal(rb.drain(new Uint8Array(8)), -105, 'a record larger than out: -ENOBUFS');
  let got = 1;
  for (let r = rb.drain(out); r > 0; r = rb.drain(out)) {
    for (let i = 0; i < r; i++) t.equal(dv.getBigUint64(i * 16 + 8, true), BigInt(got + i));
    got += r;
  }
  t.equal(got, 255, 'every record, in order');
  // wrap-around: a record crossing the end of the ring stays contiguous
  for (let k = 0; k < 3; k++) {
    const addr = rb.reserve(1000, 0);
    t.ok(addr > 0);
    e.memory.bytes().fill(k + 1, addr, addr + 1000);
    rb.submit(addr, 0);
    const r = rb.drain(out);
    t.equal(r, 1);
    t.ok(out.subarray(8, 1008).every((x) => x === k + 1), `wrapped record ${k} intact`);
  }
  // afterRun discards what a run left reserved
  const left = rb.reserve(8, 0);
  rb.output(u64(9n), 0);
  t.equal(rb.drain(out), 0);
  rb.afterRun();
  t.equal(rb.drain(out), 1, 'the leaked reservation was discarded; the record after it is delivered');
  t.notOk(rb.owns(left));
  t.equal(rb.sysLookup(undefined, new Uint8Array(0), 0), -E.ENOTSUPP, 'syscall ops: ENOTSUPP');
});

t.test('perf event array: per-CPU buffers, lost records', async (t) => {
  const m = createMap(spec(4, 4, 4, 2), env(), { perfBytesPerCpu: 64 }) as PerfEventArrayMap;
  const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
  t.equal(m.output(0xffffffffn, data), -E.ENOENT, 'no reader yet: ENOENT');
  m.openReaders();
  t.equal(m.output(0x1_0000_0000n, data), -E.EINVAL, 'flags beyond the index mask: EINVAL');
  t.equal(m.output(5n, data), -E.E2BIG, 'index past max_entries: E2BIG');
  t.equal(m.output(1n, data), -E.EOPNOTSUPP, 'another CPU\'s buffer: EOPNOTSUPP');
  cpu = 1;
  t.equal(m.output(1n, data), 0, 'its own CPU by index');
  cpu = 0;
  t.equal(m.output(0xffffffffn, data), 0, 'BPF_F_CURRENT_CPU');
  // each 6-byte sample costs 8 + 12 + 4 = 24 bytes: two fit in 64 bytes per CPU
  t.equal(m.output(0xffffffffn, data), 0);
  t.equal(m.output(0xffffffffn, data), -E.ENOSPC, 'CPU 0 full: lost');
  t.equal(m.lost(), 1);
  const out = new Uint8Array(256);
  t.equal(m.pendingSize(), 12, 'raw sample size: data padded so that size + 4 is 8-aligned');
  t.equal(m.drain(out), 3);
  const dv = new DataView(out.buffer);
  t.same([dv.getUint32(0, true), ...out.subarray(8, 20)], [12, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0]);
  t.equal(m.output(0xffffffffn, data), 0, 'room again after the reader consumed');
  t.equal(m.sysLookup(u32(0), new Uint8Array(4), 0), -E.ENOTSUPP);
  t.equal(m.sysUpdate(u32(0), u32(3), 0), -E.EBADF, 'no perf event fds in userspace');
  t.equal(m.sysUpdate(u32(7), u32(3), 0), -E.E2BIG);
  t.equal(m.sysDelete(u32(0), 0), 0, 'delete removes CPU 0\'s event');
  t.equal(m.sysDelete(u32(0), 0), -E.ENOENT);
  t.equal(m.output(0xffffffffn, data), -E.ENOENT);
});

t.test('prog array', async (t) => {
  const progs = new Map([[10, { fd: 10, program: 'p10' }]]);
  const m = createMap<string>(spec(3, 4, 4, 4), env(), { progByFd: (fd) => progs.get(fd) }) as ProgArrayMap<string>;
  t.equal(m.sysUpdate(u32(1), u32(10), 0), 0);
  t.equal(m.slot(1), 'p10');
  t.equal(m.slot(2), undefined);
  t.equal(m.sysUpdate(u32(1), u32(11), 0), -E.EBADF, 'unknown program fd: EBADF');
  t.equal(m.sysUpdate(u32(4), u32(10), 0), -E.E2BIG);
  t.equal(m.sysUpdate(u32(1), u32(10), BPF_NOEXIST), -E.EINVAL, 'fd arrays take BPF_ANY only');
  const out = new Uint8Array(4);
  t.equal(m.sysLookup(u32(1), out, 0), 0);
  t.equal(rdU32(out), 10, 'lookup gives the program id');
  t.equal(m.sysLookup(u32(2), out, 0), -E.ENOENT);
  t.equal(m.sysDelete(u32(1), 0), 0);
  t.equal(m.sysDelete(u32(1), 0), -E.ENOENT);
  t.equal(m.sysDelete(u32(9), 0), -E.E2BIG);
  t.equal(m.progLookup(u32(1)), 0, 'programs cannot look prog arrays up');
});

t.test('close frees the VM memory', async (t) => {
  const e = env();
  const before = e.memory.regions().length;
  const ms = [createMap(spec(1, 4, 8, 16), e), createMap(spec(2, 4, 8, 16), e), createMap(spec(27, 0, 0, 4096), e)];
  t.equal(e.memory.regions().length, before + 3);
  for (const m of ms) {
    m.close();
    m.close();
  }
  t.equal(e.memory.regions().length, before, 'regions released, close is idempotent');
});

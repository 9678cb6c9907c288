// The FFI path's mapOp (backends/libbpf-ffi/mapop.ts) remembers the last guest view it was given and the
// address of its byte 0 (no type test and no `.buffer` read per call: bench/RESULTS.md's FFI row). Here on
// the real kernel: values land in the view passed (two memories alternating, a view at an offset), a view
// whose memory grew (its buffer detached) fails with -EFAULT instead of using the old address, the new
// view reaches the grown part, an ArrayBuffer argument works and is not remembered, lookup-and-delete
// still goes through the checked path, bounds hold on the remembered view.
import t from 'tap';
import { ffiKernel } from '../backends/libbpf-ffi/index.js';

const LOOKUP = 1;
const UPDATE = 2;
const LOOKUP_AND_DELETE = 21;
const EFAULT = 14;
const ARRAY = 2;
const HASH = 1;

const ffi = ffiKernel();

function u64At(m: Uint8Array, off: number): bigint {
  return new DataView(m.buffer, m.byteOffset).getBigUint64(off, true);
}

t.test('values land in the view passed; two memories alternating; a view at an offset', async (t) => {
  const fd = ffi.mapCreate(ARRAY, 4, 8, 16, 'ffcache');
  t.teardown(() => ffi.closeFd(fd));
  const a = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer);
  const b = new Uint8Array(new WebAssembly.Memory({ initial: 1 }).buffer);
  const dvA = new DataView(a.buffer);
  for (const [k, v] of [[1, 111n], [2, 222n]] as const) {
    dvA.setUint32(0, k, true);
    dvA.setBigUint64(8, v, true);
    t.equal(ffi.mapOp(UPDATE, fd, a, 0, 8, 0), 0);
  }
  new DataView(b.buffer).setUint32(100, 2, true);
  dvA.setUint32(0, 1, true);
  for (let i = 0; i < 50; i++) {
    t.equal(ffi.mapOp(LOOKUP, fd, a, 0, 16, 0) | ffi.mapOp(LOOKUP, fd, b, 100, 200, 0), 0);
  }
  t.equal(u64At(a, 16), 111n, 'memory a: key 1 -> 111');
  t.equal(u64At(b, 200), 222n, 'memory b: key 2 -> 222');
  const off = new Uint8Array(a.buffer, 4096, 4096);
  new DataView(a.buffer).setUint32(4096 + 40, 2, true);
  t.equal(ffi.mapOp(LOOKUP, fd, off, 40, 48, 0), 0);
  t.equal(u64At(off, 48), 222n, 'a view at byte 4096: offsets are the view\'s');
  t.equal(ffi.mapOp(LOOKUP, fd, off, 40, 48, 0), 0, 'again, remembered');
  t.equal(u64At(a, 4096 + 48), 222n);
  t.equal(ffi.mapOp(LOOKUP, fd, off, 4096, 48, 0), -EFAULT, 'bounds are the view\'s length, remembered or not');
  t.equal(ffi.mapOp(LOOKUP, fd, off, 40, 4096, 0), -EFAULT);
});

t.test('memory.grow: the old view fails with -EFAULT, the new one reaches the grown part', async (t) => {
  const fd = ffi.mapCreate(ARRAY, 4, 8, 16, 'ffgrow');
  t.teardown(() => ffi.closeFd(fd));
  const mem = new WebAssembly.Memory({ initial: 1, maximum: 4 });
  const old = new Uint8Array(mem.buffer);
  new DataView(mem.buffer).setUint32(0, 3, true);
  new DataView(mem.buffer).setBigUint64(8, 333n, true);
  t.equal(ffi.mapOp(UPDATE, fd, old, 0, 8, 0), 0);
  t.equal(ffi.mapOp(LOOKUP, fd, old, 0, 16, 0), 0, 'remembered');
  mem.grow(1);
  t.equal(old.byteLength, 0, 'the old view is detached');
  t.equal(ffi.mapOp(LOOKUP, fd, old, 0, 16, 0), -EFAULT, 'not the old address');
  const now = new Uint8Array(mem.buffer);
  new DataView(mem.buffer).setUint32(65536, 3, true);
  t.equal(ffi.mapOp(LOOKUP, fd, now, 65536, 65536 + 8, 0), 0);
  t.equal(u64At(now, 65536 + 8), 333n, 'a value written in the grown part');
});

t.test('an ArrayBuffer argument works and is not remembered; lookup-and-delete goes by buffer', async (t) => {
  const fd = ffi.mapCreate(HASH, 4, 8, 16, 'ffhash');
  t.teardown(() => ffi.closeFd(fd));
  const buf = new WebAssembly.Memory({ initial: 1 }).buffer;
  const dv = new DataView(buf);
  dv.setUint32(0, 9, true);
  dv.setBigUint64(8, 999n, true);
  t.equal(ffi.mapOp(UPDATE, fd, buf, 0, 8, 0), 0, 'update through an ArrayBuffer');
  t.equal(ffi.mapOp(LOOKUP, fd, buf, 0, 16, 0), 0);
  t.equal(dv.getBigUint64(16, true), 999n);
  const view = new Uint8Array(buf);
  t.equal(ffi.mapOp(LOOKUP, fd, view, 0, 24, 0), 0, 'then a view of it (remembered)');
  t.equal(dv.getBigUint64(24, true), 999n);
  t.equal(ffi.mapOp(LOOKUP_AND_DELETE, fd, view, 0, 32, 0), 0, 'lookup-and-delete on the remembered view');
  t.equal(dv.getBigUint64(32, true), 999n);
  t.equal(ffi.mapOp(LOOKUP, fd, view, 0, 40, 0), -2, 'deleted: -ENOENT');
});

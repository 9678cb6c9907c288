// The one poll record writer (src/records.ts): its framing byte for byte, the padding zeroed over stale
// bytes, a record that does not fit left unwritten; and the three JavaScript record sources (the
// userspace ring buffer and perf event array, the FFI path's ring/perf readers) write through it, with no
// framing of their own. Their records reaching guests: userspace-maps, records, abi-ffi and examples tests.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';
import { RECORD_HEADER, recordSpan, recordView, writeRecord } from '../src/records.js';

t.test('framing: [u32 size][u32 0][data zero-padded to 8]', async (t) => {
  t.equal(RECORD_HEADER, 8);
  t.same([0, 1, 7, 8, 9, 16].map(recordSpan), [8, 16, 16, 16, 24, 24]);
  const out = new Uint8Array(40).fill(0xee);
  const view = recordView(out);
  const a = writeRecord(out, view, 0, new Uint8Array([1, 2, 3]));
  t.equal(a, 16);
  t.same([...out.subarray(0, 16)], [3, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0], 'size, zero, data, zero padding over stale bytes');
  const b = writeRecord(out, view, a, new Uint8Array(8).fill(9));
  t.equal(b, 32);
  t.same([...out.subarray(16, 32)], [8, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]);
  t.equal(writeRecord(out, view, b, new Uint8Array(1)), -1, 'a record that does not fit (8 + 8 > 8 left)');
  t.same([...out.subarray(32)], new Array(8).fill(0xee), 'nothing written when it does not fit');
  const empty = writeRecord(out, view, 32, new Uint8Array(0));
  t.equal(empty, 40, 'an empty record is its header alone');
  t.same([...out.subarray(32)], new Array(8).fill(0));
});

t.test('a view over part of a buffer: offsets are the view\'s', async (t) => {
  const whole = new Uint8Array(64).fill(0xaa);
  const out = whole.subarray(8, 40);
  t.equal(writeRecord(out, recordView(out), 0, new Uint8Array([5])), 16);
  t.same([...whole.subarray(0, 8)], new Array(8).fill(0xaa), 'nothing before the view touched');
  t.same([...whole.subarray(8, 24)], [1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
});

t.test('the record sources write through it, with no framing of their own', async (t) => {
  for (const rel of ['backends/userspace/maps/ringbuf.ts', 'backends/userspace/maps/perf.ts', 'backends/libbpf-ffi/buffers.ts']) {
    const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
    t.match(text, /import \{[^}]*\bwriteRecord\b[^}]*\} from '[./]+\/src\/records\.js'/, `${rel} imports the writer`);
    t.match(text, /writeRecord\(/, `${rel} calls it`);
    t.notMatch(text, /8 \+ \(\([a-z.]+ \+ 7\) & ~7\)/, `${rel} computes no record span of its own`);
    t.notMatch(text, /setUint32\((?:off|at) \+ 4, 0, true\)/, `${rel} writes no poll-record header of its own (the ring buffer's kernel-format header in VM memory is not one)`);
  }
  const reader = fs.readFileSync(path.join(ROOT, 'src/abi/records.ts'), 'utf8');
  t.match(reader, /from '\.\.\/records\.js'/, 'the reader takes the framing from the same file');
});

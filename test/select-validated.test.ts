// The main thread validates a module's embedded objects while the guest's thread starts
// (validatedObjects, with their facts); the Selector then skips the second parse only for bytes equal to one of them.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';
import { Selector } from '../src/select/backend.js';
import { objectFacts, validatedObjects } from '../src/select/facts.js';
import { loadObject } from '../src/object/loader.js';
import { buildPolicy } from '../src/policy/policy.js';
import { BackendError } from '../src/errors.js';
import { craft } from './fuzz/craft.js';
import type { Backend, LoadedObject } from '../backends/backend.js';

const wasm = fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'bootstrap.wasm'));
const obj = fs.readFileSync(path.join(ROOT, 'matrix', 'build', 'bootstrap.bpf.o'));

/** a backend that records what reaches it */
function recorder(): Backend & { seen: number } {
  const b = {
    name: 'linux' as const,
    seen: 0,
    load(): LoadedObject {
      b.seen++;
      return { backend: 'linux', programs: [], maps: [], attach() {}, mapOperate: () => 0, openRecords: () => { throw new Error('none'); }, close() {} };
    },
    wakeFd: () => -1,
    dispose() {},
  };
  return b;
}

t.test('validatedObjects finds the embedded object; only equal bytes skip the parse', async (t) => {
  const spans = validatedObjects(wasm);
  t.equal(spans.length, 1);
  const known = wasm.subarray(spans[0]!.offset, spans[0]!.offset + spans[0]!.size);
  t.same(Buffer.from(known), obj, 'the span is the object the module embeds');
  t.same(spans[0]!.facts, objectFacts(loadObject(new Uint8Array(obj))), 'with the facts the selector plans from');
  t.same(JSON.parse(JSON.stringify(spans[0]!.facts)), spans[0]!.facts, 'plain data (they cross threads)');
  const b = recorder();
  const sel = new Selector({ linux: b }, undefined, 'linux', [{ bytes: known, facts: spans[0]!.facts }]);
  const opts = { objectName: 'x', verbose: false, log: (): void => {} };
  sel.load(new Uint8Array(obj), opts);
  t.equal(b.seen, 1, 'the validated object loads');
  const bad = craft(obj, 'var-type');
  t.throws(() => sel.load(bad, opts), BackendError, 'other bytes (same length, one field changed) are validated');
  t.equal(b.seen, 1, 'and never reach the backend');
  t.throws(() => sel.load(new Uint8Array(obj), { ...opts, policy: buildPolicy({ programTypes: ['xdp'] }) }), /the policy refuses the object/, 'the policy still applies to validated bytes');
  t.same(validatedObjects(new Uint8Array([1, 2, 3])), []);
  const withBad = Buffer.concat([wasm.subarray(0, spans[0]!.offset), bad, wasm.subarray(spans[0]!.offset + spans[0]!.size)]);
  t.same(validatedObjects(withBad), [], 'an embedded object that fails the validation is not listed');
});

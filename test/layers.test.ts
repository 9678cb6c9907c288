// The house's layers (ARCHITECTURE.md): which room may import which. A room is a folder of src/,
// backends/ or compat/ (or a file that stands alone there, such as src/errors.ts). Each has a rank; a
// room may import only rooms of a lower rank, so the data path reads top to bottom and no two folders
// import each other. KNOWN lists today's exceptions, each to be removed by the step that fixes it: the
// test fails on a new exception, and on a listed one that no longer exists (so the list stays true).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

const RANK: Record<string, number> = {
  // the ground: no kernel, no I/O of their own beyond reading bytes
  'src/errors': 0,
  'src/kernel': 0,
  'src/trace': 0,
  'src/style': 0,
  // the poll record framing: the one writer the record sources share, read by src/abi/records.ts
  'src/records': 0,
  'src/object': 0.5,
  'src/wasm': 0.5,
  // the one door to the native addon (bpf(), perf, epoll): a file of its own
  'backends/linux/native': 0.5,
  // the other door: the system's libbpf through FFI (koffi), with the addon's contract (Windows' ebpfapi.dll too)
  'backends/libbpf-ffi': 0.75,
  // what the host can do, and what the user allows
  'src/probe': 1,
  'src/guest': 1,
  // passes that rewrite objects or find BTF, and the run's policy
  'compat/btfhub': 2,
  'compat/ptregs': 2,
  'compat/ringbuf': 2,
  'src/policy': 2,
  // the one interface every backend implements
  'backends/backend': 3,
  // the kernel backend's optional fast paths (map_operate and buffer_poll without JavaScript)
  'backends/fastpath': 3.5,
  // the backends
  'backends/linux': 4,
  'backends/userspace': 4,
  'backends/windows': 4,
  // routing and the ABI
  'src/select': 5,
  'src/abi': 5,
  // one guest's run, and the command line
  'src/runtime': 6,
  // what the CLI and the library API share: run with streams and a handle, probe and check as data
  'src/api': 6.5,
  'src/cli': 7,
  // the library API's entry (package.json exports)
  'src/index': 8,
};

/** today's exceptions: "importer room -> imported room", each with the reason and the step that removes it */
const KNOWN: Record<string, string> = {
};

const DIRS = ['src', 'backends', 'compat'];

function room(file: string): string {
  const rel = path.relative(ROOT, file).replace(/\.ts$/, '');
  const parts = rel.split(path.sep);
  if (rel === 'backends/linux/native') return rel;
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : rel;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** every relative import of a file (static, dynamic, side-effect, type-only) */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    out.push(path.resolve(path.dirname(file), m[1]!).replace(/\.js$/, '.ts'));
  }
  return out;
}

const edges = new Map<string, Set<string>>(); // "a -> b" -> files
for (const d of DIRS) {
  for (const file of tsFiles(path.join(ROOT, d))) {
    const from = room(file);
    for (const target of imports(file)) {
      if (!DIRS.some((x) => target.startsWith(path.join(ROOT, x) + path.sep))) continue;
      const to = room(target);
      if (to === from) continue;
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, new Set());
      edges.get(key)!.add(path.relative(ROOT, file));
    }
  }
}

t.test('every room has a rank', async (t) => {
  const rooms = new Set([...edges.keys()].flatMap((k) => k.split(' -> ')));
  for (const d of DIRS) for (const f of tsFiles(path.join(ROOT, d))) rooms.add(room(f));
  const unranked = [...rooms].filter((r) => RANK[r] === undefined).sort();
  t.same(unranked, [], 'a new folder needs a rank in test/layers.test.ts and ARCHITECTURE.md');
});

t.test('a room imports only rooms below it (except the known exceptions)', async (t) => {
  const bad: string[] = [];
  for (const [key, files] of edges) {
    const [from, to] = key.split(' -> ') as [string, string];
    if ((RANK[to] ?? 99) < (RANK[from] ?? -1) || KNOWN[key]) continue;
    bad.push(`${key} (${[...files].join(', ')})`);
  }
  t.same(bad.sort(), [], 'imports against the layers');
});

t.test('the known exceptions still exist (remove an entry once its step is done)', async (t) => {
  const gone = Object.keys(KNOWN).filter((k) => !edges.has(k));
  t.same(gone, []);
});

t.test('no import cycle between rooms, exceptions included', async (t) => {
  const next = new Map<string, string[]>();
  for (const key of edges.keys()) {
    const [from, to] = key.split(' -> ') as [string, string];
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const walk = (r: string, trail: string[]): void => {
    if (state.get(r) === 'done') return;
    if (state.get(r) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(r)), r].join(' -> '));
      return;
    }
    state.set(r, 'open');
    for (const n of next.get(r) ?? []) walk(n, [...trail, r]);
    state.set(r, 'done');
  };
  for (const r of next.keys()) walk(r, []);
  t.same(cycles, [], 'cycles between rooms');
});

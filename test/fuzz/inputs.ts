// The well-formed inputs mutants start from: the matrix objects and modules (matrix/build, `npm run
// examples`) and the test fixtures (built with clang-16 into test/build).
import fs from 'node:fs';
import path from 'node:path';
import { abiGuest, BUILD, buildBpf, FIXTURES, ROOT } from '../helpers.js';

const MATRIX = path.join(ROOT, 'matrix', 'build');

function matrix(ext: string): string[] {
  if (!fs.existsSync(MATRIX)) return [];
  return fs.readdirSync(MATRIX).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(MATRIX, f));
}

export function objectInputs(): string[] {
  const fixtures = ['probe.bpf.c', 'fentry.bpf.c', 'reject.bpf.c', 'vm/prog.bpf.c', 'userspace/e2e.bpf.c', 'userspace/link.bpf.c', 'userspace/core.bpf.c'];
  const built = fixtures.map((f) => buildBpf(path.join(FIXTURES, f), path.join(BUILD, `fuzz-${f.replace(/\//g, '-').replace(/\.c$/, '.o')}`)));
  return [...matrix('.bpf.o'), ...built];
}

export function moduleInputs(): string[] {
  return [...matrix('.wasm'), abiGuest()];
}

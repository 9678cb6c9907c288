#!/usr/bin/env node
// npm's install script: builds the libbpf addon (cmake-js) and the uprobe agent (make -C native/agent).
// A build that cannot run (not Linux, no compiler, no libbpf headers) is reported and never fails the install:
// everything that does not need it still works, and native/install-status.json says why it is missing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const statusFile = path.join(root, 'native', 'install-status.json');
const say = (line) => process.stderr.write(`wasm-bpf install: ${line}\n`);

/** the last lines of a failed step's output that name its cause (compiler errors, missing headers or tools) */
function cause(out) {
  const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
  const telling = lines.filter((l) => /error|not found|no such file|could not find|command not found|missing/i.test(l));
  return (telling.length ? telling : lines).slice(-3).join(' | ').slice(0, 600) || 'no output';
}

function step(what, cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) return { ok: false, reason: `${what}: cannot run ${cmd} (${r.error.code === 'ENOENT' ? 'not installed' : r.error.message})` };
  if (r.status !== 0) return { ok: false, reason: `${what} failed (${cmd} exited ${r.status ?? r.signal}): ${cause(`${r.stdout}\n${r.stderr}`)}` };
  return { ok: true };
}

const FIX = 'install the build tools and libbpf (Debian 12: apt-get install g++ cmake make pkg-config libbpf-dev libelf-dev zlib1g-dev), then run `npm rebuild wasm-bpf`';
const status = { at: new Date().toISOString(), addon: { ok: false, reason: '' }, agent: { ok: false, reason: '' } };

// WASM_BPF_SKIP_NATIVE: 1 (both parts), or addon / agent (that part)
const skip = new Set((process.env.WASM_BPF_SKIP_NATIVE ?? '').split(',').map((s) => s.trim()).filter(Boolean));
const skipped = (part) => skip.has('1') || skip.has(part);
const SKIPPED = `not built: WASM_BPF_SKIP_NATIVE=${process.env.WASM_BPF_SKIP_NATIVE} was set during the install`;
if (process.platform !== 'linux') {
  status.addon.reason = status.agent.reason = `not built: the native parts need Linux (this is ${process.platform})`;
} else {
  if (skipped('addon')) status.addon.reason = SKIPPED;
  else {
    // cmake-js is a dependency: in this package's node_modules or hoisted into the installing project's
    let cmakeJs;
    try {
      cmakeJs = path.join(path.dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin', 'cmake-js');
    } catch {
      cmakeJs = undefined;
    }
    status.addon = cmakeJs
      ? step('the libbpf addon (native/)', process.execPath, [cmakeJs, 'compile', '-d', 'native', '--out', 'native/build'])
      : { ok: false, reason: 'the libbpf addon (native/): cmake-js (a dependency) is not installed' };
  }
  if (skipped('agent')) status.agent.reason = SKIPPED;
  else status.agent = step('the uprobe agent (native/agent)', 'make', ['-s', '-C', 'native/agent']);
}

for (const [name, s] of [['kernel backend addon', status.addon], ['uprobe agent', status.agent]]) {
  if (s.ok) say(`${name}: built`);
  else say(`${name}: ${s.reason}${/not built: (WASM_BPF|the native)/.test(s.reason) ? '' : `; to build it, ${FIX}`}`);
}
if (!status.addon.ok || !status.agent.ok) {
  say('the install goes on: `wasm-bpf probe` says what is missing; `vm`, `check`, `gen` and `probe` work without it');
}
try {
  fs.writeFileSync(statusFile, `${JSON.stringify(status, null, 2)}\n`);
} catch {
  // a read-only tree: the messages above are all there is
}
process.exit(0);

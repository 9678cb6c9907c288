#!/usr/bin/env node
// The CLI: dist/src/cli/main.bundle.js, the bundle `npm run build` makes of main.js and what it imports
// (a few files to load instead of dozens of modules, while the guest's thread starts beside it), unless
// main.js is newer (a plain `tsc` after the last bundle) or WASM_BPF_NO_BUNDLE is set.
import fs from 'node:fs';

const dir = new URL('../dist/src/cli/', import.meta.url);
const mtime = (name) => {
  try {
    return fs.statSync(new URL(name, dir)).mtimeMs;
  } catch {
    return -1;
  }
};
const bundled = !process.env.WASM_BPF_NO_BUNDLE && mtime('main.bundle.js') >= mtime('main.js');
await import(new URL(bundled ? 'main.bundle.js' : 'main.js', dir).href);

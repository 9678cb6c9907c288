// Imported first by the guest's worker: node:wasi announces itself as experimental on every run,
// which is noise to users of this tool. Every other warning is still printed.
import process from 'node:process';
import { fileOf, mark } from '../trace.js';

mark('worker_start', () => fileOf(import.meta.url));

process.removeAllListeners('warning');
process.on('warning', (w: Error) => {
  if (w.name === 'ExperimentalWarning' && /WASI/.test(w.message)) return;
  process.stderr.write(`${w.name}: ${w.message}\n`);
});

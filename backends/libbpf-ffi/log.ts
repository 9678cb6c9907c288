// libbpf's log through the FFI path: one print callback (registered once per process) formats each
// message with the C library's vsnprintf and keeps it for takeLog, as the addon's LogScope does.
import { koffi } from './library.js';
import { libbpfApi } from './api.js';
import { libcApi } from './libc.js';

/** LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG */
let level = 0;
let captured = '';
let registered: bigint | undefined;
const line = new Uint8Array(4096);

function print(lvl: number, fmt: bigint, ap: bigint): number {
  if (lvl > level) return 0;
  const n = libcApi().vsnprintf(line, line.length, fmt, ap);
  if (n > 0) captured += Buffer.from(line.buffer, line.byteOffset, Math.min(n, line.length - 1)).toString('utf8');
  return 0;
}

/**
 * Captures libbpf's messages up to `lvl` (0 warnings, 1 info, 2 debug, as the addon's logLevel) from now on.
 * libbpf's print hook is process-wide: the FFI path is meant for the one thread that loads objects.
 */
export function captureLog(lvl: number): () => string {
  level = lvl;
  if (registered === undefined) {
    const { api, protos } = libbpfApi();
    registered = koffi().register(print, koffi().pointer(protos.print));
    api.libbpf_set_print(registered);
  }
  // what this call printed (an error carries it; takeLog still returns it, as the addon's)
  const start = captured.length;
  return () => captured.slice(start);
}

/** what libbpf printed since the last call */
export function takeLog(): string {
  const s = captured;
  captured = '';
  return s;
}


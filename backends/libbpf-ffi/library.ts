// Finds and opens the libbpf-compatible library through koffi: the system's libbpf.so.1 on Linux,
// eBPF for Windows' ebpfapi.dll on Windows. One handle per process (koffi keeps it loaded).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import type { LibraryHandle } from 'koffi';

export type Koffi = typeof import('koffi');

/** the koffi module, loaded on first use (a missing or broken install is reported, not thrown at import) */
let koffiModule: Koffi | undefined;
export function koffi(): Koffi {
  koffiModule ??= createRequire(import.meta.url)('koffi') as Koffi;
  return koffiModule;
}

/** Where eBPF for Windows installs ebpfapi.dll (as src/probe/backends.ts's EBPFAPI_PATHS, with the drive). */
const WINDOWS_PATHS = ['C:\\Windows\\System32\\ebpfapi.dll', 'C:\\Program Files\\ebpf-for-windows\\ebpfapi.dll'];

/** the file names tried, in order, on this platform (a bare name goes through the loader's search path) */
export function libraryCandidates(platform: string = process.platform): string[] {
  if (platform === 'win32') return [...WINDOWS_PATHS.filter((p) => fs.existsSync(p)), 'ebpfapi.dll'];
  // Debian/Ubuntu's libbpf1 and Fedora's libbpf: the 1.x ABI (the calls declared in api.ts and linux.ts)
  return ['libbpf.so.1'];
}

export interface OpenedLibrary {
  lib: LibraryHandle;
  /** the name it was opened by */
  file: string;
}

let opened: OpenedLibrary | undefined;
let failure: Error | undefined;

/** Opens the library once; throws an Error saying what was tried and how to install it. */
export function openLibrary(): OpenedLibrary {
  if (opened) return opened;
  if (failure) throw failure;
  const tried: string[] = [];
  let k: Koffi;
  try {
    k = koffi();
  } catch (err) {
    failure = new Error(`the koffi package cannot be loaded (${err instanceof Error ? err.message : String(err)}): reinstall wasm-bpf's dependencies (npm install)`);
    throw failure;
  }
  for (const file of libraryCandidates()) {
    try {
      opened = { lib: k.load(file), file };
      return opened;
    } catch (err) {
      tried.push(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  const fix = process.platform === 'win32' ? 'install eBPF for Windows' : 'install libbpf 1.x (Debian/Ubuntu: apt-get install libbpf1; Fedora: dnf install libbpf)';
  failure = new Error(`no libbpf-compatible library found (${tried.join('; ')}): ${fix}`);
  throw failure;
}

/** whether the library opens here (the prober's question): its name, or why not */
export function ffiLibrary(): { library: string } | { error: string } {
  try {
    return { library: openLibrary().file };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

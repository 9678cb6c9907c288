// Which native part the kernel backend runs on: the addon (native/, built at install), or the system's
// libbpf through koffi (backends/libbpf-ffi/) when the addon is not built or when asked for.
import { loadNative, type KernelLib } from './native.js';
import { ffiKernel } from '../libbpf-ffi/index.js';
import { BackendError } from '../../src/errors.js';
import { ERRNO } from '../../src/kernel/uapi.js';

export type KernelPath = 'addon' | 'ffi';
export type KernelPathChoice = 'auto' | KernelPath;
export const KERNEL_PATH_CHOICES: readonly KernelPathChoice[] = ['auto', 'addon', 'ffi'];

export interface OpenedKernelLib {
  lib: KernelLib;
  path: KernelPath;
  /** why this path: the addon's or libbpf's failure that led here, or that it was asked for */
  why: string;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** the kernel library for `choice` ('auto': the addon, else libbpf through FFI); throws saying why neither loads */
export function openKernelLib(choice: KernelPathChoice = 'auto'): OpenedKernelLib {
  if (choice === 'addon') return { lib: loadNative(), path: 'addon', why: 'asked for (--libbpf addon)' };
  if (choice === 'ffi') {
    const lib = ffiKernel();
    return { lib, path: 'ffi', why: `asked for (--libbpf ffi): ${lib.library} through koffi` };
  }
  let addonErr: string;
  try {
    return { lib: loadNative(), path: 'addon', why: 'the native addon is built' };
  } catch (err) {
    addonErr = message(err);
  }
  try {
    const lib = ffiKernel();
    return { lib, path: 'ffi', why: `${lib.library} through koffi: ${addonErr}` };
  } catch (err) {
    throw new BackendError(
      `the kernel backend has no native part: ${addonErr}; and the FFI path cannot load libbpf: ${message(err)}`,
      ERRNO.EOPNOTSUPP,
      '',
      'install libbpf 1.x (Debian/Ubuntu: apt-get install libbpf1), or build the addon (npm rebuild wasm-bpf)',
    );
  }
}

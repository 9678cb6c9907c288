// The kernel backend's native part a test runs on: the addon, or libbpf through koffi when the test runs
// through its *-ffi.test.ts wrapper (which sets WASM_BPF_TEST_LIBBPF=ffi, or hides the addon with
// WASM_BPF_NO_ADDON=1 for the CLI runs it starts too, before importing it).
import { loadNative, type KernelLib, type NativeAddon } from '../backends/linux/native.js';
import { ffiKernel } from '../backends/libbpf-ffi/index.js';
import type { KernelPath } from '../backends/linux/kernellib.js';

export const TEST_LIBBPF_ENV = 'WASM_BPF_TEST_LIBBPF';

/** the path the tests of this process run on */
export function testKernelPath(): KernelPath {
  return process.env[TEST_LIBBPF_ENV] === 'ffi' || process.env.WASM_BPF_NO_ADDON === '1' ? 'ffi' : 'addon';
}

/** the kernel library under test; addon-only calls (fast calls, probes) are optional on it */
export function kernelLibUnderTest(): KernelLib & Partial<NativeAddon> {
  return testKernelPath() === 'ffi' ? ffiKernel() : loadNative();
}

/** a tap skip reason for a test of the addon alone, under the FFI path */
export function addonOnly(what: string): string | false {
  return testKernelPath() === 'ffi' ? `the addon's ${what}: not part of the FFI path` : false;
}

/**
 * whether the kernel backend serves a guest's map_operate and buffer_poll directly (the addon's C functions);
 * on the FFI path the host's JavaScript serves them, with the same checks
 */
export const directPaths = (): boolean => testKernelPath() === 'addon';

/** whether the prober's live probes run (the addon's): without them a kernel's refusal comes at load, not at planning */
export const liveProbes = (): boolean => testKernelPath() === 'addon';

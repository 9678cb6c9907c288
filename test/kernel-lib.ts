// The kernel backend's native part a test runs on: the addon, or libbpf through koffi when the test runs
// through its *-ffi.test.ts wrapper (which sets WASM_BPF_TEST_LIBBPF=ffi before importing it).
import { loadNative, type KernelLib, type NativeAddon } from '../backends/linux/native.js';
import { ffiKernel } from '../backends/libbpf-ffi/index.js';
import type { KernelPath } from '../backends/linux/kernellib.js';

export const TEST_LIBBPF_ENV = 'WASM_BPF_TEST_LIBBPF';

/** the path the tests of this process run on */
export function testKernelPath(): KernelPath {
  return process.env[TEST_LIBBPF_ENV] === 'ffi' ? 'ffi' : 'addon';
}

/** the kernel library under test; addon-only calls (fast calls, probes) are optional on it */
export function kernelLibUnderTest(): KernelLib & Partial<NativeAddon> {
  return testKernelPath() === 'ffi' ? ffiKernel() : loadNative();
}

/** a tap skip reason for a test of the addon alone, under the FFI path */
export function addonOnly(what: string): string | false {
  return testKernelPath() === 'ffi' ? `the addon's ${what}: not part of the FFI path` : false;
}

// native.test.ts through the FFI libbpf path (backends/libbpf-ffi/): the same contract, the same kernel.
process.env.WASM_BPF_TEST_LIBBPF = 'ffi';
await import('./native.test.js');

// mapop.test.ts on libbpf through FFI: every map_operate case of the table through the host's JavaScript
// path into backends/libbpf-ffi's mapOp.
process.env.WASM_BPF_TEST_LIBBPF = 'ffi';
await import('./mapop.test.js');

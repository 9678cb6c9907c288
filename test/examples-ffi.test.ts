// examples.test.ts with the addon hidden (WASM_BPF_NO_ADDON=1, inherited by every app it starts): each
// example app runs on libbpf through FFI, chosen automatically, and must show the same events.
process.env.WASM_BPF_NO_ADDON = '1';
await import('./examples.test.js');

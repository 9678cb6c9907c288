// hardening-kernel.test.ts with the addon hidden (WASM_BPF_NO_ADDON=1, inherited by every CLI run it
// starts): private pinned maps, guarded fd-valued and struct_ops maps (through a BPF link too), queue and
// stack maps, no kernel-internal errno, on libbpf through FFI.
process.env.WASM_BPF_NO_ADDON = '1';
await import('./hardening-kernel.test.js');

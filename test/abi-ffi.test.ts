// abi.test.ts with the addon hidden (WASM_BPF_NO_ADDON=1, inherited by every CLI run it starts): the same
// guests, bounds checks and hostile arguments through the kernel backend on libbpf through FFI.
import t from 'tap';

// every record through the host's JavaScript poll, on a machine shared with other runs: more than the
// default two minutes for the whole file
t.setTimeout(360_000);
process.env.WASM_BPF_NO_ADDON = '1';
await import('./abi.test.js');

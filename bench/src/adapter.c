/* adapter: re-exports an i32-only JS import under the wasm_bpf_map_operate signature, so that the
 * i64 `flags` never crosses into JS (no BigInt allocation per call). Shows the technique for
 * src/abi/host.ts: instantiate this (a few hundred bytes) before the guest and hand the guest its export.
 * Build: clang-16 --target=wasm32 -nostdlib -O2 -Wl,--no-entry adapter.c -o adapter.wasm
 */
#include <stdint.h>

__attribute__((import_module("host"), import_name("op"))) int host_op(int fd, int cmd, int k, int v, int nk, uint32_t lo,
                                                                      uint32_t hi);

__attribute__((export_name("op"))) int op(int fd, int cmd, int k, int v, int nk, uint64_t flags)
{
	return host_op(fd, cmd, k, v, nk, (uint32_t)flags, (uint32_t)(flags >> 32));
}

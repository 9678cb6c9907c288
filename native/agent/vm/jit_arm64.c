/* jit_arm64.c: no JIT on arm64 yet: every program runs on the interpreter (counted as disabled in
 * ebpf_vm_jit_get_stats); the sibling of jit_x86_64.c so that the build stays arch-clean. */
#include "jit.h"

int ebpf_jit_emit(const ebpf_vm_prog *p, uint8_t **code, size_t *len) {
  (void)p;
  *code = NULL;
  *len = 0;
  return EBPF_JIT_NOARCH;
}

/* A loaded object's functions (symbols.c), the places the rewriter scans. */
#ifndef WBPF_SYS_SYMBOLS_H
#define WBPF_SYS_SYMBOLS_H
#include <stddef.h>
#include <stdint.h>

struct wbpf_sys_fn { uintptr_t addr; size_t size; };

/* the functions of the loaded object whose path contains needle ("" : the main program), sorted by
 * address, each once; *out is malloc'ed; path (if not NULL) gets the object's path. -1: no such object */
int wbpf_sys_functions(const char *needle, struct wbpf_sys_fn **out, char *path, size_t pathlen);

#endif

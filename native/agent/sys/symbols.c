/* A loaded object's functions: its path and load bias (dl_iterate_phdr), and its defined STT_FUNC symbols
 * with a size, from the file's .dynsym and .symtab (read from disk), each address once. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "symbols.h"

struct find { const char *needle; char path[512]; uintptr_t bias; int found; };

static int find_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct find *f = data;
	const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : NULL;
	int main_obj = !name;
	if (f->needle[0] ? !(name && strstr(name, f->needle)) : !main_obj) return 0;
	if (main_obj) {
		ssize_t n = readlink("/proc/self/exe", f->path, sizeof f->path - 1);
		if (n <= 0) return 0;
		f->path[n] = 0;
	} else {
		strncpy(f->path, name, sizeof f->path - 1);
	}
	f->bias = info->dlpi_addr;
	f->found = 1;
	return 1;
}

static int by_addr(const void *a, const void *b)
{
	const struct wbpf_sys_fn *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int wbpf_sys_functions(const char *needle, struct wbpf_sys_fn **out, char *path, size_t pathlen)
{
	struct find f = { .needle = needle };
	dl_iterate_phdr(find_cb, &f);
	if (!f.found) return -1;
	if (path) { strncpy(path, f.path, pathlen - 1); path[pathlen - 1] = 0; }
	int fd = open(f.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	struct stat st;
	if (fstat(fd, &st) || (size_t)st.st_size < sizeof(Elf64_Ehdr)) { close(fd); return -1; }
	const uint8_t *m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) return -1;
	size_t fsz = st.st_size;
	const Elf64_Ehdr *eh = (const void *)m;
	int n = 0, cap = 0;
	struct wbpf_sys_fn *fns = NULL;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > fsz)
		goto done;
	const Elf64_Shdr *sh = (const void *)(m + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM && sh[i].sh_type != SHT_SYMTAB) continue;
		if (sh[i].sh_offset + sh[i].sh_size > fsz || sh[i].sh_entsize != sizeof(Elf64_Sym)) continue;
		const Elf64_Sym *sym = (const void *)(m + sh[i].sh_offset);
		size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t j = 0; j < count; j++) {
			if (ELF64_ST_TYPE(sym[j].st_info) != STT_FUNC || !sym[j].st_size || sym[j].st_shndx == SHN_UNDEF) continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				struct wbpf_sys_fn *g = realloc(fns, cap * sizeof *g);
				if (!g) { free(fns); fns = NULL; n = 0; goto done; }
				fns = g;
			}
			fns[n].addr = f.bias + sym[j].st_value;
			fns[n].size = sym[j].st_size;
			n++;
		}
	}
	if (n) {
		qsort(fns, n, sizeof *fns, by_addr);
		int k = 0;
		for (int i = 0; i < n; i++)
			if (!k || fns[k - 1].addr != fns[i].addr) fns[k++] = fns[i];
		n = k;
	}
done:
	munmap((void *)m, fsz);
	*out = fns;
	return n;
}

/* x86-64: a function's rewritable syscall sites: `mov $nr,%eax; syscall` (b8 imm32 0f 05) of a traced nr
 * and glibc's generic syscall() (`mov 8(%rsp),%r9; syscall`), at instruction boundaries the hook's decoder
 * confirms by decoding the function from its start; a site is refused when a direct branch of the function
 * lands inside its replaced instruction, or when the decoder stops before it (its boundary is unconfirmed). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "../internal.h"
#include "../../hook/x86_64/x86.h"

#define MAX_TARGETS 512

static const uint8_t generic_pat[WBPF_SYS_REPLACED] = { 0x4c, 0x8b, 0x4c, 0x24, 0x08 };

static int traced_nr(const uint64_t *traced, uint32_t nr) { return nr < WBPF_SYS_NR_MAX && (traced[nr / 64] >> (nr % 64) & 1); }

/* the site kind of the 7 bytes at p: nr, -1 for the generic pattern, -2 none */
static int site_at(const uint8_t *p, const uint64_t *traced, int generic)
{
	if (p[5] != 0x0f || p[6] != 0x05) return -2;
	uint32_t nr;
	if (p[0] == 0xb8) { memcpy(&nr, p + 1, 4); return traced_nr(traced, nr) ? (int)nr : -2; }
	if (generic && !memcmp(p, generic_pat, sizeof generic_pat)) return -1;
	return -2;
}

/* instructions the hook's decoder leaves out (it reads prologues) that function bodies hold */
static int extra_len(const uint8_t *p)
{
	if (p[0] == 0x0f && (p[1] == 0x05 || p[1] == 0x0b)) return 2; /* syscall, ud2 */
	if (p[0] == 0xf4 || p[0] == 0xcc) return 1;                  /* hlt, int3 */
	return 0;
}

int wbpf_sys_scan(const uint8_t *fn, size_t size, const uint64_t *traced, int generic, struct wbpf_sys_found *out, int max)
{
	int64_t targets[MAX_TARGETS];
	int ntargets = 0, n = 0, targets_full = 0;
	size_t off = 0, stop = size;
	char stopped[112] = "";
	/* pass 1: decode from the start; a site met at a boundary is a candidate */
	while (off + 1 <= size) {
		if (off + 7 <= size) {
			int nr = site_at(fn + off, traced, generic);
			if (nr != -2 && n < max) {
				memset(&out[n], 0, sizeof out[n]);
				out[n].off = off;
				out[n].nr = nr;
				n++;
			}
		}
		int len = extra_len(fn + off);
		struct x86_insn in;
		char why[48];
		if (!len) {
			if (x86_decode(fn + off, &in, why, sizeof why)) {
				snprintf(stopped, sizeof stopped, "the decoder stops at +%#zx (%s)", off, why);
				stop = off;
				break;
			}
			len = in.len;
			if (in.kind == X86_JMP || in.kind == X86_JCC || in.kind == X86_CALL) {
				if (in.kind != X86_CALL) {
					if (ntargets < MAX_TARGETS) targets[ntargets++] = (int64_t)(off + len) + in.rel;
					else targets_full = 1;
				}
			}
		}
		off += (size_t)len;
	}
	/* pass 2: sites past where the decoder stopped: found by their bytes, refused */
	for (off = stop; off + 7 <= size && n < max; off++) {
		int nr = site_at(fn + off, traced, generic);
		if (nr == -2 || off == stop) continue;
		memset(&out[n], 0, sizeof out[n]);
		out[n].off = off;
		out[n].nr = nr;
		out[n].refused = 1;
		snprintf(out[n].why, sizeof out[n].why, "its instruction boundary is unconfirmed: %s", stopped);
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (out[i].refused) continue;
		if (targets_full) {
			out[i].refused = 1;
			snprintf(out[i].why, sizeof out[i].why, "more than %d branches in the function: not checked", MAX_TARGETS);
			continue;
		}
		for (int j = 0; j < ntargets; j++) {
			int64_t t = targets[j] - (int64_t)out[i].off;
			if (t > 0 && t < WBPF_SYS_REPLACED) {
				out[i].refused = 1;
				snprintf(out[i].why, sizeof out[i].why, "a branch lands inside its `mov` (+%#llx)", (unsigned long long)targets[j]);
				break;
			}
			if (t == WBPF_SYS_REPLACED) out[i].shared = 1;
		}
	}
	return n;
}

int wbpf_sys_scan_others(const uint8_t *fn, size_t size)
{
	int n = 0;
	size_t off = 0, prev = (size_t)-1;
	while (off + 1 <= size) {
		int len = extra_len(fn + off);
		if (len == 2 && fn[off] == 0x0f && fn[off + 1] == 0x05) {
			/* a site's own syscall: right after `mov $imm32,%eax` (5 bytes) or the generic pattern */
			int site = prev != (size_t)-1 && off - prev == WBPF_SYS_REPLACED &&
				   (fn[prev] == 0xb8 || !memcmp(fn + prev, generic_pat, sizeof generic_pat));
			if (!site) n++;
		}
		if (!len) {
			struct x86_insn in;
			char why[48];
			if (x86_decode(fn + off, &in, why, sizeof why)) break; /* the rest is not decodable: not counted */
			len = in.len;
		}
		prev = off;
		off += (size_t)len;
	}
	return n;
}

/* bpf_trace_printk's formatting: the kernel's bpf_bprintf_prepare subset, as backends/userspace/helpers.ts
 * (%d %i %u %x %X with l/ll, %c, %s and %pks/%pus through the safe read, %p, %pK/%px, %pi4/%pI4/%pi6/%pI6,
 * %%; flags 0 + - space and a width; at most 3 arguments); output truncated to PRINTK_SIZE - 1 bytes. */
#include <inttypes.h>
#include <stddef.h>

#include "agent.h"

struct pbuf {
	char *s;
	uint32_t len; /* the text's length (as bstr_printf: what would have been written) */
};
/* c in the NUL-terminated s (no libc on a hit: it may use vector registers, lib/mem.c) */
static int has(const char *s, char c)
{
	for (; *s; s++)
		if (*s == c) return 1;
	return 0;
}
static void put(struct pbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, b->len++)
		if (b->len < PRINTK_SIZE - 1) b->s[b->len] = s[i];
}
/* s padded to width (left unless '-'; zeros after the sign for numbers with '0') */
static void put_padded(struct pbuf *b, const char *s, size_t n, const char *flags, unsigned width, int numeric)
{
	size_t fill = width > n ? width - n : 0;
	if (has(flags, '-')) {
		put(b, s, n);
		for (; fill; fill--) put(b, " ", 1);
		return;
	}
	if (numeric && has(flags, '0')) {
		if (n && (s[0] == '-' || s[0] == '+')) put(b, s, 1), s++, n--;
		for (; fill; fill--) put(b, "0", 1);
	} else
		for (; fill; fill--) put(b, " ", 1);
	put(b, s, n);
}
static int is_punct_p(uint8_t c) /* \p{P} in ASCII */
{
	return c && has("!\"#%&'()*,-./:;?@[\\]_{}", (char)c);
}
/* v in base 10 or 16 (upper: A-F), zero-padded to minw digits, after the prefix pre (snprintf's work
 * for the conversions above, without libc); returns the length written at out (at most 31) */
static int fmt_u64(char *out, const char *pre, uint64_t v, unsigned base, int upper, unsigned minw)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char t[24];
	unsigned n = 0, k = 0;
	do {
		t[n++] = digits[v % base];
		v /= base;
	} while (v);
	while (n < minw && n < sizeof t) t[n++] = '0';
	for (; *pre; pre++) out[k++] = *pre;
	while (n) out[k++] = t[--n];
	out[k] = 0;
	return (int)k;
}

long format_printk(const uint8_t *f, size_t flen, const uint64_t args[3], char *out)
{
	struct pbuf b = { out, 0 };
	unsigned argi = 0;
	for (size_t i = 0; i < flen; i++) {
		uint8_t ch = f[i];
		if (ch > 0x7e || (ch < 0x20 && !(ch >= 0x09 && ch <= 0x0d))) return -1;
		if (ch != '%') {
			put(&b, (const char *)&ch, 1);
			continue;
		}
		if (i + 1 < flen && f[i + 1] == '%') {
			put(&b, "%", 1);
			i++;
			continue;
		}
		if (argi >= 3) return -1;
		uint64_t arg = args[argi++];
		char flags[8] = { 0 };
		unsigned nf = 0, width = 0;
		i++;
		while (i < flen && (f[i] == '0' || f[i] == '+' || f[i] == '-' || f[i] == ' ')) {
			if (nf < sizeof flags - 1) flags[nf++] = (char)f[i];
			i++;
		}
		while (i < flen && f[i] >= '0' && f[i] <= '9') {
			width = width * 10 + (unsigned)(f[i++] - '0');
			if (width > PRINTK_SIZE) width = PRINTK_SIZE;
		}
		uint8_t c = i < flen ? f[i] : 0, n = i + 1 < flen ? f[i + 1] : 0;
		char num[32];
		if (c == 'p') {
			if ((n == 'k' || n == 'u') && i + 2 < flen && f[i + 2] == 's') {
				i += 2;
				goto string;
			}
			if (n == 0 || n == ' ' || (n >= 0x09 && n <= 0x0d) || is_punct_p(n) || n == 'K' || n == 'x' || n == 's' || n == 'S') {
				if (n == 'K' || n == 'x' || n == 's' || n == 'S') i++;
				int k = fmt_u64(num, "", arg, 16, 0, 16);
				put_padded(&b, num, (size_t)k, flags, width, 0);
				continue;
			}
			if ((n == 'i' || n == 'I') && i + 2 < flen && (f[i + 2] == '4' || f[i + 2] == '6')) {
				int v6 = f[i + 2] == '6';
				uint8_t ip[16];
				char t[48];
				int k = 0;
				i += 2;
				if (safe_read(ip, arg, v6 ? 16 : 4) < 0) {
					put(&b, "(efault)", 8);
					continue;
				}
				if (!v6)
					for (int w = 0; w < 4; w++) k += fmt_u64(t + k, w ? "." : "", ip[w], 10, 0, 1);
				else
					for (int w = 0; w < 16; w += 2)
						k += fmt_u64(t + k, w ? ":" : "", (unsigned)(ip[w] << 8 | ip[w + 1]), 16, 0, n == 'I' ? 1 : 4);
				put_padded(&b, t, (size_t)k, flags, width, 0);
				continue;
			}
			return -1;
		}
		if (c == 's') {
		string:;
			char s[PRINTK_SIZE];
			long k = safe_read_str((uint8_t *)s, arg, sizeof s);
			put_padded(&b, s, k > 0 ? (size_t)k - 1 : 0, flags, width, 0);
			continue;
		}
		if (c == 'c') {
			char ch1 = (char)(arg & 0xff);
			put_padded(&b, &ch1, 1, flags, width, 0);
			continue;
		}
		int lng = 0;
		if (c == 'l') {
			lng = 1;
			i++;
			if (i < flen && f[i] == 'l') i++;
		}
		uint8_t conv = i < flen ? f[i] : 0;
		uint64_t v = lng ? arg : (uint32_t)arg;
		int k;
		switch (conv) {
		case 'd':
		case 'i': {
			int64_t sv = lng ? (int64_t)arg : (int64_t)(int32_t)arg;
			const char *sign = sv < 0 ? "-" : has(flags, '+') ? "+" : has(flags, ' ') ? " " : "";
			k = fmt_u64(num, sign, sv < 0 ? -(uint64_t)sv : (uint64_t)sv, 10, 0, 1);
			break;
		}
		case 'u': k = fmt_u64(num, "", v, 10, 0, 1); break;
		case 'x': k = fmt_u64(num, "", v, 16, 0, 1); break;
		case 'X': k = fmt_u64(num, "", v, 16, 1, 1); break;
		default: return -1;
		}
		put_padded(&b, num, (size_t)k, flags, width, 1);
	}
	out[b.len < PRINTK_SIZE - 1 ? b.len : PRINTK_SIZE - 1] = 0;
	return b.len;
}

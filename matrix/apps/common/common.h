/* common.h: what every matrix app shares, for both builds of the same source:
 *   - the Wasm guest (clang --target=wasm32-wasi, __wasm__ defined): libbpf-wasm.h + the skeleton
 *     made by `wasm-bpf gen skeleton`;
 *   - the native baseline (gcc, linked with libbpf): <bpf/libbpf.h> + the skeleton made by
 *     `bpftool gen skeleton`.
 * The skeleton API (<app>_bpf__open/__load/__attach/__destroy, skel->maps/progs/rodata) and the map
 * calls (bpf_map_lookup_elem, ...) are the same in both; the ring/perf buffer is in buffer.h.
 */
#ifndef MATRIX_COMMON_H
#define MATRIX_COMMON_H

#ifdef __wasm__
#include "libbpf-wasm.h"
#else
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

/* The app's name, used in error messages ("<app>: <what failed>: <strerror>"). */
#define STR_MAX_APP 32
static const char *app_name = "app";

/* Set by SIGINT/SIGTERM in the native build. A Wasm guest has no signals: the host stops it. */
static volatile int exiting;

/* Print "<app>: <what>: <strerror(err)>" to stderr and return 1, the exit code for errors.
 * err may be an errno value or a negative errno (as libbpf returns them). */
static inline int fail(const char *what, int err)
{
	if (err < 0)
		err = -err;
	fprintf(stderr, "%s: %s: %s\n", app_name, what, strerror(err));
	return 1;
}

/* Print the usage line after a "<app>: <what>: Invalid argument" line; returns 1. */
static inline int usage(const char *what, const char *synopsis)
{
	fail(what, EINVAL);
	fprintf(stderr, "usage: %s %s\n", app_name, synopsis);
	return 1;
}

/* Parse a whole non-negative decimal number (a fraction allowed when frac is true). */
static inline bool parse_num(const char *s, bool frac, double *out)
{
	char *end;
	errno = 0;
	double v = frac ? strtod(s, &end) : (double)strtoull(s, &end, 10);
	if (errno || end == s || *end || v < 0 || s[0] == '-')
		return false;
	*out = v;
	return true;
}

/* ---- time: `-t SECONDS` ----------------------------------------------------------------------- */
static inline double monotonic_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double deadline_s; /* 0: run until stopped */

/* Start the clock for `-t SECONDS` (0 = no limit). Call it right after attaching. */
static inline void run_for(double seconds)
{
	deadline_s = seconds > 0 ? monotonic_s() + seconds : 0;
}

/* False once Ctrl-C was pressed (native) or the -t time is over. */
static inline bool keep_running(void)
{
	return !exiting && (deadline_s == 0 || monotonic_s() < deadline_s);
}

/* Sleep up to ms milliseconds, but not past the -t deadline. */
static inline void sleep_ms(double ms)
{
	if (deadline_s) {
		double left = (deadline_s - monotonic_s()) * 1000;
		if (left < ms)
			ms = left > 0 ? left : 0;
	}
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6) };
	nanosleep(&ts, NULL); /* EINTR on Ctrl-C: fine, the caller checks keep_running() */
}

#ifndef __wasm__
static inline void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
}
#endif

/* Call first in main(): names the app and (native) makes Ctrl-C/SIGTERM end the poll loop. */
static inline void app_init(const char *name)
{
	app_name = name;
	opterr = 0; /* getopt: we print our own "<app>: bad option" line */
#ifndef __wasm__
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll()/nanosleep() return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
#endif
}

/* Say the programs are attached (the line tests wait for), then flush: "# <app>: attached; ..."
 * in the human layout, {"event":"attached","app":"<app>"} with -j. */
static inline void print_attached(const char *how_to_stop)
{
	if (json_out) {
		json_begin("attached");
		json_str("app", app_name, STR_MAX_APP);
		json_end();
		return;
	}
	printf("# %s: attached; %s\n", app_name, how_to_stop);
	fflush(stdout);
}

/* The local time of day, "HH:MM:SS" (the TIME column of libbpf-bootstrap and bcc); UTC in a Wasm
 * guest, which has no time zone. */
static inline const char *time_of_day(void)
{
	static char b[16];
	time_t t = time(NULL);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(b, sizeof(b), "%H:%M:%S", &tm))
		snprintf(b, sizeof(b), "--:--:--");
	return b;
}

/* ---- printing values ---------------------------------------------------------------------------
 * The human layout: a header line, then aligned columns; a value never contains a space. */
#define STR_BUFS 4
#define STR_MAX 512
static char str_bufs[STR_BUFS][STR_MAX];
static int str_next;

static inline char *next_buf(void)
{
	char *b = str_bufs[str_next];
	str_next = (str_next + 1) % STR_BUFS;
	return b;
}

/* A printable copy of a string from the kernel (stops at NUL or after max bytes): spaces and
 * control characters become '_'. Returns one of 4 rotating buffers (so up to 4 per printf). */
static inline const char *clean_str(const char *s, size_t max)
{
	char *b = next_buf();
	size_t i;
	for (i = 0; i < max && i < STR_MAX - 1 && s[i]; i++)
		b[i] = ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) ? '_' : s[i];
	b[i] = 0;
	return b;
}
#define STR(field) clean_str((field), sizeof(field))

/* "IP:PORT" for an address in network byte order: ipver 4 (4 bytes) or 6 (16 bytes, printed as
 * "[addr]:port"). The family is passed as 4/6 rather than AF_* because WASI numbers AF_* differently. */
static inline const char *ip_port_str(int ipver, const void *addr, unsigned port)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	char *b = next_buf();
	if (ipver == 6) {
		inet_ntop(AF_INET6, addr, ip, sizeof(ip));
		snprintf(b, STR_MAX, "[%s]:%u", ip, port);
	} else {
		const unsigned char *a = (const unsigned char *)addr;
		snprintf(b, STR_MAX, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], port);
	}
	return b;
}

/* The address alone: "a.b.c.d" (ipver 4) or the IPv6 text form (ipver 6). */
static inline const char *ip_str(int ipver, const void *addr)
{
	char *b = next_buf();
	if (ipver == 6) {
		if (!inet_ntop(AF_INET6, addr, b, STR_MAX))
			snprintf(b, STR_MAX, "?");
	} else {
		const unsigned char *a = (const unsigned char *)addr;
		snprintf(b, STR_MAX, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
	}
	return b;
}

/* Name of an IP protocol number: TCP, UDP, ICMP, ICMPv6, or the number. */
static inline const char *ip_proto_str(unsigned proto)
{
	char *b;
	switch (proto) {
	case 1: return "ICMP";
	case 6: return "TCP";
	case 17: return "UDP";
	case 58: return "ICMPv6";
	default:
		b = next_buf();
		snprintf(b, STR_MAX, "%u", proto);
		return b;
	}
}

#endif /* MATRIX_COMMON_H */

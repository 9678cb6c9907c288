/* json.h: the machine format of every app (`-j`): one JSON object per line, the same bytes from
 * the Wasm guest and the native twin. Every object starts with "event" (its kind); numbers are
 * numbers; in strings '"' and '\\' are escaped, control bytes and 0x7f are \u00XX, other bytes pass as
 * they are (as bpftool's JSON writer does: a UTF-8 name stays readable).
 *
 *   json_begin("exec"); json_int("pid", pid); JSON_FIELD("comm", e->comm); json_end();
 */
#ifndef MATRIX_JSON_H
#define MATRIX_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Set by `-j`: print JSON lines instead of the human layout. */
static bool json_out;

static inline void json_begin(const char *event)
{
	printf("{\"event\":\"%s\"", event);
}

/* A string of at most max bytes (stops at NUL), escaped. */
static inline void json_str(const char *key, const char *s, size_t max)
{
	printf(",\"%s\":\"", key);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}
#define JSON_FIELD(key, field) json_str((key), (field), sizeof(field))

static inline void json_int(const char *key, long long v)
{
	printf(",\"%s\":%lld", key, v);
}

static inline void json_uint(const char *key, unsigned long long v)
{
	printf(",\"%s\":%llu", key, v);
}

/* An array of n unsigned numbers. */
static inline void json_uints(const char *key, const unsigned *v, int n)
{
	printf(",\"%s\":[", key);
	for (int i = 0; i < n; i++)
		printf(i ? ",%u" : "%u", v[i]);
	putchar(']');
}

static inline void json_end(void)
{
	printf("}\n");
	fflush(stdout);
}

#endif /* MATRIX_JSON_H */

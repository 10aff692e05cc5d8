/*
 * pathmap.c - see pathmap.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "pathmap.h"

#define RECORDS_OPEN "records["

/* Parses "J]" at p: returns the length consumed and sets *j, or 0. */
static size_t
parse_index(const char *p, uint64_t *j)
{
	size_t   k = 0;
	uint64_t v = 0;

	while (p[k] >= '0' && p[k] <= '9') {
		if (v > (UINT64_MAX - 9) / 10) {
			return (0);
		}
		v = v * 10 + (uint64_t) (p[k++] - '0');
	}
	if (k == 0 || p[k] != ']') {
		return (0);
	}
	*j = v;
	return (k + 1);
}

/* Appends n bytes of s to out at *o, keeping room for the NUL. */
static void
put(char *out, size_t outsz, size_t *o, const char *s, size_t n)
{
	if (*o + 1 >= outsz) {
		return;
	}
	if (n > outsz - 1 - *o) {
		n = outsz - 1 - *o;
	}
	memcpy(out + *o, s, n);
	*o += n;
}

void
pathmap_records(const char *in, const uint64_t *src, size_t n, char *out, size_t outsz)
{
	const size_t plen = strlen(RECORDS_OPEN);
	char         num[48];
	size_t       o = 0, used;
	uint64_t     j;

	if (outsz == 0) {
		return;
	}
	while (*in != '\0') {
		if (strncmp(in, RECORDS_OPEN, plen) == 0 &&
		    (used = parse_index(in + plen, &j)) != 0 && j < n) {
			snprintf(num, sizeof(num), "cost_data[%" PRIu64 "]", src[j]);
			put(out, outsz, &o, num, strlen(num));
			in += plen + used;
		} else {
			put(out, outsz, &o, in, 1);
			in++;
		}
	}
	out[o] = '\0';
}

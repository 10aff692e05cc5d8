/*
 * fuzz_export.c - bytes -> hx_export_parse(), then the invariants that must
 * hold for any input whatever (contract section 4, include/heliox/export.h):
 *
 *  - b.len <= b.received, and every record offered is either in the batch or
 *    named by a violation, never both, never neither;
 *  - each record is normalised: a real calendar date; provider and gpu_type
 *    non-empty, at most 64 bytes, trimmed, valid UTF-8, no ASCII upper case,
 *    no control characters; no two records share a key;
 *  - 0 < cost < 10^12 USD, and hx_money_format() of it parses back the same;
 *  - violations.len <= violations.total, and status is HX_OK iff total == 0.
 *
 * A broken invariant abort()s, so libFuzzer keeps the input.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "heliox/export.h"
#include "heliox/money.h"
#include "heliox/record.h"

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], cp, min;
		size_t   k;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

/* provider / gpu_type as stored: NUL inside the array, non-empty, trimmed,
 * lower case, no control characters, valid UTF-8. */
static void
check_name(const char *s)
{
	size_t n = strnlen(s, HX_NAME_MAX + 1);

	HX_FUZZ_CHECK(n > 0 && n <= HX_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];

		HX_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
		HX_FUZZ_CHECK(c >= 0x20 && c != 0x7F);
	}
	HX_FUZZ_CHECK(s[0] != ' ' && s[n - 1] != ' ');
	HX_FUZZ_CHECK(utf8_valid((const unsigned char *) s, n));
}

/* YYYY-MM-DD, a real Gregorian date from year 1 (PostgreSQL has no year 0). */
static void
check_date(const char *d)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int              y, m, day;

	HX_FUZZ_CHECK(strnlen(d, HX_DATE_LEN + 1) == HX_DATE_LEN);
	for (int i = 0; i < HX_DATE_LEN; i++) {
		if (i == 4 || i == 7)
			HX_FUZZ_CHECK(d[i] == '-');
		else
			HX_FUZZ_CHECK(d[i] >= '0' && d[i] <= '9');
	}
	y = atoi(d), m = atoi(d + 5), day = atoi(d + 8);
	HX_FUZZ_CHECK(y >= 1 && m >= 1 && m <= 12 && day >= 1 && day <= mdays[m - 1]);
	if (m == 2 && day == 29)
		HX_FUZZ_CHECK(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

static void
check_cost(hx_micros cost)
{
	char      buf[HX_MONEY_TEXT_MAX];
	hx_micros back = 0;
	size_t    n;

	HX_FUZZ_CHECK(cost > 0 && cost < HX_MONEY_LIMIT_MICROS);
	n = hx_money_format(cost, buf);
	HX_FUZZ_CHECK(n < HX_MONEY_TEXT_MAX && strlen(buf) == n);
	HX_FUZZ_CHECK(hx_money_parse(buf, n, &back) == HX_MONEY_OK);
	HX_FUZZ_CHECK(back == cost);
}

static int
key_cmp(const void *a, const void *b)
{
	const hx_record *x = *(const hx_record *const *) a, *y = *(const hx_record *const *) b;
	int              c = strcmp(x->date, y->date);

	if (c == 0)
		c = strcmp(x->provider, y->provider);
	if (c == 0)
		c = strcmp(x->gpu_type, y->gpu_type);
	return c;
}

/* No two records in the batch share (date, provider, gpu_type). */
static void
check_unique(const hx_batch *b)
{
	const hx_record **p;

	if (b->len < 2)
		return;
	p = malloc(b->len * sizeof *p);
	if (p == NULL)
		return;
	for (size_t i = 0; i < b->len; i++)
		p[i] = &b->recs[i];
	qsort(p, b->len, sizeof *p, key_cmp);
	for (size_t i = 1; i < b->len; i++)
		HX_FUZZ_CHECK(key_cmp(&p[i - 1], &p[i]) != 0);
	free(p);
}

/*
 * When no violation was dropped by the limit: each index below b.received is
 * either stored (b.src) or named by a "cost_data[N]..." violation, not both.
 */
static void
check_accounted(const hx_batch *b, const hx_violations *v)
{
	unsigned char *seen; /* bit 1: stored, bit 2: reported */

	if (v->total != v->len || b->received == 0)
		return;
	seen = calloc(b->received, 1);
	if (seen == NULL)
		return;
	for (size_t i = 0; i < b->len; i++) {
		HX_FUZZ_CHECK(b->src[i] < b->received);
		HX_FUZZ_CHECK(i == 0 || b->src[i] > b->src[i - 1]);
		seen[b->src[i]] |= 1;
	}
	for (size_t i = 0; i < v->len; i++) {
		const char   *f = v->items[i].field;
		char         *end;
		unsigned long idx;

		if (strncmp(f, "cost_data[", 10) != 0)
			continue;
		idx = strtoul(f + 10, &end, 10);
		HX_FUZZ_CHECK(*end == ']' && idx < b->received);
		seen[idx] |= 2;
	}
	for (size_t i = 0; i < b->received; i++)
		HX_FUZZ_CHECK(seen[i] == 1 || seen[i] == 2);
	free(seen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hx_batch      b;
	hx_violations v;
	hx_status     st;

	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	st = hx_export_parse((const char *) data, size, &b, &v);

	if (st != HX_RESOURCE_EXHAUSTED) { /* out of memory: nothing promised */
		HX_FUZZ_CHECK(st == HX_OK || st == HX_INVALID_ARGUMENT);
		HX_FUZZ_CHECK((st == HX_OK) == (v.total == 0));
		HX_FUZZ_CHECK(b.len <= b.received);
		HX_FUZZ_CHECK(v.len <= v.total && v.len <= v.limit);
		for (size_t i = 0; i < v.len; i++) {
			size_t fl = strnlen(v.items[i].field, HX_FIELD_MAX);
			size_t dl = strnlen(v.items[i].description, HX_DESC_MAX);

			HX_FUZZ_CHECK(fl > 0 && fl < HX_FIELD_MAX);
			HX_FUZZ_CHECK(dl > 0 && dl < HX_DESC_MAX);
		}
		for (size_t i = 0; i < b.len; i++) {
			check_date(b.recs[i].date);
			check_name(b.recs[i].provider);
			check_name(b.recs[i].gpu_type);
			check_cost(b.recs[i].cost);
		}
		check_unique(&b);
		check_accounted(&b, &v);
	}
	hx_batch_free(&b);
	hx_violations_free(&v);
	return 0;
}

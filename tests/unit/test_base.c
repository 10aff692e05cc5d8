/*
 * test_base.c - the primitives of src/base: clock, calendar dates (checked
 * against timegm over every day of 1600-2400), UUIDs, trim and lower-case,
 * counts, err formatting, FNV-1a and fmix64 (published test vectors), the
 * unpack arena and the spare block.
 */
#define _GNU_SOURCE /* timegm */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/errf.h"
#include "base/hash.h"
#include "base/spare.h"
#include "base/text.h"
#include "base/uuid.h"

static void
test_clock_monotonic(void **state)
{
	uint64_t        a = hx_clock_us();
	struct timespec pause = { 0, 2000000 }; /* 2 ms */
	uint64_t        b;

	nanosleep(&pause, NULL);
	b = hx_clock_us();
	assert_true(b >= a + 2000);
	assert_true(b - a < 10u * 1000000u); /* microseconds, not nanoseconds */
}

static void
test_date_cases(void **state)
{
	static const struct {
		const char *s;
		bool        ok;
		int32_t     days;
	} cases[] = {
		{ "1970-01-01", true, 0 },
		{ "2000-01-01", true, HX_DATE_PG_EPOCH_DAYS },
		{ "2026-03-01", true, 20513 },
		{ "0001-01-01", true, -719162 },
		{ "9999-12-31", true, 2932896 },
		{ "2024-02-29", true, 19782 },
		{ "2000-02-29", true, 11016 },
		{ "2023-02-29", false, 0 },
		{ "1900-02-29", false, 0 },
		{ "2026-04-31", false, 0 },
		{ "2026-13-01", false, 0 },
		{ "2026-00-10", false, 0 },
		{ "2026-01-00", false, 0 },
		{ "0000-01-01", false, 0 },
		{ "2026-1-01", false, 0 },
		{ "2026/01/01", false, 0 },
		{ "2026-01-0a", false, 0 },
		{ "+026-01-01", false, 0 },
		{ "", false, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int32_t days = -1;
		bool    ok = hx_date_parse(cases[i].s, strlen(cases[i].s), &days);
		if (ok != cases[i].ok || (ok && days != cases[i].days)) {
			fail_msg("%s: ok=%d days=%d, want ok=%d days=%d", cases[i].s, ok, days,
			         cases[i].ok, cases[i].days);
		}
	}
	/* len counts, not the NUL; NULL days is allowed. */
	assert_false(hx_date_parse("2026-03-011", 11, NULL));
	assert_true(hx_date_parse("2026-03-011", 10, NULL));
	assert_false(hx_date_parse(NULL, 10, NULL));

	/* The ends of the range and the epochs, formatted back. */
	char out[HX_DATE_TEXT];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].ok) {
			hx_date_format(cases[i].days, out);
			assert_string_equal(out, cases[i].s);
		}
	}
}

/* Every day of 1600-2400 (leap rules at 1700, 1800, 2000, 2100...): the
 * check agrees with the C library, and the day before the 1st is invalid
 * exactly when it should be. */
static void
test_date_against_timegm(void **state)
{
	struct tm tm = { .tm_year = 1600 - 1900, .tm_mon = 0, .tm_mday = 1, .tm_hour = 12 };
	time_t    t = timegm(&tm);
	char      buf[64];
	size_t    n = 0;

	for (; tm.tm_year < 2400 - 1900; t += 86400, n++) {
		int32_t days;
		gmtime_r(&t, &tm);
		snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		         tm.tm_mday);
		assert_true(hx_date_parse(buf, 10, &days));
		assert_int_equal(days, (int32_t) ((t - 43200) / 86400));
		/* and back: hx_date_format is its inverse */
		char back[HX_DATE_TEXT];
		hx_date_format(days, back);
		assert_string_equal(back, buf);
		if (tm.tm_mday >= 28) {
			snprintf(buf, sizeof(buf), "%04d-%02d-%02d", tm.tm_year + 1900,
			         tm.tm_mon + 1, tm.tm_mday + 1);
			struct tm next;
			time_t    tn = t + 86400;
			gmtime_r(&tn, &next);
			assert_int_equal(hx_date_parse(buf, 10, NULL), next.tm_mday != 1);
		}
	}
	assert_true(n > 290000);
}

static void
test_uuid4(void **state)
{
	char a[HX_UUID_TEXT], b[HX_UUID_TEXT];

	hx_uuid4(a);
	hx_uuid4(b);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			assert_int_equal(a[i], '-');
		} else {
			assert_non_null(strchr("0123456789abcdef", a[i]));
		}
	}
	assert_int_equal(a[14], '4');           /* version 4 */
	assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
}

static void
test_text(void **state)
{
	const char *s = " \t\r\n AWS  us-east \n";
	size_t      len = strlen(s);
	char        buf[] = "NVIDIA H100 Ünïcode";

	hx_text_trim(&s, &len);
	assert_int_equal(len, 12);
	assert_memory_equal(s, "AWS  us-east", 12);

	s = " \t ";
	len = 3;
	hx_text_trim(&s, &len);
	assert_int_equal(len, 0);
	assert_false(hx_text_is_space('\v')); /* only the four the contract names */

	hx_text_lower(buf, 8); /* the length is respected */
	assert_string_equal(buf, "nvidia h100 Ünïcode");
	hx_text_lower(buf, strlen(buf));
	assert_string_equal(buf, "nvidia h100 Ünïcode"); /* bytes above 0x7f untouched */
}

static void
test_text_count(void **state)
{
	static const char *const bad[] = {
		"", " 12", "12 ", "+12", "-1", "12abc", "0x10", "0", "50001", "18446744073709551616"
	};
	unsigned long long v = 7;

	assert_int_equal(hx_text_count("1", 1, 50000, &v), 0);
	assert_true(v == 1);
	assert_int_equal(hx_text_count("50000", 1, 50000, &v), 0);
	assert_true(v == 50000);
	assert_int_equal(hx_text_count("007", 1, 50000, &v), 0); /* as strtoul reads it */
	assert_true(v == 7);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 99;
		if (hx_text_count(bad[i], 1, 50000, &v) != -1 || v != 99) {
			fail_msg("'%s' was taken as %llu", bad[i], v);
		}
	}
	/* The whole range of the type, and a zero minimum. */
	assert_int_equal(hx_text_count("18446744073709551615", 0, ~0ULL, &v), 0);
	assert_true(v == ~0ULL);
	assert_int_equal(hx_text_count("18446744073709551616", 0, ~0ULL, &v), -1);
	assert_int_equal(hx_text_count("0", 0, 0, &v), 0);
	assert_true(v == 0);
	assert_int_equal(hx_text_count("1", 0, 0, &v), -1);
	assert_int_equal(hx_text_count(NULL, 0, 10, &v), -1);
}

static void
test_errf(void **state)
{
	char err[8];

	hx_errf(err, sizeof(err), "%s=%d", "abc", 12345);
	assert_string_equal(err, "abc=123"); /* truncated and terminated */
	hx_errf(NULL, 10, "%d", 1);
	memcpy(err, "keep", 5);
	hx_errf(err, 0, "%d", 1);
	assert_string_equal(err, "keep");

	char line[64];
	hx_errf_line(line, sizeof(line), "ERROR:  %s\n\tDETAIL: %s\n", "bad", "x");
	assert_string_equal(line, "ERROR:  bad  DETAIL: x");
}

static void
test_hash_vectors(void **state)
{
	/* FNV-1a 64 vectors from the FNV reference (draft-eastlake-fnv). */
	assert_true(hx_fnv1a(HX_FNV1A_OFFSET, "", 0) == 0xcbf29ce484222325ULL);
	assert_true(hx_fnv1a(HX_FNV1A_OFFSET, "a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(hx_fnv1a(HX_FNV1A_OFFSET, "foobar", 6) == 0x85944171f73967e8ULL);
	/* Continuing is the same as hashing the concatenation. */
	assert_true(hx_fnv1a(hx_fnv1a(HX_FNV1A_OFFSET, "foo", 3), "bar", 3) ==
	            0x85944171f73967e8ULL);
	assert_true(hx_mix64(0) == 0);
	assert_true(hx_mix64(1) == 0xb456bcfc34c2cb2cULL);
	/* A record key as the CLI's key set hashes it: fields with their NULs. */
	assert_true(hx_mix64(hx_fnv1a(HX_FNV1A_OFFSET, "2026-03-01\0aws\0a100", 20)) ==
	            0x446a16372e50730fULL);
}

/* Every piece is aligned, writable for its whole length and apart from
 * every other, across block boundaries and for a piece larger than any
 * block the doubling would give. */
static void
test_arena_pieces(void **state)
{
	enum { N = 600 };
	static const size_t sizes[] = { 0, 1, 7, 16, 33, 100, 1000, 5000 };
	unsigned char      *p[N];
	size_t              len[N];
	hx_arena            a;

	(void) state;
	hx_arena_init(&a, 256, NULL);
	for (int round = 0; round < 2; round++) { /* the second after a free */
		for (size_t i = 0; i < N; i++) {
			len[i] = i == N - 1 ? 1u << 20 : sizes[i % 8];
			p[i] = hx_arena_alloc(&a, len[i]);
			assert_non_null(p[i]);
			assert_int_equal((uintptr_t) p[i] % alignof(max_align_t), 0);
			memset(p[i], (int) (i & 0xff), len[i]);
		}
		for (size_t i = 0; i < N; i++)
			for (size_t k = 0; k < len[i]; k++)
				assert_int_equal(p[i][k], i & 0xff);
		hx_arena_free(&a, round);
	}
	/* A size no block can have fails cleanly, and the arena still works. */
	assert_null(hx_arena_alloc(&a, SIZE_MAX));
	assert_null(hx_arena_alloc(&a, SIZE_MAX - 8));
	assert_non_null(hx_arena_alloc(&a, 8));
	hx_arena_free(&a, 0);
	hx_arena_free(&a, 0); /* freeing an empty arena is a no-op */
}

/* A first size from a huge message is capped, a piece larger than any
 * block gets one of its own size, and blocks stop doubling at the cap. */
static void
test_arena_block_cap(void **state)
{
	const size_t mib = (size_t) 1 << 20;
	hx_arena     a;
	size_t       before;

	(void) state;
	hx_arena_init(&a, 80 * mib, NULL);
	assert_int_equal(hx_arena_reserved(&a), 0); /* nothing until first use */
	assert_non_null(hx_arena_alloc(&a, 8));
	if (HX_SPARE_KEEPS)
		assert_int_equal(hx_arena_reserved(&a), HX_ARENA_BLOCK_MAX);
	before = hx_arena_reserved(&a);
	assert_non_null(hx_arena_alloc(&a, 6 * mib));
	assert_int_equal(hx_arena_reserved(&a), before + 6 * mib);
	for (int i = 0; i < 20; i++)
		assert_non_null(hx_arena_alloc(&a, mib / 2));
	/* 10 MiB asked in halves: at most one block's tail is unused. */
	assert_true(hx_arena_reserved(&a) <= before + 6 * mib + 10 * mib + HX_ARENA_BLOCK_MAX);
	hx_arena_free(&a, 0);
	assert_int_equal(hx_arena_reserved(&a), 0);
}

static void
test_spare(void **state)
{
	hx_spare s = HX_SPARE_INIT;
	char    *a, *b, *c;

	(void) state;
	hx_spare_free(&s, NULL);
	a = hx_spare_alloc(&s, 4096);
	assert_non_null(a);
	memset(a, 1, 4096);
	hx_spare_free(&s, a);
	b = hx_spare_alloc(&s, 1000); /* fits the kept block */
	if (HX_SPARE_KEEPS)
		assert_ptr_equal(a, b);
	c = hx_spare_alloc(&s, 100); /* the slot is empty while b is out */
	assert_non_null(c);
	assert_ptr_not_equal(b, c);
	memset(c, 2, 100);
	hx_spare_free(&s, b);
	hx_spare_free(&s, c); /* the larger, b, is the one kept */
	a = hx_spare_alloc(&s, 4096);
	if (HX_SPARE_KEEPS)
		assert_ptr_equal(a, b);
	memset(a, 3, 4096);
	hx_spare_free(&s, a);
	b = hx_spare_alloc(&s, 8192); /* the kept one is too small: a new one */
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	memset(b, 4, 8192);
	hx_spare_free(&s, b); /* the larger again: b stays, a goes */
	/* A block over HX_SPARE_MAX is neither kept nor costs the kept one. */
	a = hx_spare_alloc(&s, HX_SPARE_MAX + 1);
	assert_non_null(a);
	hx_spare_free(&s, a);
	a = hx_spare_alloc(&s, 16);
	if (HX_SPARE_KEEPS)
		assert_ptr_equal(a, b);
	hx_spare_free(&s, a);
	assert_null(hx_spare_alloc(&s, SIZE_MAX));
	hx_spare_drain(&s);
	hx_spare_drain(&s);
}

/* An arena with a spare gives its first block back, and the next arena
 * starts from it: the same address, and no byte of the last use is
 * readable through a wiped free. */
static void
test_arena_spare(void **state)
{
	hx_spare       s = HX_SPARE_INIT;
	hx_arena       a;
	unsigned char *p, *q;

	(void) state;
	hx_arena_init(&a, 4096, &s);
	p = hx_arena_alloc(&a, 64);
	assert_non_null(p);
	memset(p, 0xab, 64);
	assert_non_null(hx_arena_alloc(&a, 10000)); /* a second block, malloc's */
	hx_arena_free(&a, 1);
	hx_arena_init(&a, 4096, &s);
	q = hx_arena_alloc(&a, 64);
	assert_non_null(q);
	if (HX_SPARE_KEEPS) {
		assert_ptr_equal(p, q);
		for (int k = 0; k < 64; k++)
			assert_int_equal(q[k], 0);
	}
	hx_arena_free(&a, 0);
	hx_spare_drain(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock_monotonic),
		cmocka_unit_test(test_date_cases),
		cmocka_unit_test(test_date_against_timegm),
		cmocka_unit_test(test_uuid4),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_count),
		cmocka_unit_test(test_errf),
		cmocka_unit_test(test_hash_vectors),
		cmocka_unit_test(test_arena_pieces),
		cmocka_unit_test(test_arena_block_cap),
		cmocka_unit_test(test_spare),
		cmocka_unit_test(test_arena_spare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

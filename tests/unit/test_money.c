/*
 * test_money.c - exact money: parsing, formatting, doubles back to text, and
 * normalising Postgres numeric output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heliox/money.h"

struct parse_case {
	const char  *text;
	hx_money_err err;
	hx_micros    micros;
};

static const struct parse_case parse_cases[] = {
	{ "0", HX_MONEY_OK, 0 },
	{ "-0", HX_MONEY_OK, 0 },
	{ "0.000001", HX_MONEY_OK, 1 },
	{ "1245.67", HX_MONEY_OK, 1245670000 },
	{ "999999999999.999999", HX_MONEY_OK, 999999999999999999LL },
	{ "-999999999999.999999", HX_MONEY_OK, -999999999999999999LL },
	{ "1000000000000", HX_MONEY_TOO_LARGE, 0 },
	{ "1000000000000.000000", HX_MONEY_TOO_LARGE, 0 },
	{ "-1000000000000", HX_MONEY_TOO_LARGE, 0 },
	{ "+1", HX_MONEY_OK, 1000000 },
	{ "-1", HX_MONEY_OK, -1000000 },
	{ "1.50000000", HX_MONEY_OK, 1500000 },
	{ "1.123456000000000000000", HX_MONEY_OK, 1123456 },
	{ "0000000000000000000000000012.5", HX_MONEY_OK, 12500000 },
	{ "1.1234567", HX_MONEY_TOO_PRECISE, 0 },
	{ "0.0000001", HX_MONEY_TOO_PRECISE, 0 },
	{ "1.", HX_MONEY_SYNTAX, 0 },
	{ ".5", HX_MONEY_SYNTAX, 0 },
	{ "1e3", HX_MONEY_SYNTAX, 0 },
	{ " 1", HX_MONEY_SYNTAX, 0 },
	{ "1 ", HX_MONEY_SYNTAX, 0 },
	{ "-", HX_MONEY_SYNTAX, 0 },
	{ "+", HX_MONEY_SYNTAX, 0 },
	{ "+-1", HX_MONEY_SYNTAX, 0 },
	{ "1.2.3", HX_MONEY_SYNTAX, 0 },
	{ "12,5", HX_MONEY_SYNTAX, 0 },
	{ "0x10", HX_MONEY_SYNTAX, 0 },
	{ "NaN", HX_MONEY_SYNTAX, 0 },
	{ "\xd9\xa1", HX_MONEY_SYNTAX, 0 }, /* ARABIC-INDIC DIGIT ONE */
	{ "", HX_MONEY_EMPTY, 0 },
};

static void
test_parse_table(void **state)
{
	size_t i;

	(void) state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		hx_micros                v = -42;
		hx_money_err             err = hx_money_parse(c->text, strlen(c->text), &v);

		if (err != c->err) {
			fail_msg("\"%s\": err %d, want %d", c->text, (int) err, (int) c->err);
		}
		if (err == HX_MONEY_OK) {
			assert_int_equal(v, c->micros);
		} else {
			assert_int_equal(v, -42); /* untouched on error */
		}
	}
}

/* Thousands of digits must neither overflow nor be accepted. */
static void
test_parse_long_text(void **state)
{
	char      buf[2000];
	hx_micros v;

	(void) state;
	memset(buf, '9', sizeof(buf));
	assert_int_equal(hx_money_parse(buf, sizeof(buf), &v), HX_MONEY_TOO_LARGE);
	buf[0] = '0';
	buf[1] = '.';
	assert_int_equal(hx_money_parse(buf, sizeof(buf), &v), HX_MONEY_TOO_PRECISE);
	memset(buf, '0', sizeof(buf));
	buf[sizeof(buf) - 1] = '7';
	assert_int_equal(hx_money_parse(buf, sizeof(buf), &v), HX_MONEY_OK);
	assert_int_equal(v, 7000000);
}

static void
test_parse_respects_len(void **state)
{
	hx_micros v;

	(void) state;
	assert_int_equal(hx_money_parse("12345", 2, &v), HX_MONEY_OK);
	assert_int_equal(v, 12000000);
	assert_int_equal(hx_money_parse("1.5e3", 3, &v), HX_MONEY_OK);
	assert_int_equal(v, 1500000);
	assert_int_equal(hx_money_parse("1\0"
	                                "2",
	                                3, &v),
	                 HX_MONEY_SYNTAX);
}

static void
test_strerror(void **state)
{
	(void) state;
	assert_string_equal(hx_money_strerror(HX_MONEY_TOO_PRECISE),
	                    "has more than 6 fractional digits");
	assert_string_equal(hx_money_strerror(HX_MONEY_TOO_LARGE),
	                    "must be less than 1000000000000");
	assert_string_equal(hx_money_strerror(HX_MONEY_SYNTAX),
	                    "must be a decimal number such as \"1245.67\"");
}

static void
check_format(hx_micros v, const char *want)
{
	char   buf[HX_MONEY_TEXT_MAX];
	size_t n = hx_money_format(v, buf);

	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

static void
test_format(void **state)
{
	(void) state;
	check_format(0, "0.00");
	check_format(1, "0.000001");
	check_format(10, "0.00001");
	check_format(-1, "-0.000001");
	check_format(-50000, "-0.05");
	check_format(1245670000, "1245.67");
	check_format(1000000000, "1000.00");
	check_format(1234500000, "1234.50");
	check_format(1234560000, "1234.56");
	check_format(1234567000, "1234.567");
	check_format(999999999999999999LL, "999999999999.999999");
	check_format(INT64_MAX, "9223372036854.775807");
	check_format(INT64_MIN, "-9223372036854.775808");
}

static void
test_format_parse_round_trip(void **state)
{
	static const hx_micros vals[] = { 1,
		                          9,
		                          10,
		                          99,
		                          100,
		                          999999,
		                          1000000,
		                          1000001,
		                          123456789,
		                          -123456789,
		                          999999999999999999LL };
	char                   buf[HX_MONEY_TEXT_MAX];
	hx_micros              v;
	size_t                 i, n;

	(void) state;
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		n = hx_money_format(vals[i], buf);
		assert_int_equal(hx_money_parse(buf, n, &v), HX_MONEY_OK);
		assert_int_equal(v, vals[i]);
	}
}

static void
check_from_double(double d, const char *want)
{
	char buf[HX_MONEY_TEXT_MAX];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(hx_money_from_double(d, buf), 0);
	assert_string_equal(buf, want);
	assert_true(strtod(buf, NULL) == d);
}

static void
check_from_double_fails(double d)
{
	char buf[HX_MONEY_TEXT_MAX];

	memset(buf, 'x', sizeof(buf));
	assert_int_equal(hx_money_from_double(d, buf), -1);
	assert_string_equal(buf, "");
}

static void
test_from_double(void **state)
{
	(void) state;
	check_from_double(1245.67, "1245.67");
	check_from_double(2250.1, "2250.1");
	check_from_double(1e3, "1000");
	check_from_double(5e-7, "0.0000005");
	check_from_double(0.1, "0.1");
	check_from_double(0.1 + 0.2, "0.30000000000000004");
	check_from_double(0.0, "0");
	check_from_double(-2.5, "-2.5");
	check_from_double(123456789012345.0, "123456789012345");
	check_from_double(999999999999.99, "999999999999.99");
	check_from_double(1e20, "100000000000000000000");
	check_from_double(1e-30, "0.000000000000000000000000000001");
	check_from_double(-1.5e-6, "-0.0000015");
	check_from_double_fails(1e21);
	check_from_double_fails(-1e21);
	check_from_double_fails(INFINITY);
	check_from_double_fails(-INFINITY);
	check_from_double_fails(NAN);
	check_from_double_fails(5e-324); /* exact, but 300+ characters long */
}

/* Every daily cost the mock export could hold: XXXX.YY from 1000.00 to
 * 2800.00, written as JSON would write it, read as cJSON reads it. */
static void
test_from_double_cents_grid(void **state)
{
	char      text[32], buf[HX_MONEY_TEXT_MAX];
	hx_micros want, got;
	long      cents;

	(void) state;
	for (cents = 100000; cents <= 280000; cents++) {
		snprintf(text, sizeof(text), "%ld.%02ld", cents / 100, cents % 100);
		assert_int_equal(hx_money_parse(text, strlen(text), &want), HX_MONEY_OK);
		assert_int_equal(hx_money_from_double(strtod(text, NULL), buf), 0);
		if (hx_money_parse(buf, strlen(buf), &got) != HX_MONEY_OK || got != want) {
			fail_msg("%s came back as %s", text, buf);
		}
	}
}

static uint64_t
xorshift64(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A decimal with up to 15 significant digits, up to 6 of them after the
 * point, below 10^12. */
static void
random_decimal(uint64_t *seed, char text[40])
{
	int   ndig = 1 + (int) (xorshift64(seed) % 15);
	int   minscale = ndig > 12 ? ndig - 12 : 0;
	int   scale = minscale + (int) (xorshift64(seed) % (uint64_t) (7 - minscale));
	char  dig[16];
	char *p = text;
	int   k;

	for (k = 0; k < ndig; k++) {
		dig[k] = (char) ('0' + xorshift64(seed) % 10);
	}
	if (scale >= ndig) {
		*p++ = '0';
		*p++ = '.';
		for (k = 0; k < scale - ndig; k++) {
			*p++ = '0';
		}
		memcpy(p, dig, (size_t) ndig);
		p += ndig;
	} else {
		memcpy(p, dig, (size_t) (ndig - scale));
		p += ndig - scale;
		if (scale > 0) {
			*p++ = '.';
			memcpy(p, dig + ndig - scale, (size_t) scale);
			p += scale;
		}
	}
	*p = '\0';
}

/* All such values must survive the trip through a double. */
static void
test_from_double_random(void **state)
{
	uint64_t  seed = 0x9E3779B97F4A7C15ULL;
	char      text[40], buf[HX_MONEY_TEXT_MAX];
	hx_micros want, got;
	int       i;

	(void) state;
	for (i = 0; i < 5000; i++) {
		random_decimal(&seed, text);
		assert_int_equal(hx_money_parse(text, strlen(text), &want), HX_MONEY_OK);
		assert_int_equal(hx_money_from_double(strtod(text, NULL), buf), 0);
		if (hx_money_parse(buf, strlen(buf), &got) != HX_MONEY_OK || got != want) {
			fail_msg("%s came back as %s", text, buf);
		}
	}
}

static void
check_normalize(const char *in, const char *want)
{
	char out[128];

	assert_int_equal(hx_money_normalize_text(in, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_normalize_text(void **state)
{
	char out[9];

	(void) state;
	check_normalize("39123.450000", "39123.45");
	check_normalize("-12", "-12.00");
	check_normalize("0", "0.00");
	check_normalize("0.000000", "0.00");
	check_normalize("-0.000", "0.00");
	check_normalize("1.1", "1.10");
	check_normalize("1.10", "1.10");
	check_normalize("+5", "5.00");
	check_normalize("007.50", "7.50");
	check_normalize("0.000001", "0.000001");
	check_normalize("1234.5678901", "1234.5678901");
	check_normalize("51185.190000", "51185.19");
	/* Sums can pass int64: the text is never turned into a number. */
	check_normalize("123456789012345678901234567890.123000",
	                "123456789012345678901234567890.123");
	assert_int_equal(hx_money_normalize_text("abc", out, sizeof(out)), -1);
	assert_int_equal(hx_money_normalize_text("1.", out, sizeof(out)), -1);
	assert_int_equal(hx_money_normalize_text("", out, sizeof(out)), -1);
	assert_int_equal(hx_money_normalize_text("1e5", out, sizeof(out)), -1);
	assert_int_equal(hx_money_normalize_text(" 1", out, sizeof(out)), -1);
	assert_int_equal(hx_money_normalize_text(NULL, out, sizeof(out)), -1);
	/* "12345.67" needs 9 bytes with its NUL. */
	assert_int_equal(hx_money_normalize_text("12345.67", out, 8), -1);
	assert_int_equal(hx_money_normalize_text("12345.670", out, 9), 0);
	assert_string_equal(out, "12345.67");
}

static void
check_div(const char *num, const char *den, unsigned places, const char *want)
{
	char out[64];

	if (hx_money_div_text(num, den, places, out, sizeof(out)) != 0 || strcmp(out, want) != 0) {
		fail_msg("%s / %s at %u places: \"%s\", want \"%s\"", num, den, places, out, want);
	}
}

static void
test_div_text(void **state)
{
	char out[16];

	(void) state;
	/* The figures the summary tests use, as Postgres writes the sums. */
	check_div("198.320000", "47.500000", 4, "4.1752");
	check_div("211.320000", "53.500000", 4, "3.9499");
	check_div("3.000000", "6.000000", 4, "0.50");
	check_div("1", "3", 4, "0.3333");
	check_div("1", "0.000003", 4, "333333.3333");
	/* Half away from zero, exactly at the half and just below it. */
	check_div("0.00005", "1", 4, "0.0001");
	check_div("0.00004999", "1", 4, "0.00");
	check_div("-0.00005", "1", 4, "-0.0001");
	check_div("-0.00004", "1", 4, "0.00"); /* no "-0.00" */
	check_div("-1", "3", 4, "-0.3333");
	check_div("1", "-8", 2, "-0.13");
	check_div("5", "2", 0, "3.00");
	/* A quotient that a division stopping at 16-20 digits and rounding
	 * again would carry up to 0.1235. */
	check_div("12344999999999999999", "100000000000000000000", 4, "0.1234");
	check_div("0.3703349999999999999", "3", 4, "0.1234");
	/* The widest numbers it takes: 32 digits at the common scale. */
	check_div("99999999999999999999999999.999999", "0.000001", 6,
	          "99999999999999999999999999999999.00");
	assert_int_equal(
	    hx_money_div_text("999999999999999999999999999.999999", "1", 4, out, sizeof(out)), -1);
	/* No quotient for a zero divisor: 1, and out is "". */
	assert_int_equal(hx_money_div_text("5", "0.000", 4, out, sizeof(out)), 1);
	assert_string_equal(out, "");
	assert_int_equal(hx_money_div_text("abc", "1", 4, out, sizeof(out)), -1);
	assert_int_equal(hx_money_div_text("1", "1.", 4, out, sizeof(out)), -1);
	assert_int_equal(hx_money_div_text(NULL, "1", 4, out, sizeof(out)), -1);
	assert_int_equal(hx_money_div_text("1", "3", 7, out, sizeof(out)), -1);
	/* "0.3333" needs 7 bytes with its NUL. */
	assert_int_equal(hx_money_div_text("1", "3", 4, out, 6), -1);
	assert_string_equal(out, "");
	assert_int_equal(hx_money_div_text("1", "3", 4, out, 7), 0);
}

/* Against a second way of doing it, for numbers small enough for 64 bits:
 * truncate, then round up when twice the remainder reaches the divisor. */
static void
test_div_text_random(void **state)
{
	uint64_t seed = 12345;
	char     num[32], den[32], want[64], got[64];

	(void) state;
	for (int i = 0; i < 20000; i++) {
		uint64_t n, d, q, r;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (seed >> 11) % 1000000000000ULL; /* up to 10^6 USD in micros */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		d = 1 + (seed >> 11) % (i % 2 ? 1000ULL : 100000000000ULL);
		snprintf(num, sizeof(num), "%" PRIu64 ".%06" PRIu64, n / 1000000, n % 1000000);
		snprintf(den, sizeof(den), "%" PRIu64 ".%06" PRIu64, d / 1000000, d % 1000000);
		q = n * 10000 / d; /* n * 10^4 < 10^16: no overflow */
		r = n * 10000 % d;
		q += 2 * r >= d;
		snprintf(want, sizeof(want), "%" PRIu64 ".%04" PRIu64, q / 10000, q % 10000);
		if (strlen(want) > 4 && want[strlen(want) - 1] == '0') {
			want[strlen(want) - 1] = '\0';
			if (want[strlen(want) - 1] == '0' && want[strlen(want) - 3] != '.') {
				want[strlen(want) - 1] = '\0';
			}
		}
		assert_int_equal(hx_money_div_text(num, den, 4, got, sizeof(got)), 0);
		if (strcmp(got, want) != 0) {
			fail_msg("%s / %s: %s, want %s", num, den, got, want);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_long_text),
		cmocka_unit_test(test_parse_respects_len),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_from_double),
		cmocka_unit_test(test_from_double_cents_grid),
		cmocka_unit_test(test_from_double_random),
		cmocka_unit_test(test_normalize_text),
		cmocka_unit_test(test_div_text),
		cmocka_unit_test(test_div_text_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_validate.c - field rules, violation paths and wording, the duplicate
 * key table, and the status / group-by names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "heliox/heliox.h"
#include "heliox/batch.h"
#include "heliox/record.h"
#include "heliox/summary.h"

#define MSG_DATE "must be a real calendar date YYYY-MM-DD"

static hx_raw_value
str(const char *s)
{
	hx_raw_value v = { HX_RAW_STRING, s, strlen(s) };

	return v;
}

static hx_raw_value
strn(const char *s, size_t len)
{
	hx_raw_value v = { HX_RAW_STRING, s, len };

	return v;
}

static hx_raw_value
num(const char *s)
{
	hx_raw_value v = { HX_RAW_NUMBER, s, strlen(s) };

	return v;
}

static hx_raw_value
kind(hx_raw_kind k)
{
	hx_raw_value v = { k, NULL, 0 };

	return v;
}

/* ---- dates ---------------------------------------------------------- */

static void
date_ok(const char *in, const char *want)
{
	char         out[HX_DATE_LEN + 1];
	hx_raw_value v = str(in);
	const char  *why = hx_check_date(&v, out);

	if (why != NULL) {
		fail_msg("\"%s\": %s", in, why);
	}
	assert_string_equal(out, want);
}

static void
date_bad(hx_raw_value v, const char *want)
{
	char        out[HX_DATE_LEN + 1];
	const char *why = hx_check_date(&v, out);

	assert_non_null(why);
	assert_string_equal(why, want);
}

static void
test_dates(void **state)
{
	(void) state;
	date_ok("2026-01-01", "2026-01-01");
	date_ok("2024-02-29", "2024-02-29");
	date_ok("2000-02-29", "2000-02-29");
	date_ok("0001-01-01", "0001-01-01");
	date_ok("9999-12-31", "9999-12-31");
	date_ok(" \t2024-12-31\r\n", "2024-12-31");
	date_bad(str("2023-02-29"), MSG_DATE);
	date_bad(str("1900-02-29"), MSG_DATE);
	date_bad(str("2024-02-30"), MSG_DATE);
	date_bad(str("2024-04-31"), MSG_DATE);
	date_bad(str("2024-13-01"), MSG_DATE);
	date_bad(str("2024-00-10"), MSG_DATE);
	date_bad(str("2024-01-00"), MSG_DATE);
	date_bad(str("0000-01-01"), MSG_DATE);
	date_bad(str("2024-1-01"), MSG_DATE);
	date_bad(str("2024/01/01"), MSG_DATE);
	date_bad(str("2024-01-01T00:00:00Z"), MSG_DATE);
	date_bad(str("+024-01-01"), MSG_DATE);
	date_bad(str("2024-01-0a"), MSG_DATE);
	date_bad(str(""), MSG_DATE);
	date_bad(str("\v2024-01-01"), MSG_DATE);
	date_bad(strn("2024-01-01\0", 11), MSG_DATE);
	date_bad(num("20240101"), "must be a string");
	date_bad(kind(HX_RAW_OTHER), "must be a string");
	date_bad(kind(HX_RAW_MISSING), "is required");
	date_bad(kind(HX_RAW_NULL), "is required");
}

/* ---- names ---------------------------------------------------------- */

static void
name_ok(hx_raw_value v, const char *want)
{
	char        out[HX_NAME_MAX + 1];
	const char *why = hx_check_name(&v, out);

	if (why != NULL) {
		fail_msg("\"%.*s\": %s", (int) v.len, v.s, why);
	}
	assert_string_equal(out, want);
}

static void
name_bad(hx_raw_value v, const char *want)
{
	char        out[HX_NAME_MAX + 1];
	const char *why = hx_check_name(&v, out);

	if (why == NULL || strcmp(why, want) != 0) {
		fail_msg("\"%.*s\": got %s, want %s", (int) v.len, v.s ? v.s : "", why ? why : "OK",
		         want);
	}
}

static void
test_names_normalised(void **state)
{
	(void) state;
	name_ok(str("AWS"), "aws");
	name_ok(str(" \t AWS\r\n"), "aws");
	name_ok(str("NVIDIA H100 SXM"), "nvidia h100 sxm");
	/* Only ASCII letters are lower-cased: Ü (C3 9C) and Ï (C3 8F) stay. */
	name_ok(str("\xc3\x9cN\xc3\x8f-GPU"), "\xc3\x9cn\xc3\x8f-gpu");
	name_ok(str("caf\xc3\xa9"), "caf\xc3\xa9");
	name_ok(str("\xe2\x82\xac"), "\xe2\x82\xac");         /* U+20AC */
	name_ok(str("\xf0\x9f\x9a\x80"), "\xf0\x9f\x9a\x80"); /* U+1F680 */
	name_ok(str("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
	name_ok(str("\xc2\xa0x"), "\xc2\xa0x");               /* NBSP is not C1 */
	name_ok(strn("AWSxxx", 3), "aws");
}

static void
test_names_utf8(void **state)
{
	(void) state;
	name_bad(str("\xc0\x80"), "is not valid UTF-8");         /* overlong NUL */
	name_bad(str("\xc1\xbf"), "is not valid UTF-8");         /* overlong */
	name_bad(str("\xe0\x80\xaf"), "is not valid UTF-8");     /* overlong '/' */
	name_bad(str("\xf0\x80\x80\xaf"), "is not valid UTF-8"); /* overlong '/' */
	name_bad(str("\xed\xa0\x80"), "is not valid UTF-8");     /* U+D800 */
	name_bad(str("\xed\xbf\xbf"), "is not valid UTF-8");     /* U+DFFF */
	name_bad(str("\xf4\x90\x80\x80"), "is not valid UTF-8"); /* U+110000 */
	name_bad(str("a\xe2\x82"), "is not valid UTF-8");        /* truncated */
	name_bad(str("\xe2\x82x"), "is not valid UTF-8");        /* bad continuation */
	name_bad(str("\x80"), "is not valid UTF-8");             /* lone continuation */
	name_bad(str("\xff"), "is not valid UTF-8");
	name_bad(str("\xf8\x88\x80\x80\x80"), "is not valid UTF-8");
	/* Truncated by the length, not by the text. */
	name_bad(strn("\xe2\x82\xac", 2), "is not valid UTF-8");
}

static void
test_names_control(void **state)
{
	(void) state;
	name_bad(str("a\x01z"), "contains a control character");
	name_bad(str("a\tz"), "contains a control character");  /* inside: not trimmed */
	name_bad(str("\vaws"), "contains a control character"); /* VT is not trimmed */
	name_bad(str("aws\x7f"), "contains a control character");
	name_bad(str("a\xc2\x80z"), "contains a control character"); /* U+0080 */
	name_bad(str("a\xc2\x85z"), "contains a control character"); /* NEL */
	name_bad(str("a\xc2\x9fz"), "contains a control character"); /* U+009F */
	name_bad(strn("a\0z", 3), "contains a control character");
}

static void
test_names_length_and_kind(void **state)
{
	char b64[65], b65[66], padded[80];

	(void) state;
	memset(b64, 'G', 64);
	b64[64] = '\0';
	memset(b65, 'G', 65);
	b65[65] = '\0';
	snprintf(padded, sizeof(padded), "  %s \n", b64);
	name_ok(str(b64), "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg");
	name_ok(str(padded), "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg");
	name_bad(str(b65), "is longer than 64 bytes");
	name_bad(str(""), "must not be empty");
	name_bad(str(" \t\r\n "), "must not be empty");
	name_bad(num("12"), "must be a string");
	name_bad(kind(HX_RAW_OTHER), "must be a string");
	name_bad(kind(HX_RAW_MISSING), "is required");
	name_bad(kind(HX_RAW_NULL), "is required");
}

/* ---- costs ---------------------------------------------------------- */

static void
cost_ok(hx_raw_value v, hx_micros want)
{
	hx_micros   got = -1;
	const char *why = hx_check_cost(&v, &got);

	if (why != NULL) {
		fail_msg("\"%.*s\": %s", (int) v.len, v.s, why);
	}
	assert_int_equal(got, want);
}

static void
cost_bad(hx_raw_value v, const char *want)
{
	hx_micros   got = -1;
	const char *why = hx_check_cost(&v, &got);

	if (why == NULL || strcmp(why, want) != 0) {
		fail_msg("\"%.*s\": got %s, want %s", (int) v.len, v.s ? v.s : "", why ? why : "OK",
		         want);
	}
	assert_int_equal(got, -1);
}

static void
test_costs(void **state)
{
	const char *syntax = "must be a decimal number such as \"1245.67\"";

	(void) state;
	cost_ok(str("1245.67"), 1245670000);
	cost_ok(num("1245.67"), 1245670000);
	cost_ok(str(" 12.50\n"), 12500000);
	cost_ok(str("0.000001"), 1);
	cost_ok(str("999999999999.999999"), 999999999999999999LL);
	cost_ok(str("1.2300000000"), 1230000);
	cost_bad(str("0"), "must be greater than 0");
	cost_bad(str("0.000000"), "must be greater than 0");
	cost_bad(str("-0"), "must be greater than 0");
	cost_bad(str("-5"), "must be greater than 0");
	cost_bad(str("-0.0000001"), "must be greater than 0");
	cost_bad(str("-1000000000000"), "must be greater than 0");
	cost_bad(str("1000000000000"), "must be less than 1000000000000");
	cost_bad(num("1000000000000"), "must be less than 1000000000000");
	cost_bad(str("1.1234567"), "has more than 6 fractional digits");
	cost_bad(str("abc"), syntax);
	cost_bad(str(""), syntax);
	cost_bad(str("  "), syntax);
	cost_bad(str("1e3"), syntax);
	cost_bad(str("$12"), syntax);
	cost_bad(str("1,245.67"), syntax);
	cost_bad(kind(HX_RAW_OTHER), "must be a number or a decimal string");
	cost_bad(kind(HX_RAW_MISSING), "is required");
	cost_bad(kind(HX_RAW_NULL), "is required");
}

/* ---- violations ------------------------------------------------------- */

static void
test_violations_limit(void **state)
{
	hx_violations v;
	char          longf[300];
	int           i;

	(void) state;
	hx_violations_init(&v, 3);
	for (i = 0; i < 5; i++) {
		assert_int_equal(hx_violations_add(&v, "f", "n=%d", i), HX_OK);
	}
	assert_int_equal(v.len, 3);
	assert_int_equal(v.total, 5);
	assert_string_equal(v.items[2].description, "n=2");
	memset(longf, 'x', sizeof(longf) - 1);
	longf[sizeof(longf) - 1] = '\0';
	hx_violations_clear(&v);
	assert_int_equal(v.len, 0);
	assert_int_equal(v.total, 0);
	assert_int_equal(hx_violations_add(&v, longf, "%s", longf), HX_OK);
	assert_int_equal(strlen(v.items[0].field), HX_FIELD_MAX - 1);
	assert_int_equal(strlen(v.items[0].description), HX_DESC_MAX - 1);
	hx_violations_free(&v);
	assert_null(v.items);
	assert_int_equal(v.limit, 3);

	hx_violations_init(&v, 0);
	assert_int_equal(v.limit, HX_VIOLATIONS_DEFAULT_LIMIT);
	hx_violations_free(&v);
}

/* ---- the batch -------------------------------------------------------- */

static hx_raw_record
rec(const char *date, const char *provider, const char *gpu, const char *cost)
{
	hx_raw_record r;

	memset(&r, 0, sizeof(r)); /* gpu_hours: missing, i.e. unknown */
	r.date = str(date);
	r.provider = str(provider);
	r.gpu_type = str(gpu);
	r.cost_usd = str(cost);
	return r;
}

static void
assert_violation(const hx_violations *v, size_t i, const char *field, const char *desc)
{
	assert_true(i < v->len);
	assert_string_equal(v->items[i].field, field);
	assert_string_equal(v->items[i].description, desc);
}

static void
test_batch_every_field_reported(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r = rec("2023-02-29", "", "\xc0\x80", "0");

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	assert_int_equal(hx_batch_add(&b, &r, "records", 7, &v), HX_INVALID_ARGUMENT);
	assert_int_equal(v.len, 4);
	assert_violation(&v, 0, "records[7].date", MSG_DATE);
	assert_violation(&v, 1, "records[7].provider", "must not be empty");
	assert_violation(&v, 2, "records[7].gpu_type", "is not valid UTF-8");
	assert_violation(&v, 3, "records[7].cost_usd", "must be greater than 0");
	assert_int_equal(b.len, 0);
	assert_int_equal(b.received, 1);

	/* One bad field: only that one is named. */
	r = rec("2024-02-29", "AWS", "A100", "1.1234567");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 3, &v), HX_INVALID_ARGUMENT);
	assert_int_equal(v.len, 5);
	assert_violation(&v, 4, "cost_data[3].cost_usd", "has more than 6 fractional digits");
	assert_int_equal(b.received, 2);
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static void
test_batch_normalises(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r = rec(" 2026-01-01 ", "  AWS\t", "A100\r\n", " 1245.67 ");

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 4, &v), HX_OK);
	assert_int_equal(v.total, 0);
	assert_int_equal(b.len, 1);
	assert_string_equal(b.recs[0].date, "2026-01-01");
	assert_string_equal(b.recs[0].provider, "aws");
	assert_string_equal(b.recs[0].gpu_type, "a100");
	assert_int_equal(b.recs[0].cost, 1245670000);
	assert_int_equal(b.src[0], 4);
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static void
test_batch_duplicates(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r;

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	/* 0 and 1 are invalid, so they take no part in the key check. */
	r = rec("2026-01-01", "AWS", "A100", "0");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 0, &v), HX_INVALID_ARGUMENT);
	r = rec("2026-01-01", "AWS", "A100", "x");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 1, &v), HX_INVALID_ARGUMENT);
	r = rec("2026-01-01", "AWS", "A100", "10");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 2, &v), HX_OK);
	r = rec("2026-01-01", "AWS", "H100", "10");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 3, &v), HX_OK);
	/* Same key once normalised, different cost. */
	r = rec("2026-01-01 ", " aws", "a100", "11");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 4, &v), HX_INVALID_ARGUMENT);
	r = rec("2026-01-01", "AWS", "A100", "10");
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 5, &v), HX_INVALID_ARGUMENT);
	assert_int_equal(v.len, 4);
	assert_violation(&v, 2, "cost_data[4]", "duplicate of cost_data[2]");
	assert_violation(&v, 3, "cost_data[5]", "duplicate of cost_data[2]");
	assert_int_equal(b.len, 2);
	assert_int_equal(b.received, 6);

	/* After a reset nothing is remembered. */
	hx_batch_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.received, 0);
	r = rec("2026-01-01", "AWS", "A100", "10");
	assert_int_equal(hx_batch_add(&b, &r, "records", 0, &v), HX_OK);
	assert_int_equal(b.src[0], 0);
	hx_batch_free(&b);
	hx_violations_free(&v);
}

#define MANY 10000

static void
many_key(size_t i, char date[HX_DATE_LEN + 1], char prov[32])
{
	/* 28 days x 12 months x 30 providers > MANY distinct keys. */
	snprintf(date, HX_DATE_LEN + 1, "2026-%02u-%02u", (unsigned) (1 + i / 28 % 12),
	         (unsigned) (1 + i % 28));
	snprintf(prov, 32, "P%zu", i / (28 * 12));
}

/* Distinct keys across many table growths, then each sent again. */
static void
test_batch_many(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r;
	char          date[HX_DATE_LEN + 1], prov[32], want[64];
	size_t        i;

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 2 * MANY);
	for (i = 0; i < MANY; i++) {
		many_key(i, date, prov);
		r = rec(date, prov, "H100", "1.5");
		assert_int_equal(hx_batch_add(&b, &r, "records", i, &v), HX_OK);
		assert_true(b.len * 2 <= b.nslots);
	}
	assert_int_equal(b.len, MANY);
	assert_int_equal(b.nslots & (b.nslots - 1), 0);
	for (i = 0; i < MANY; i++) {
		size_t orig = MANY - 1 - i;

		many_key(orig, date, prov);
		r = rec(date, prov, "h100", "2");
		assert_int_equal(hx_batch_add(&b, &r, "records", MANY + i, &v),
		                 HX_INVALID_ARGUMENT);
		snprintf(want, sizeof(want), "duplicate of records[%zu]", orig);
		assert_string_equal(v.items[i].description, want);
	}
	assert_int_equal(v.total, MANY);
	assert_int_equal(b.len, MANY);
	assert_int_equal(b.received, 2 * MANY);
	assert_int_equal(b.src[MANY - 1], MANY - 1);
	assert_string_equal(b.recs[MANY - 1].provider, "p29");
	hx_batch_free(&b);
	hx_violations_free(&v);
}

/* ---- names of statuses and groupings ------------------------------------- */

static void
test_status_names(void **state)
{
	hx_status st;
	int       i;

	(void) state;
	assert_string_equal(hx_status_name(HX_OK), "OK");
	assert_string_equal(hx_status_name(HX_INVALID_ARGUMENT), "INVALID_ARGUMENT");
	assert_string_equal(hx_status_name(HX_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
	assert_string_equal(hx_status_name(HX_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(hx_status_name((hx_status) 17), "UNKNOWN");
	assert_string_equal(hx_status_name((hx_status) -1), "UNKNOWN");
	for (i = 0; i <= 16; i++) {
		assert_int_equal(hx_status_parse(hx_status_name((hx_status) i), &st), HX_OK);
		assert_int_equal(st, i);
	}
	assert_int_equal(hx_status_parse("NOPE", &st), HX_INVALID_ARGUMENT);
	assert_int_equal(hx_status_parse("", &st), HX_INVALID_ARGUMENT);
	assert_int_equal(hx_status_parse(NULL, &st), HX_INVALID_ARGUMENT);
}

static void
test_group_by_names(void **state)
{
	hx_group_by g;

	(void) state;
	assert_string_equal(hx_group_by_name(HX_GROUP_NONE), "NONE");
	assert_string_equal(hx_group_by_name(HX_GROUP_PROVIDER_GPU_TYPE), "PROVIDER_GPU_TYPE");
	assert_null(hx_group_by_name((hx_group_by) 5));
	assert_int_equal(hx_group_by_parse("gpu_type", &g), 0);
	assert_int_equal(g, HX_GROUP_GPU_TYPE);
	assert_int_equal(hx_group_by_parse("provider-gpu-type", &g), 0);
	assert_int_equal(g, HX_GROUP_PROVIDER_GPU_TYPE);
	assert_int_equal(hx_group_by_parse("DATE", &g), 0);
	assert_int_equal(g, HX_GROUP_DATE);
	assert_int_equal(hx_group_by_parse("dat", &g), -1);
	assert_int_equal(hx_group_by_parse("dates", &g), -1);
	assert_int_equal(hx_group_by_parse("", &g), -1);
}

/* ---- v2: gpu_hours, replace windows, provenance --------------------------- */

static void
test_gpu_hours(void **state)
{
	hx_raw_value missing = { HX_RAW_MISSING, NULL, 0 }, null = { HX_RAW_NULL, NULL, 0 };
	hx_raw_value other = { HX_RAW_OTHER, NULL, 0 };
	hx_micros    h = -7;
	bool         known = true;
	hx_raw_value v;

	(void) state;
	/* Unknown: absent, null, or blank text (the wire's empty string). */
	assert_null(hx_check_gpu_hours(&missing, &h, &known));
	assert_false(known);
	known = true;
	assert_null(hx_check_gpu_hours(&null, &h, &known));
	assert_false(known);
	v = str(" \t");
	known = true;
	assert_null(hx_check_gpu_hours(&v, &h, &known));
	assert_false(known);
	assert_int_equal(h, -7); /* untouched when unknown */

	v = str("0");
	assert_null(hx_check_gpu_hours(&v, &h, &known));
	assert_true(known);
	assert_int_equal(h, 0);
	v = num("24.5");
	assert_null(hx_check_gpu_hours(&v, &h, &known));
	assert_int_equal(h, 24500000);
	v = str(" 999999999999.999999 ");
	assert_null(hx_check_gpu_hours(&v, &h, &known));
	assert_int_equal(h, 999999999999999999LL);
	v = str("1.5000000"); /* trailing zeros are not precision */
	assert_null(hx_check_gpu_hours(&v, &h, &known));
	assert_int_equal(h, 1500000);

	v = str("-1");
	assert_string_equal(hx_check_gpu_hours(&v, &h, &known), "must be 0 or greater");
	v = str("-0.0000001");
	assert_string_equal(hx_check_gpu_hours(&v, &h, &known), "must be 0 or greater");
	v = str("1000000000000");
	assert_string_equal(hx_check_gpu_hours(&v, &h, &known), "must be less than 1000000000000");
	v = str("0.0000001");
	assert_string_equal(hx_check_gpu_hours(&v, &h, &known),
	                    "has more than 6 fractional digits");
	v = str("12h");
	assert_string_equal(hx_check_gpu_hours(&v, &h, &known),
	                    "must be a decimal number such as \"1245.67\"");
	assert_string_equal(hx_check_gpu_hours(&other, &h, &known),
	                    "must be a number or a decimal string");
}

static void
test_batch_gpu_hours_path(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r = rec("2024-09-01", "aws", "h100", "10");

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	r.gpu_hours = str("-3");
	assert_int_equal(hx_batch_add(&b, &r, "records", 4, &v), HX_INVALID_ARGUMENT);
	assert_int_equal(v.total, 1);
	assert_violation(&v, 0, "records[4].gpu_hours", "must be 0 or greater");
	r.gpu_hours = num("12.25");
	assert_int_equal(hx_batch_add(&b, &r, "records", 5, &v), HX_OK);
	assert_true(b.recs[0].has_gpu_hours);
	assert_int_equal(b.recs[0].gpu_hours, 12250000);
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static hx_status
add_window(hx_batch *b, const char *p, const char *f, const char *t, size_t i, hx_violations *v)
{
	hx_raw_value pv = str(p), fv = str(f), tv = str(t);

	return hx_batch_add_window(b, &pv, &fv, &tv, i, v);
}

static void
test_windows(void **state)
{
	hx_batch      b;
	hx_violations v;

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	assert_int_equal(add_window(&b, " AWS ", "2024-09-01", "2024-09-30", 0, &v), HX_OK);
	assert_string_equal(b.windows[0].provider, "aws");
	/* 2024 is a leap year: 366 days is the most; 2023-01-01 .. 2024-01-01
	 * is 366 days too, one more is refused. */
	assert_int_equal(add_window(&b, "gcp", "2024-01-01", "2024-12-31", 1, &v), HX_OK);
	assert_int_equal(add_window(&b, "oci", "2023-01-01", "2023-12-31", 2, &v), HX_OK);
	assert_int_equal(add_window(&b, "x", "2023-01-01", "2024-01-02", 3, &v),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(add_window(&b, "y", "2024-09-02", "2024-09-01", 4, &v),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(add_window(&b, "aws", "2024-10-01", "2024-10-31", 5, &v),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(add_window(&b, "", "2024-02-30", "x", 6, &v), HX_INVALID_ARGUMENT);
	assert_int_equal(v.total, 6);
	assert_violation(&v, 0, "replace[3].to_date", "is more than 366 days after from_date");
	assert_violation(&v, 1, "replace[4].to_date", "must not be before from_date");
	assert_violation(&v, 2, "replace[5].provider",
	                 "another window for provider aws: replace[0]");
	/* every field of a bad window is named, and no order check without dates */
	assert_violation(&v, 3, "replace[6].provider", "must not be empty");
	assert_violation(&v, 4, "replace[6].from_date", MSG_DATE);
	assert_violation(&v, 5, "replace[6].to_date", MSG_DATE);
	assert_int_equal(b.n_windows, 3);
	assert_int_equal(b.windows_received, 7);
	assert_non_null(hx_batch_window(&b, "gcp"));
	assert_null(hx_batch_window(&b, "azure"));
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static void
test_window_limit(void **state)
{
	hx_batch      b;
	hx_violations v;
	char          name[16];
	int           i;

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	for (i = 0; i < HX_REPLACE_MAX; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		assert_int_equal(add_window(&b, name, "2024-09-01", "2024-09-01", (size_t) i, &v),
		                 HX_OK);
	}
	assert_int_equal(add_window(&b, "one-more", "2024-09-01", "2024-09-01", HX_REPLACE_MAX, &v),
	                 HX_INVALID_ARGUMENT);
	assert_violation(&v, 0, "replace", "has more than 64 windows");
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static void
test_records_against_windows(void **state)
{
	hx_batch      b;
	hx_violations v;
	hx_raw_record r;
	size_t        bad = 99;

	(void) state;
	hx_batch_init(&b);
	hx_violations_init(&v, 0);
	assert_int_equal(add_window(&b, "aws", "2024-09-01", "2024-09-30", 0, &v), HX_OK);
	r = rec("2024-09-01", "AWS", "a", "1"); /* first day: inside */
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 0, &v), HX_OK);
	r = rec("2024-09-30", "aws", "a", "1"); /* last day: inside */
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 1, &v), HX_OK);
	r = rec("2024-10-01", "aws", "a", "1"); /* a day after */
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 2, &v), HX_OK);
	r = rec("2024-08-31", "aws", "a", "1"); /* a day before */
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 3, &v), HX_OK);
	r = rec("2025-01-01", "gcp", "a", "1"); /* no window for gcp: anywhere */
	assert_int_equal(hx_batch_add(&b, &r, "cost_data", 4, &v), HX_OK);
	assert_int_equal(v.total, 0);
	assert_int_equal(hx_batch_check_windows(&b, "cost_data", &v, &bad), HX_INVALID_ARGUMENT);
	assert_int_equal(bad, 2);
	assert_int_equal(v.total, 2);
	assert_violation(&v, 0, "cost_data[2].date",
	                 "is outside the replace window for aws (2024-09-01 .. 2024-09-30)");
	assert_violation(&v, 1, "cost_data[3].date",
	                 "is outside the replace window for aws (2024-09-01 .. 2024-09-30)");
	assert_true(hx_record_in_window(&b, &b.recs[0]));
	assert_false(hx_record_in_window(&b, &b.recs[2]));
	assert_true(hx_record_in_window(&b, &b.recs[4]));
	hx_batch_reset(&b);
	assert_int_equal(b.n_windows, 0);
	assert_int_equal(hx_batch_check_windows(&b, "cost_data", &v, &bad), HX_OK);
	assert_int_equal(bad, 0);
	hx_batch_free(&b);
	hx_violations_free(&v);
}

static void
test_prov_text(void **state)
{
	char         out[HX_PROV_NAME_MAX + 1], big[300];
	hx_raw_value missing = { HX_RAW_MISSING, NULL, 0 }, v;

	(void) state;
	assert_null(hx_check_prov_text(&missing, HX_PROV_TEXT_MAX, out));
	assert_string_equal(out, "");
	v = str("  focus-1.0\n");
	assert_null(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out));
	assert_string_equal(out, "focus-1.0"); /* trimmed, case kept */
	v = str("Bill \xc3\xa9t\xc3\xa9.csv");
	assert_null(hx_check_prov_text(&v, HX_PROV_NAME_MAX, out));
	v = str("a\x01");
	assert_string_equal(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out),
	                    "contains a control character");
	v = str("\xff");
	assert_string_equal(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out), "is not valid UTF-8");
	v = num("1");
	assert_string_equal(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out), "must be a string");
	memset(big, 'x', sizeof(big));
	v = strn(big, 64);
	assert_null(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out));
	v = strn(big, 65);
	assert_string_equal(hx_check_prov_text(&v, HX_PROV_TEXT_MAX, out),
	                    "is longer than 64 bytes");
	v = strn(big, 255);
	assert_null(hx_check_prov_text(&v, HX_PROV_NAME_MAX, out));
	v = strn(big, 256);
	assert_string_equal(hx_check_prov_text(&v, HX_PROV_NAME_MAX, out),
	                    "is longer than 255 bytes");
}

static void
test_date_days(void **state)
{
	(void) state;
	assert_int_equal(hx_date_days("0001-01-01"), 0);
	assert_int_equal(hx_date_days("2024-03-01") - hx_date_days("2024-02-28"), 2);
	assert_int_equal(hx_date_days("2023-03-01") - hx_date_days("2023-02-28"), 1);
	assert_int_equal(hx_date_days("2000-03-01") - hx_date_days("2000-02-28"), 2);
	assert_int_equal(hx_date_days("1900-03-01") - hx_date_days("1900-02-28"), 1);
	assert_int_equal(hx_date_days("2025-01-01") - hx_date_days("2024-01-01"), 366);
	/* 1970-01-01 is day 719162 from 0001-01-01 (proleptic Gregorian) */
	assert_int_equal(hx_date_days("1970-01-01"), 719162);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_names_normalised),
		cmocka_unit_test(test_names_utf8),
		cmocka_unit_test(test_names_control),
		cmocka_unit_test(test_names_length_and_kind),
		cmocka_unit_test(test_costs),
		cmocka_unit_test(test_violations_limit),
		cmocka_unit_test(test_batch_every_field_reported),
		cmocka_unit_test(test_batch_normalises),
		cmocka_unit_test(test_batch_duplicates),
		cmocka_unit_test(test_batch_many),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_group_by_names),
		cmocka_unit_test(test_gpu_hours),
		cmocka_unit_test(test_batch_gpu_hours_path),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_window_limit),
		cmocka_unit_test(test_records_against_windows),
		cmocka_unit_test(test_prov_text),
		cmocka_unit_test(test_date_days),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_export.c - the cost export document: the bundled mock export, and
 * every document-level and record-level way to get it wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heliox/export.h"

#ifndef HX_SOURCE_DIR
#error "HX_SOURCE_DIR must name the source tree (see tests/CMakeLists.txt)"
#endif

struct fixture {
	hx_batch      b;
	hx_violations v;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return -1;
	}
	hx_batch_init(&f->b);
	hx_violations_init(&f->v, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	hx_batch_free(&f->b);
	hx_violations_free(&f->v);
	free(f);
	return 0;
}

/* Parses a NUL-terminated document; the NUL is not passed on. */
static hx_status
parse(struct fixture *f, const char *json)
{
	return hx_export_parse(json, strlen(json), &f->b, &f->v);
}

static void
assert_violation(const hx_violations *v, size_t i, const char *field, const char *desc)
{
	if (i >= v->len) {
		fail_msg("violation %zu wanted, %zu found", i, v->len);
	}
	assert_string_equal(v->items[i].field, field);
	assert_string_equal(v->items[i].description, desc);
}

/* The document's one violation, and nothing read. */
static void
assert_doc_error(void **state, const char *json, const char *field, const char *desc)
{
	struct fixture *f = *state;

	hx_batch_reset(&f->b);
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f, json), HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 1);
	assert_violation(&f->v, 0, field, desc);
	assert_int_equal(f->b.len, 0);
}

/* Reads the file into a buffer of exactly its size, with no NUL after it,
 * so ASan catches any read past `len`. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	long  n;

	if (fp == NULL) {
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 && fseek(fp, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t) n)) != NULL) {
		*len = fread(buf, 1, (size_t) n, fp);
	}
	fclose(fp);
	return buf;
}

static void
test_mock_export(void **state)
{
	struct fixture *f = *state;
	hx_micros       sum = 0;
	size_t          len = 0, i;
	char           *json = read_file(HX_SOURCE_DIR "/data/mock_cost_export.json", &len);

	assert_non_null(json);
	assert_int_equal(hx_export_parse(json, len, &f->b, &f->v), HX_OK);
	free(json);
	assert_int_equal(f->v.total, 0);
	assert_int_equal(f->b.len, 28);
	assert_int_equal(f->b.received, 28);
	for (i = 0; i < f->b.len; i++) {
		sum += f->b.recs[i].cost;
		assert_int_equal(f->b.src[i], i);
		assert_string_equal(f->b.recs[i].provider, "aws");
	}
	assert_int_equal(sum, 51185190000LL);
	assert_string_equal(f->b.recs[0].date, "2026-01-01");
	assert_string_equal(f->b.recs[0].gpu_type, "a100");
	assert_int_equal(f->b.recs[0].cost, 1245670000);
	assert_string_equal(f->b.recs[27].date, "2026-01-14");
	assert_string_equal(f->b.recs[27].gpu_type, "h100");
}

static void
test_document_errors(void **state)
{
	assert_doc_error(state, "", "$", "is not valid JSON");
	assert_doc_error(state, "{", "$", "is not valid JSON");
	assert_doc_error(state, "cost_data", "$", "is not valid JSON");
	assert_doc_error(state, "{\"cost_data\": [1,]}", "$", "is not valid JSON");
	assert_doc_error(state, "{} {}", "$", "is not valid JSON");
	assert_doc_error(state, "{} x", "$", "is not valid JSON");
	assert_doc_error(state, "[{\"date\": \"2026-01-01\"}]", "$", "must be a JSON object");
	assert_doc_error(state, "42", "$", "must be a JSON object");
	assert_doc_error(state, "\"text\"", "$", "must be a JSON object");
	assert_doc_error(state, "null", "$", "must be a JSON object");
}

static void
test_cost_data_errors(void **state)
{
	assert_doc_error(state, "{}", "cost_data", "is required");
	assert_doc_error(state, " {\"currency\": \"USD\"}\r\n ", "cost_data", "is required");
	assert_doc_error(state, "{\"cost_data\": null}", "cost_data", "is required");
	assert_doc_error(state, "{\"cost_data\": []}", "cost_data", "must not be empty");
	assert_doc_error(state, "{\"cost_data\": {}}", "cost_data", "must be an array");
	assert_doc_error(state, "{\"cost_data\": \"x\"}", "cost_data", "must be an array");
	assert_doc_error(state, "{\"Cost_Data\": [{}]}", "cost_data", "is required");
}

#define GOOD                                                                         \
	"{\"date\": \"2026-01-01\", \"provider\": \"AWS\", \"gpu_type\": \"A100\", " \
	"\"cost_usd\": 1245.67}"

static void
test_currency(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f, "{\"currency\": \"EUR\", \"cost_data\": [" GOOD "]}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 1);
	assert_violation(&f->v, 0, "currency", "must be \"USD\"");
	/* The records are still read, for skip_invalid. */
	assert_int_equal(f->b.len, 1);
	assert_int_equal(f->b.received, 1);

	/* Exactly "USD"; and cost_data's own problem is reported too. */
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f, "{\"currency\": \"usd\", \"cost_data\": []}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 2);
	assert_violation(&f->v, 0, "currency", "must be \"USD\"");
	assert_violation(&f->v, 1, "cost_data", "must not be empty");
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f, "{\"currency\": 840, \"cost_data\": []}"), HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 2);
	assert_violation(&f->v, 0, "currency", "must be \"USD\"");
	assert_violation(&f->v, 1, "cost_data", "must not be empty");

	hx_batch_reset(&f->b);
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f,
	                       "{\"currency\": \"USD\", \"export_id\": 7, \"x\": {}, "
	                       "\"cost_data\": [" GOOD "]}"),
	                 HX_OK);
	assert_int_equal(f->b.len, 1);

	/* null is absent, as for a record's fields. */
	hx_batch_reset(&f->b);
	assert_int_equal(parse(f, "{\"currency\": null, \"cost_data\": [" GOOD "]}"), HX_OK);
}

static void
test_nul(void **state)
{
	struct fixture   *f = *state;
	static const char raw[] =
	    "{\"cost_data\": [{\"date\": \"2026-01-01\", \"provider\": \"AW\0S\", "
	    "\"gpu_type\": \"A100\", \"cost_usd\": 1}]}";

	/* An escaped NUL is refused on its own field, the value kept whole. */
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f,
	                       "{\"cost_data\": [" GOOD ", {\"date\": \"2026-01-02\", "
	                       "\"provider\": \"AWS\\u0000x\", \"gpu_type\": \"A\\u00001\", "
	                       "\"cost_usd\": 1}]}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 2);
	assert_violation(&f->v, 0, "cost_data[1].provider", "contains a control character");
	assert_violation(&f->v, 1, "cost_data[1].gpu_type", "contains a control character");
	assert_int_equal(f->b.len, 1);
	/* In a key it only makes the key unknown, and unknown keys are ignored. */
	hx_batch_reset(&f->b);
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f, "{\"a\\u0000\": 1, \"cost_data\": [" GOOD "]}"), HX_OK);
	assert_int_equal(f->b.len, 1);

	hx_batch_reset(&f->b);
	hx_violations_clear(&f->v);
	assert_int_equal(hx_export_parse(raw, sizeof(raw) - 1, &f->b, &f->v), HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 1);
	assert_violation(&f->v, 0, "$", "contains a NUL character");
	assert_int_equal(f->b.received, 0);

	/* An escaped backslash before "u0000" is a backslash, not a NUL. */
	hx_violations_clear(&f->v);
	assert_int_equal(parse(f,
	                       "{\"cost_data\": [{\"date\": \"2026-01-01\", \"provider\": "
	                       "\"AW\\\\u0000S\", \"gpu_type\": \"A100\", \"cost_usd\": 1}]}"),
	                 HX_OK);
	assert_string_equal(f->b.recs[0].provider, "aw\\u0000s");
}

static void
test_every_field_wrong(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f,
	                       "{\"cost_data\": [" GOOD ", {\"date\": \"2026-02-30\", "
	                       "\"provider\": \" \", \"gpu_type\": 7, \"cost_usd\": -1}]}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 4);
	assert_violation(&f->v, 0, "cost_data[1].date", "must be a real calendar date YYYY-MM-DD");
	assert_violation(&f->v, 1, "cost_data[1].provider", "must not be empty");
	assert_violation(&f->v, 2, "cost_data[1].gpu_type", "must be a string");
	assert_violation(&f->v, 3, "cost_data[1].cost_usd", "must be greater than 0");
	assert_int_equal(f->b.len, 1);
	assert_int_equal(f->b.received, 2);
}

static void
test_missing_null_and_types(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f,
	                       "{\"cost_data\": [{\"Date\": \"2026-01-01\", \"provider\": null, "
	                       "\"gpu_type\": [\"A100\"], \"cost_usd\": true}, 5, \"x\"]}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 6);
	assert_violation(&f->v, 0, "cost_data[0].date", "is required");
	assert_violation(&f->v, 1, "cost_data[0].provider", "is required");
	assert_violation(&f->v, 2, "cost_data[0].gpu_type", "must be a string");
	assert_violation(&f->v, 3, "cost_data[0].cost_usd", "must be a number or a decimal string");
	assert_violation(&f->v, 4, "cost_data[1]", "must be an object");
	assert_violation(&f->v, 5, "cost_data[2]", "must be an object");
	assert_int_equal(f->b.received, 3);
	assert_int_equal(f->b.len, 0);
}

/* A JSON cost and the verdict on it (NULL: valid, with `micros`). */
struct cost_case {
	const char *json;
	const char *why;
	hx_micros   micros;
};

static const struct cost_case cost_cases[] = {
	{ "1245.67", NULL, 1245670000 },
	{ "\" 1245.670 \"", NULL, 1245670000 },
	{ "1e3", NULL, 1000000000 },
	{ "0.1", NULL, 100000 },
	{ "0.000001", NULL, 1 },
	{ "12.345678", NULL, 12345678 },
	{ "999999999999.99", NULL, 999999999999990000LL },
	{ "0", "must be greater than 0", 0 },
	{ "-0", "must be greater than 0", 0 },
	{ "-1245.67", "must be greater than 0", 0 },
	{ "-1e300", "must be greater than 0", 0 },
	{ "1e12", "must be less than 1000000000000", 0 },
	{ "1e300", "must be less than 1000000000000", 0 },
	{ "1e999", "must be less than 1000000000000", 0 },
	{ "1.0000001", "has more than 6 fractional digits", 0 },
	{ "1e-7", "has more than 6 fractional digits", 0 },
	{ "1e-300", "has more than 6 fractional digits", 0 },
	{ "\"1e3\"", "must be a decimal number such as \"1245.67\"", 0 },
	{ "\"\"", "must be a decimal number such as \"1245.67\"", 0 },
	{ "{}", "must be a number or a decimal string", 0 },
};

static void
test_costs(void **state)
{
	struct fixture *f = *state;
	char            json[256];
	size_t          i;

	for (i = 0; i < sizeof(cost_cases) / sizeof(cost_cases[0]); i++) {
		const struct cost_case *c = &cost_cases[i];

		hx_batch_reset(&f->b);
		hx_violations_clear(&f->v);
		snprintf(json, sizeof(json),
		         "{\"cost_data\": [{\"date\": \"2026-01-01\", \"provider\": \"AWS\", "
		         "\"gpu_type\": \"A100\", \"cost_usd\": %s}]}",
		         c->json);
		if (c->why == NULL) {
			assert_int_equal(parse(f, json), HX_OK);
			assert_int_equal(f->b.recs[0].cost, c->micros);
			continue;
		}
		assert_int_equal(parse(f, json), HX_INVALID_ARGUMENT);
		if (f->v.total != 1 || strcmp(f->v.items[0].description, c->why) != 0) {
			fail_msg("%s: got %s", c->json,
			         f->v.len ? f->v.items[0].description : "nothing");
		}
		assert_string_equal(f->v.items[0].field, "cost_data[0].cost_usd");
	}
}

static void
test_normalise_and_duplicates(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(parse(f,
	                       "{\"cost_data\": [" GOOD ", "
	                       "{\"date\": \" 2026-01-01\", \"provider\": \" aws \", "
	                       "\"gpu_type\": \"a100\\n\", \"cost_usd\": \"9\"}, "
	                       "{\"date\": \"2026-01-01\", \"provider\": \"A\\tWS\", "
	                       "\"gpu_type\": \"A100\", \"cost_usd\": 1}, "
	                       "{\"date\": \"2026-01-02\", \"provider\": \"AWS\", "
	                       "\"gpu_type\": \"A100\", \"cost_usd\": 1, \"note\": \"x\"}]}"),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(f->v.total, 2);
	assert_violation(&f->v, 0, "cost_data[1]", "duplicate of cost_data[0]");
	assert_violation(&f->v, 1, "cost_data[2].provider", "contains a control character");
	assert_int_equal(f->b.len, 2);
	assert_int_equal(f->b.received, 4);
	assert_int_equal(f->b.src[1], 3);
	assert_string_equal(f->b.recs[1].date, "2026-01-02");
}

/* Only `len` bytes are the document, whatever follows them. */
static void
test_respects_len(void **state)
{
	struct fixture *f = *state;
	const char      doc[] = "{\"cost_data\": [" GOOD "]}garbage";

	assert_int_equal(hx_export_parse(doc, sizeof(doc) - 1 - strlen("garbage"), &f->b, &f->v),
	                 HX_OK);
	assert_int_equal(f->b.len, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mock_export, setup, teardown),
		cmocka_unit_test_setup_teardown(test_document_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cost_data_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_currency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_field_wrong, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_null_and_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_costs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_normalise_and_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_respects_len, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

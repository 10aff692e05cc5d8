/*
 * test_jsonstream.c - the CLI's streaming export reader (clients/): the
 * scanner on its own (jsonstream.c), then the whole check pass through a
 * small buffer (docreader.c, stream_check.c, keyset.c, bitvec.c) compared
 * with the server's hx_export_parse() on thousands of generated documents,
 * and the path mapping of server violations (pathmap.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heliox/export.h"

#include "docreader.h"
#include "jsonstream.h"
#include "pathmap.h"
#include "stream_check.h"

/* ---- the scanner, fed in pieces ------------------------------------------ */

#define MAX_EVENTS 64
#define TEXT_MAX   512

typedef struct scan_event {
	jstream_event kind;
	uint64_t      index;
	char          text[TEXT_MAX]; /* the span, for ELEMENT and CURRENCY */
} scan_event;

typedef struct scan_out {
	scan_event    ev[MAX_EVENTS];
	size_t        n;
	jstream_event last; /* END or ERROR */
	jstream       s;
} scan_out;

static void
record_event(scan_out *o, jstream_event kind, const char *doc, uint64_t dropped)
{
	scan_event *e;

	assert_true(o->n < MAX_EVENTS);
	e = &o->ev[o->n++];
	e->kind = kind;
	e->index = o->s.index;
	e->text[0] = '\0';
	if (kind == JSTREAM_ELEMENT || kind == JSTREAM_CURRENCY || kind == JSTREAM_REPLACE ||
	    kind == JSTREAM_PROVENANCE) {
		size_t len = (size_t) (o->s.span_end - o->s.span_start);

		/* A caller that dropped what keep_from allowed still has it. */
		assert_true(o->s.span_start >= dropped);
		assert_true(len < TEXT_MAX);
		memcpy(e->text, doc + o->s.span_start, len);
		e->text[len] = '\0';
	}
}

/*
 * Scans doc[0..len) in pieces of `chunk` bytes (0: all at once), as a
 * caller would: after each piece is used up it may drop everything before
 * jstream_keep_from(), and every span reported must start after that.
 */
static void
scan_chunks(const char *doc, size_t len, size_t chunk, size_t max_span, scan_out *o)
{
	size_t        pos = 0, end, used;
	uint64_t      dropped = 0;
	jstream_event ev;

	memset(o, 0, sizeof(*o));
	jstream_init(&o->s, max_span);
	while (pos < len) {
		end = chunk == 0 || len - pos < chunk ? len : pos + chunk;
		while (pos < end) {
			ev = jstream_feed(&o->s, doc + pos, end - pos, &used);
			pos += used;
			assert_int_equal(o->s.pos, pos);
			if (ev == JSTREAM_ERROR) {
				o->last = ev;
				return;
			}
			if (ev != JSTREAM_MORE) {
				record_event(o, ev, doc, dropped);
			}
		}
		dropped = jstream_keep_from(&o->s);
		assert_true(dropped <= pos);
		assert_true(pos - dropped <= max_span);
	}
	o->last = jstream_finish(&o->s);
}

static void
scan(const char *doc, scan_out *o)
{
	scan_chunks(doc, strlen(doc), 0, 4096, o);
}

static void
assert_same_scan(const scan_out *a, const scan_out *b)
{
	size_t i;

	assert_int_equal(a->last, b->last);
	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		assert_int_equal(a->ev[i].kind, b->ev[i].kind);
		assert_int_equal(a->ev[i].index, b->ev[i].index);
		assert_string_equal(a->ev[i].text, b->ev[i].text);
	}
	assert_int_equal(a->s.data, b->s.data);
	assert_int_equal(a->s.n_elements, b->s.n_elements);
	assert_int_equal(a->s.error, b->s.error);
	assert_int_equal(a->s.error_at, b->s.error_at);
}

/* Strings full of the characters that would fool a bracket counter. */
static const char tricky_doc[] =
    "\xEF\xBB\xBF {\"export_id\": \"x]}[{\\\"\", \"meta\": {\"cost_data\": [\"not this\"],"
    " \"n\": [1, -0.5e+3, true, false, null, {\"a\": []}]},\n"
    "  \"cost_data\": [\n"
    "    {\"date\": \"2026-01-01\", \"provider\": \"A]W}S\\\"\", \"gpu_type\": \"A100\", "
    "\"cost_usd\": 1245.67},\n"
    "    {\"date\": \"2026-01-02\", \"provider\": \"\\\\\", \"gpu_type\": "
    "\"\\u0041\\ud83d\\ude00\","
    " \"cost_usd\": \"1.5\", \"tags\": [[{\"x\": \"]]\"}], {}]},\n"
    "    42, \"s\", [1, [2]], null, -0, 1e5\n"
    "  ],\n"
    "  \"currency\": \"USD\", \"cost_data\": [\"second one is ignored\"], \"currency\": 5\n"
    "}\r\n";

static void
test_split_anywhere(void **state)
{
	scan_out whole, part;
	size_t   len = strlen(tricky_doc), k;

	(void) state;
	scan_chunks(tricky_doc, len, 0, 4096, &whole);
	assert_int_equal(whole.last, JSTREAM_END);
	for (k = 1; k <= len; k++) {
		scan_chunks(tricky_doc, len, k, 4096, &part);
		assert_same_scan(&whole, &part);
	}
}

static void
test_spans(void **state)
{
	scan_out o;

	(void) state;
	scan(tricky_doc, &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_true(o.s.root_object);
	assert_int_equal(o.s.data, JSTREAM_DATA_ARRAY);
	assert_int_equal(o.s.n_elements, 8);
	assert_int_equal(o.n, 9); /* 8 elements, then the first currency */
	assert_string_equal(o.ev[0].text,
	                    "{\"date\": \"2026-01-01\", \"provider\": \"A]W}S\\\"\", "
	                    "\"gpu_type\": \"A100\", \"cost_usd\": 1245.67}");
	assert_int_equal(o.ev[1].index, 1);
	assert_non_null(strstr(o.ev[1].text, "\"tags\": [[{\"x\": \"]]\"}], {}]}"));
	assert_string_equal(o.ev[2].text, "42");
	assert_string_equal(o.ev[3].text, "\"s\"");
	assert_string_equal(o.ev[4].text, "[1, [2]]");
	assert_string_equal(o.ev[5].text, "null");
	assert_string_equal(o.ev[6].text, "-0");
	assert_string_equal(o.ev[7].text, "1e5");
	assert_int_equal(o.ev[7].index, 7);
	assert_int_equal(o.ev[8].kind, JSTREAM_CURRENCY);
	assert_string_equal(o.ev[8].text, "\"USD\"");
}

static void
test_member_order(void **state)
{
	scan_out o;

	(void) state;
	/* cost_data last, currency first; currency after cost_data */
	scan("{\"currency\": null, \"a\": {\"b\": [{}]}, \"cost_data\": [{}, {\"c\": 1}]}", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.ev[0].kind, JSTREAM_CURRENCY);
	assert_string_equal(o.ev[0].text, "null");
	assert_string_equal(o.ev[2].text, "{\"c\": 1}");
	scan("{\"cost_data\":[{}],\"currency\":\"EUR\"}", &o);
	assert_int_equal(o.n, 2);
	assert_int_equal(o.ev[0].kind, JSTREAM_ELEMENT);
	assert_string_equal(o.ev[1].text, "\"EUR\"");
	/* keys compared decoded, as cJSON does; case matters */
	scan("{\"cost\\u005fdata\": [1], \"\\u0063urrency\": 1, \"Cost_Data\": [2]}", &o);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.ev[0].text, "1");
	assert_string_equal(o.ev[1].text, "1");
	/* a nested "cost_data" is not the one */
	scan("{\"x\": {\"cost_data\": [1]}}", &o);
	assert_int_equal(o.n, 0);
	assert_int_equal(o.s.data, JSTREAM_DATA_MISSING);
	/* a key longer than ours that starts like one */
	scan("{\"cost_data_old\": [1], \"currency_\": 2}", &o);
	assert_int_equal(o.n, 0);
}

static void
test_data_kinds(void **state)
{
	scan_out o;

	(void) state;
	scan("{}", &o);
	assert_int_equal(o.s.data, JSTREAM_DATA_MISSING);
	scan("{\"cost_data\": null}", &o);
	assert_int_equal(o.s.data, JSTREAM_DATA_NULL);
	scan("{\"cost_data\": {\"0\": {}}}", &o);
	assert_int_equal(o.s.data, JSTREAM_DATA_OTHER);
	assert_int_equal(o.n, 0);
	scan("{\"cost_data\": \"[{}]\"}", &o);
	assert_int_equal(o.s.data, JSTREAM_DATA_OTHER);
	scan("{\"cost_data\": [ ]}", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_int_equal(o.s.data, JSTREAM_DATA_ARRAY);
	assert_int_equal(o.s.n_elements, 0);
}

static void
test_top_level_not_object(void **state)
{
	scan_out o;

	(void) state;
	scan("[{\"cost_data\": [1]}, {\"date\": \"2026-01-01\"}]", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_false(o.s.root_object);
	assert_int_equal(o.n, 0);
	scan(" 42 ", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_false(o.s.root_object);
	scan("42", &o); /* a number ends at the end of input */
	assert_int_equal(o.last, JSTREAM_END);
	scan("\"text\"", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_false(o.s.root_object);
}

static void
test_truncated(void **state)
{
	size_t   len = strlen(tricky_doc), k;
	scan_out o;

	(void) state;
	/* Every proper prefix of a document is incomplete, and says so. */
	for (k = 0; k < len - 3; k++) {
		scan_chunks(tricky_doc, k, 7, 4096, &o);
		assert_int_equal(o.last, JSTREAM_ERROR);
		if (o.s.error != JSTREAM_ERR_TRUNCATED) {
			fail_msg("prefix of %zu bytes: error %d", k, o.s.error);
		}
		assert_int_equal(o.s.error_at, k);
	}
	scan("", &o);
	assert_int_equal(o.s.error, JSTREAM_ERR_TRUNCATED);
}

static void
assert_syntax_error(const char *doc, uint64_t at)
{
	scan_out o;

	scan(doc, &o);
	if (o.last != JSTREAM_ERROR || o.s.error != JSTREAM_ERR_SYNTAX) {
		fail_msg("%s: expected a syntax error, got event %d error %d", doc, o.last,
		         o.s.error);
	}
	if (o.s.error_at != at) {
		fail_msg("%s: error at %llu, expected %llu", doc, (unsigned long long) o.s.error_at,
		         (unsigned long long) at);
	}
}

static void
test_syntax_errors(void **state)
{
	(void) state;
	assert_syntax_error("{\"cost_data\": [1,]}", 17);
	assert_syntax_error("{} {}", 3);
	assert_syntax_error("{} x", 3);
	assert_syntax_error("{,}", 1);
	assert_syntax_error("{\"a\" 1}", 5);
	assert_syntax_error("{\"a\":1,}", 7);
	assert_syntax_error("{\"a\":[}", 6);
	assert_syntax_error("{\"a\":{]}", 6);
	assert_syntax_error("{\"a\":tru}", 8);
	assert_syntax_error("{\"a\":nul1}", 8);
	assert_syntax_error("{\"a\":truex}", 9);
	assert_syntax_error("{'a':1}", 1);
	assert_syntax_error("{\"a\":\"\\x\"}", 7);
	assert_syntax_error("{\"a\":\"\\u12G4\"}", 10);
	/* numbers: RFC 8259, stricter than cJSON */
	assert_syntax_error("{\"a\":01}", 6);
	assert_syntax_error("{\"a\":1.}", 7);
	assert_syntax_error("{\"a\":.5}", 5);
	assert_syntax_error("{\"a\":+1}", 5);
	assert_syntax_error("{\"a\":-}", 6);
	assert_syntax_error("{\"a\":1e}", 7);
	assert_syntax_error("{\"a\":1e+}", 8);
	assert_syntax_error("{\"a\":0x1}", 6);
	/* white space: the four of RFC 8259 only */
	assert_syntax_error("{\"a\":\v1}", 5);
	/* surrogates, as cJSON: a high one needs a low one after it */
	assert_syntax_error("{\"a\":\"\\ud800\"}", 12);
	assert_syntax_error("{\"a\":\"\\ud800\\u0041\"}", 17);
	assert_syntax_error("{\"a\":\"\\udc00\"}", 11);
	/* a BOM only at the very start, and whole */
	assert_syntax_error(" \xEF\xBB\xBF{}", 1);
	assert_syntax_error("\xEF\xBB{}", 2);
}

static void
test_accepted(void **state)
{
	static const char *const ok[] = {
		"{\"a\": [0, -0, 1.5, -1.5e10, 2E-3, 1e+2, 123456789012345678901234567890]}",
		"{\"a\": \"raw\tcontrol\x01"
		"bytes and \xc3\xa9 UTF-8\"}",
		"{\"a\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}",
		"\xEF\xBB\xBF{}",
		" \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n] \t\r\n} \t\r\n",
		"{\"\": {}, \"b\": [[], [[]], {\"c\": {}}]}",
	};
	scan_out o;
	size_t   i;

	(void) state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		scan(ok[i], &o);
		if (o.last != JSTREAM_END) {
			fail_msg("%s: error %d at %llu", ok[i], o.s.error,
			         (unsigned long long) o.s.error_at);
		}
	}
}

static void
test_nul(void **state)
{
	static const char raw[] = "{\"cost_data\": [{\"provider\": \"a\0b\"}]}";
	scan_out          o;

	(void) state;
	scan_chunks(raw, sizeof(raw) - 1, 0, 4096, &o);
	assert_int_equal(o.s.error, JSTREAM_ERR_NUL);
	assert_int_equal(o.s.error_at, 30);
	/* a \u0000 escape is the record rules' business (a control character) */
	scan("{\"cost_data\": [{\"provider\": \"a\\u0000b\"}]}", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_string_equal(o.ev[0].text, "{\"provider\": \"a\\u0000b\"}");
	/* ... and in a key it does not make one of ours */
	scan("{\"cost_data\\u0000\": [1]}", &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_int_equal(o.s.data, JSTREAM_DATA_MISSING);
	/* an escaped backslash, then the text u0000: no NUL */
	scan("{\"a\": \"\\\\u0000\"}", &o);
	assert_int_equal(o.last, JSTREAM_END);
}

static void
test_depth(void **state)
{
	char    *doc = malloc(2 * JSTREAM_MAX_DEPTH + 8);
	scan_out o;
	size_t   i, n = 0;

	(void) state;
	assert_non_null(doc);
	for (i = 0; i < JSTREAM_MAX_DEPTH; i++) {
		doc[n++] = '[';
	}
	for (i = 0; i < JSTREAM_MAX_DEPTH; i++) {
		doc[n++] = ']';
	}
	scan_chunks(doc, n, 0, 4096, &o);
	assert_int_equal(o.last, JSTREAM_END); /* as deep as cJSON goes */
	memmove(doc + 1, doc, n);
	doc[0] = '[';
	doc[++n] = ']';
	scan_chunks(doc, n + 1, 0, 4096, &o);
	assert_int_equal(o.s.error, JSTREAM_ERR_DEPTH);
	assert_int_equal(o.s.error_at, JSTREAM_MAX_DEPTH);
	free(doc);
}

static void
test_too_big(void **state)
{
	char     doc[600];
	scan_out o;
	size_t   k;

	(void) state;
	snprintf(doc, sizeof(doc),
	         "{\"cost_data\": [{\"a\": \"%0100d\"}, {\"b\": 1}, \"%090d\", 7], "
	         "\"currency\": \"%080d\"}",
	         0, 0, 0);
	/* at most 64 bytes kept: elements 0 and 2 and the currency are too big */
	for (k = 1; k <= 3; k++) {
		scan_chunks(doc, strlen(doc), k == 3 ? 0 : k, 64, &o);
		assert_int_equal(o.last, JSTREAM_END);
		assert_int_equal(o.n, 5);
		assert_int_equal(o.ev[0].kind, JSTREAM_ELEMENT_TOO_BIG);
		assert_int_equal(o.ev[0].index, 0);
		assert_int_equal(o.ev[1].kind, JSTREAM_ELEMENT);
		assert_string_equal(o.ev[1].text, "{\"b\": 1}");
		assert_int_equal(o.ev[2].kind, JSTREAM_ELEMENT_TOO_BIG);
		assert_int_equal(o.ev[2].index, 2);
		assert_int_equal(o.ev[3].kind, JSTREAM_ELEMENT);
		assert_string_equal(o.ev[3].text, "7");
		assert_int_equal(o.ev[4].kind, JSTREAM_CURRENCY_TOO_BIG);
	}
	/* exactly max_span bytes is not too big */
	scan_chunks("{\"cost_data\": [\"123456\"]}", 25, 1, 8, &o);
	assert_int_equal(o.ev[0].kind, JSTREAM_ELEMENT);
	scan_chunks("{\"cost_data\": [\"1234567\"]}", 26, 1, 8, &o);
	assert_int_equal(o.ev[0].kind, JSTREAM_ELEMENT_TOO_BIG);
}

/* ---- the check pass, against the server's parser --------------------------- */

/* xorshift64*: the same documents on every run and every machine. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t
rnd(uint64_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((rng_state * 0x2545F4914F6CDD1DULL) % n);
}

static const char *
pick(const char *const *v, size_t n)
{
	return (v[rnd(n)]);
}

#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

typedef struct text {
	char  *p;
	size_t len, cap;
} text;

static void
put(text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	memcpy(t->p + t->len, s, n + 1);
	t->len += n;
}

static void
ws(text *t)
{
	static const char *const w[] = { "", "", "", " ", "\n  ", "\t", "\r\n" };

	put(t, PICK(w));
}

/* Each list starts with values that are valid (the first *_OK of them), so
 * that most records pass and duplicates and sending get exercised too. */
static const char *const dates[] = {
	"\"2026-01-01\"",
	"\"2026-01-02\"",
	"\"2026-01-03\"",
	"\"2024-02-29\"",
	"\"2026-02-30\"",
	"\"\"",
	"5",
	"null",
	"\" 2026-01-01 \"",
	"\"2026-1-1\"",
};
#define DATES_OK 4
static const char *const providers[] = {
	"\"AWS\"",
	"\"aws \"",
	"\" Gcp\"",
	"\"azure\"",
	"\"\\u00dcn\\u00ef\"",
	"\"]}[{\\\"\"",
	"\"\"",
	"\"x\\u0001\"",
	"\"a\\u0000b\"",
	"null",
	"7",
	"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
};
#define PROVIDERS_OK 6
static const char *const gpus[] = {
	"\"A100\"", "\"h100\"", "\"\\u0041100\"", "\"H100 \"", "[]", "\"\\t\"", "\"\xc3\x28\"",
};
#define GPUS_OK 4
static const char *const costs[] = {
	"1245.67",  "\"1245.67\"",   "1e3",        "999999999999.99",
	"0.000001", "\"7\"",         "0",          "-1",
	"\"1e3\"",  "12.3456789",    "\"abc\"",    "true",
	"null",     "1000000000000", "\" 42.5 \"", "1E-7",
};
#define COSTS_OK 6
static const char *const junk[] = {
	"{}",
	"[]",
	"\"]}[{\"",
	"[1, {\"cost_data\": [2]}]",
	"{\"currency\": \"EUR\"}",
	"-0.5e+3",
	"\"\\\\\\\"\"",
	"[[[[]]]]",
	"false",
	"{\"k\\u0000\": \"\\u0000\"}",
};

static void
gen_field(text *t, const char *name, const char *const *vals, size_t n, size_t n_ok)
{
	put(t, "\"");
	put(t, name);
	put(t, "\":");
	ws(t);
	put(t, pick(vals, rnd(5) != 0 ? n_ok : n));
}

#define FIELD(t, name, v, ok) gen_field(t, name, v, sizeof(v) / sizeof(v[0]), ok)

static void
gen_record(text *t)
{
	static const char *const names[] = { "date", "provider", "gpu_type", "cost_usd", "extra" };
	size_t                   order[5] = { 0, 1, 2, 3, 4 }, i, j, tmp;
	const char              *sep = "";

	if (rnd(25) == 0) {
		put(t, PICK(junk)); /* not an object */
		return;
	}
	for (i = 4; i > 0; i--) {
		j = (size_t) rnd(i + 1);
		tmp = order[i], order[i] = order[j], order[j] = tmp;
	}
	put(t, "{");
	for (i = 0; i < 5; i++) {
		if (rnd(30) == 0 || (order[i] == 4 && rnd(3) != 0)) {
			continue; /* a field left out */
		}
		put(t, sep);
		ws(t);
		switch (order[i]) {
		case 0:
			FIELD(t, names[0], dates, DATES_OK);
			break;
		case 1:
			FIELD(t, names[1], providers, PROVIDERS_OK);
			break;
		case 2:
			FIELD(t, names[2], gpus, GPUS_OK);
			break;
		case 3:
			FIELD(t, names[3], costs, COSTS_OK);
			break;
		default:
			FIELD(t, names[4], junk, sizeof(junk) / sizeof(junk[0]));
			break;
		}
		sep = ",";
	}
	put(t, "}");
}

static void
gen_data(text *t)
{
	size_t n = (size_t) rnd(30), i;

	if (rnd(20) == 0) {
		put(t, rnd(2) ? "null" : "{\"0\": {}}");
		return;
	}
	put(t, "[");
	for (i = 0; i < n; i++) {
		if (i > 0) {
			put(t, ",");
		}
		ws(t);
		gen_record(t);
	}
	ws(t);
	put(t, "]");
}

/* A document with its members in random order, some missing, some twice. */
static void
gen_document(text *t)
{
	static const char *const currencies[] = {
		"\"USD\"", "\"USD\"", "null", "\"EUR\"", "5", "\"US\\u0044\"", "\"usd\"",
	};
	int    members[5] = { 0, 1, 2, 3, 4 }, i, j, tmp;
	size_t k;

	t->len = 0;
	put(t, "");
	ws(t);
	put(t, "{");
	for (i = 4; i > 0; i--) {
		j = (int) rnd((uint64_t) i + 1);
		tmp = members[i], members[i] = members[j], members[j] = tmp;
	}
	for (k = 0; k < 5; k++) {
		if (k > 0) {
			put(t, ",");
		}
		ws(t);
		switch (members[k]) {
		case 0:
			put(t, "\"cost_data\":");
			ws(t);
			gen_data(t);
			break;
		case 1:
			put(t, rnd(4) ? "\"currency\":" : "\"note\":");
			put(t, PICK(currencies));
			break;
		case 2:
			put(t, "\"export_id\": \"e-]}{[\\\"1\"");
			break;
		case 3:
			put(t, rnd(6) ? "\"meta\":" : "\"cost_data\":");
			put(t, PICK(junk));
			break;
		default:
			put(t, "\"currency_note\": \"x\"");
			break;
		}
	}
	ws(t);
	put(t, "}");
	ws(t);
}

/* Random damage: the streaming reader must never do worse than refuse. */
static void
mutate(text *t)
{
	static const char bytes[] = "{}[]\",:\\ 0a-.eu\t";
	size_t            n = 1 + (size_t) rnd(3), i, at;

	for (i = 0; i < n && t->len > 0; i++) {
		at = (size_t) rnd(t->len);
		switch (rnd(3)) {
		case 0:
			t->p[at] = bytes[rnd(sizeof(bytes) - 1)];
			break;
		case 1:
			memmove(t->p + at, t->p + at + 1, t->len - at);
			t->len--;
			break;
		default:
			put(t, " ");
			memmove(t->p + at + 1, t->p + at, t->len - at - 1);
			t->p[at] = bytes[rnd(sizeof(bytes) - 1)];
			break;
		}
	}
}

typedef struct emitted {
	hx_record recs[64];
	size_t    src[64];
	size_t    n;
} emitted;

static int
collect(void *ctx, const hx_record *rec, uint64_t index)
{
	emitted *e = ctx;

	assert_true(e->n < 64);
	e->recs[e->n] = *rec;
	e->src[e->n++] = (size_t) index;
	return (0);
}

/* One pass of the CLI's reader over doc, through a buffer barely bigger
 * than max_span, so that it is refilled and compacted all the time. */
static check_result
stream_pass(const text *doc, check_mode mode, hx_violations *v, bitvec *invalid, uint64_t expect,
            emitted *out, stream_check *result)
{
	FILE        *f = tmpfile();
	doc_reader   rd;
	check_result rc;

	assert_non_null(f);
	assert_int_equal(fwrite(doc->p, 1, doc->len, f), doc->len);
	fflush(f);
	rewind(f);
	assert_int_equal(doc_reader_init(&rd, fileno(f), 1031, 1024), 0);
	stream_check_init(result, mode);
	result->viol = v;
	result->invalid = invalid;
	result->expect = expect;
	result->sink = collect;
	result->ctx = out;
	rc = stream_check_run(result, &rd);
	doc_reader_free(&rd);
	fclose(f);
	return (rc);
}

static int
cmp_violation(const void *a, const void *b)
{
	const hx_violation *x = a, *y = b;
	int                 c = strcmp(x->field, y->field);

	return (c != 0 ? c : strcmp(x->description, y->description));
}

/* Same violations, whatever the order (the server reports currency first;
 * a stream reports it where it is). "$" descriptions are the server's words
 * (docrules.h) and then, from the stream only, where in the file. */
static void
assert_same_violations(hx_violations *server, hx_violations *stream, const char *doc)
{
	size_t i;

	if (server->total != stream->total) {
		fail_msg("violations: server %zu, stream %zu, for %s", server->total, stream->total,
		         doc);
	}
	if (server->len == 0) {
		return; /* and qsort must not be given a NULL array */
	}
	qsort(server->items, server->len, sizeof(hx_violation), cmp_violation);
	qsort(stream->items, stream->len, sizeof(hx_violation), cmp_violation);
	for (i = 0; i < server->len; i++) {
		assert_string_equal(server->items[i].field, stream->items[i].field);
		if (strcmp(server->items[i].field, "$") != 0) {
			assert_string_equal(server->items[i].description,
			                    stream->items[i].description);
		} else if (strncmp(stream->items[i].description, server->items[i].description,
		                   strlen(server->items[i].description)) != 0) {
			fail_msg("\"$\": server '%s', stream '%s', for %s",
			         server->items[i].description, stream->items[i].description, doc);
		}
	}
}

static void
assert_same_records(const hx_batch *server, const emitted *e)
{
	size_t i;

	assert_int_equal(server->len, e->n);
	for (i = 0; i < e->n; i++) {
		assert_int_equal(server->src[i], e->src[i]);
		assert_memory_equal(&server->recs[i], &e->recs[i], sizeof(hx_record));
	}
}

/* The server's verdict on doc, and the stream's two passes, side by side. */
static void
differential(const text *doc, bool must_agree)
{
	hx_violations sv, tv;
	hx_batch      b;
	bitvec        invalid;
	stream_check  c1, c2;
	emitted       out = { .n = 0 };
	bool          stream_doc_ok;

	hx_violations_init(&sv, 0);
	hx_violations_init(&tv, 0);
	hx_batch_init(&b);
	bitvec_init(&invalid);
	hx_export_parse(doc->p, doc->len, &b, &sv);
	assert_int_equal(stream_pass(doc, CHECK_VALIDATE, &tv, &invalid, 0, &out, &c1), CHECK_OK);
	stream_doc_ok = !c1.doc_error;
	/* A document the stream takes is one the server takes, record for record. */
	if (must_agree || stream_doc_ok) {
		assert_same_violations(&sv, &tv, doc->p);
		assert_int_equal(c1.received, b.received);
	}
	if (stream_doc_ok) {
		assert_int_equal(
		    stream_pass(doc, CHECK_EMIT, NULL, &invalid, c1.received, &out, &c2), CHECK_OK);
		assert_same_records(&b, &out);
		stream_check_free(&c2);
	}
	stream_check_free(&c1);
	bitvec_free(&invalid);
	hx_batch_free(&b);
	hx_violations_free(&sv);
	hx_violations_free(&tv);
}

static void
test_same_as_server(void **state)
{
	text t = { NULL, 0, 0 };
	int  i;

	(void) state;
	for (i = 0; i < 3000; i++) {
		gen_document(&t);
		differential(&t, true);
	}
	for (i = 0; i < 3000; i++) {
		gen_document(&t);
		mutate(&t);
		differential(&t, false);
	}
	free(t.p);
}

static void
test_duplicates_across_whole_file(void **state)
{
	text          t = { NULL, 0, 0 };
	hx_violations v;
	bitvec        invalid;
	stream_check  c;
	emitted       out = { .n = 0 };
	char          rec[160];
	int           i;

	(void) state;
	/* 3000 records, far apart duplicates: the 2999th repeats the 1st. */
	put(&t, "{\"cost_data\": [");
	for (i = 0; i < 3000; i++) {
		snprintf(rec, sizeof(rec),
		         "%s{\"date\":\"2026-01-01\",\"provider\":\"p%d\",\"gpu_type\":\"g\","
		         "\"cost_usd\":1}",
		         i ? "," : "", i == 2999 ? 1 : i);
		put(&t, rec);
	}
	put(&t, "]}");
	hx_violations_init(&v, 0);
	bitvec_init(&invalid);
	assert_int_equal(stream_pass(&t, CHECK_VALIDATE, &v, &invalid, 0, &out, &c), CHECK_OK);
	assert_int_equal(v.total, 1);
	assert_string_equal(v.items[0].field, "cost_data[2999]");
	assert_string_equal(v.items[0].description, "duplicate of cost_data[1]");
	assert_true(bitvec_get(&invalid, 2999));
	assert_false(bitvec_get(&invalid, 1));
	assert_int_equal(c.n_invalid, 1);
	stream_check_free(&c);
	bitvec_free(&invalid);
	hx_violations_free(&v);
	free(t.p);
}

static void
test_changed_between_passes(void **state)
{
	text          a = { NULL, 0, 0 }, b = { NULL, 0, 0 };
	hx_violations v;
	bitvec        invalid;
	stream_check  c;
	emitted       out = { .n = 0 };

	(void) state;
	put(&a,
	    "{\"cost_data\": [{\"date\":\"2026-01-01\",\"provider\":\"a\",\"gpu_type\":\"g\","
	    "\"cost_usd\":1}]}");
	put(&b,
	    "{\"cost_data\": [{\"date\":\"2026-01-01\",\"provider\":\"a\",\"gpu_type\":\"g\","
	    "\"cost_usd\":0}]}");
	hx_violations_init(&v, 0);
	bitvec_init(&invalid);
	assert_int_equal(stream_pass(&a, CHECK_VALIDATE, &v, &invalid, 0, &out, &c), CHECK_OK);
	stream_check_free(&c);
	assert_int_equal(stream_pass(&b, CHECK_EMIT, NULL, &invalid, 1, &out, &c), CHECK_CHANGED);
	stream_check_free(&c);
	assert_int_equal(stream_pass(&a, CHECK_EMIT, NULL, &invalid, 2, &out, &c), CHECK_CHANGED);
	stream_check_free(&c);
	bitvec_free(&invalid);
	hx_violations_free(&v);
	free(a.p);
	free(b.p);
}

/* ---- server paths back to file paths -------------------------------------- */

static void
test_pathmap(void **state)
{
	const uint64_t src[] = { 5000, 5002, 5003 };
	char           out[64];

	(void) state;
	pathmap_records("records[2].cost_usd", src, 3, out, sizeof(out));
	assert_string_equal(out, "cost_data[5003].cost_usd");
	pathmap_records("duplicate of records[0]", src, 3, out, sizeof(out));
	assert_string_equal(out, "duplicate of cost_data[5000]");
	pathmap_records("records[3].date", src, 3, out, sizeof(out));
	assert_string_equal(out, "records[3].date"); /* out of range: as it is */
	pathmap_records("records[x] records[1]", src, 3, out, sizeof(out));
	assert_string_equal(out, "records[x] cost_data[5002]");
	pathmap_records("$", src, 3, out, sizeof(out));
	assert_string_equal(out, "$");
	pathmap_records("records[1].provider", src, 3, out, 12);
	assert_string_equal(out, "cost_data[5");
}

/* v2: "replace" and "provenance" are reported like "currency": the first of
 * each at the top level, wherever it stands, in any chunking; nested ones
 * and later repeats are not. */
static void
test_replace_and_provenance(void **state)
{
	static const char doc[] =
	    "{\"cost_data\": [{\"replace\": 1}], \"replace\": [{\"provider\": \"aws\", "
	    "\"from_date\": \"2024-09-01\", \"to_date\": \"2024-09-30\"}], \"x\": {\"provenance\": "
	    "0}, "
	    "\"provenance\": {\"format\": \"focus-1.0\"}, \"replace\": [], \"provenance\": null}";
	scan_out o, p;
	size_t   chunk;

	(void) state;
	scan(doc, &o);
	assert_int_equal(o.last, JSTREAM_END);
	assert_int_equal(o.n, 3);
	assert_int_equal(o.ev[0].kind, JSTREAM_ELEMENT);
	assert_int_equal(o.ev[1].kind, JSTREAM_REPLACE);
	assert_string_equal(o.ev[1].text,
	                    "[{\"provider\": \"aws\", \"from_date\": \"2024-09-01\", "
	                    "\"to_date\": \"2024-09-30\"}]");
	assert_int_equal(o.ev[2].kind, JSTREAM_PROVENANCE);
	assert_string_equal(o.ev[2].text, "{\"format\": \"focus-1.0\"}");
	for (chunk = 1; chunk < 12; chunk++) {
		scan_chunks(doc, strlen(doc), chunk, 4096, &p);
		assert_same_scan(&o, &p);
	}
	/* longer than max_span: reported as too big, not kept */
	scan_chunks(doc, strlen(doc), 7, 40, &p);
	assert_int_equal(p.ev[1].kind, JSTREAM_REPLACE_TOO_BIG);
	assert_int_equal(p.ev[2].kind, JSTREAM_PROVENANCE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_anywhere),
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_member_order),
		cmocka_unit_test(test_data_kinds),
		cmocka_unit_test(test_top_level_not_object),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_same_as_server),
		cmocka_unit_test(test_duplicates_across_whole_file),
		cmocka_unit_test(test_changed_between_passes),
		cmocka_unit_test(test_pathmap),
		cmocka_unit_test(test_replace_and_provenance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

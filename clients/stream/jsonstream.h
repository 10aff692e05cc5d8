/*
 * jsonstream.h - an incremental scanner for the cost export document, so the
 * CLI can ingest a file of any size with a fixed amount of memory.
 *
 * The scanner is fed the document in pieces of any size (a byte at a time
 * works) and never holds on to them: it is a pushdown state machine that
 * checks the whole document's JSON syntax and reports, by absolute byte
 * offsets, the spans the caller must look at:
 *
 *   - every element of the top-level "cost_data" array, in order;
 *   - the top-level "currency" value;
 *   - v2: the top-level "replace" and "provenance" values.
 *
 * The caller keeps the bytes from jstream_keep_from() on (so a span is still
 * in its buffer when reported) and parses each span with cJSON. A span longer
 * than `max_span` is reported as too big instead, and is not kept.
 *
 * Agreement with the server (src/core/export.c, cJSON over the whole document):
 * the first "cost_data" and the first "currency" count, as with cJSON's
 * lookup; keys are compared after decoding escapes; raw control bytes and
 * \u0000 escapes are allowed inside strings (the record rules judge them); a
 * raw NUL byte anywhere is its own error; a UTF-8 byte order mark is
 * skipped; nesting deeper than cJSON's limit is refused. Numbers, literals
 * and white space follow RFC 8259 strictly (cJSON also takes "01" or "1.").
 *
 * Pure: no I/O, no allocation. Unit-tested and fuzzed on its own.
 */
#ifndef HELIOX_JSONSTREAM_H
#define HELIOX_JSONSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cJSON's CJSON_NESTING_LIMIT: deeper documents fail on the server too. */
#define JSTREAM_MAX_DEPTH 1000
/* Longest key compared: the ones we look for are shorter. */
#define JSTREAM_KEY_MAX 16

typedef enum jstream_event {
	JSTREAM_MORE = 0,         /* every byte given was used: feed more, or finish */
	JSTREAM_ELEMENT,          /* cost_data[index] is [span_start, span_end) */
	JSTREAM_ELEMENT_TOO_BIG,  /* cost_data[index] is longer than max_span */
	JSTREAM_CURRENCY,         /* "currency" is [span_start, span_end) */
	JSTREAM_CURRENCY_TOO_BIG, /* "currency" is longer than max_span */
	JSTREAM_END,              /* the document is complete and well formed */
	JSTREAM_ERROR,            /* see `error` and `error_at`; sticky */
	JSTREAM_REPLACE,          /* v2: "replace" is [span_start, span_end) */
	JSTREAM_REPLACE_TOO_BIG,
	JSTREAM_PROVENANCE, /* v2: "provenance" is [span_start, span_end) */
	JSTREAM_PROVENANCE_TOO_BIG,
} jstream_event;

typedef enum jstream_error {
	JSTREAM_ERR_NONE = 0,
	JSTREAM_ERR_SYNTAX,    /* not JSON */
	JSTREAM_ERR_NUL,       /* a raw NUL byte */
	JSTREAM_ERR_DEPTH,     /* nested deeper than JSTREAM_MAX_DEPTH */
	JSTREAM_ERR_TRUNCATED, /* the input ended inside the document */
} jstream_error;

/* What the first top-level "cost_data" turned out to be. */
typedef enum jstream_data {
	JSTREAM_DATA_MISSING = 0,
	JSTREAM_DATA_NULL,
	JSTREAM_DATA_OTHER, /* neither an array nor null */
	JSTREAM_DATA_ARRAY,
} jstream_data;

/* Opaque in spirit: callers read only the fields marked "out". */
typedef struct jstream {
	size_t   max_span;
	uint64_t pos; /* out: absolute offset of the next byte */

	/* lexer */
	uint8_t     expect;  /* what the structure allows next */
	uint8_t     lex;     /* inside a string, number or literal */
	uint8_t     sub;     /* that token's own state */
	uint8_t     nhex;    /* hex digits of a \u escape seen */
	uint16_t    unit;    /* the \u escape's value so far */
	bool        is_key;  /* the string being read is an object key */
	const char *literal; /* "true", "false" or "null" while matching one */
	uint8_t     bom;     /* bytes of a leading UTF-8 BOM seen */

	/* structure */
	uint32_t depth;
	char     stack[JSTREAM_MAX_DEPTH]; /* '{' or '[' per open container */

	/* the top-level keys we look for */
	char    key[JSTREAM_KEY_MAX];
	size_t  key_len; /* > JSTREAM_KEY_MAX: too long to be one of ours */
	uint8_t role;    /* what the current top-level value is */
	bool    seen_data, seen_currency, seen_replace, seen_provenance, in_data;

	/* the span being followed */
	bool    spanning, retain;
	uint8_t span_kind;

	/* out */
	uint64_t      span_start, span_end;
	uint64_t      index;      /* the element's position in cost_data */
	uint64_t      n_elements; /* elements begun so far */
	bool          root_object;
	jstream_data  data;
	jstream_error error;
	uint64_t      error_at;
} jstream;

void jstream_init(jstream *s, size_t max_span);

/*
 * Scans p[0..n), the bytes at offset s->pos. Returns at the first event, with
 * *used the bytes consumed (the rest must be fed again), or JSTREAM_MORE with
 * *used == n. JSTREAM_END comes only from jstream_finish().
 */
jstream_event jstream_feed(jstream *s, const char *p, size_t n, size_t *used);

/* The input is over: JSTREAM_END, or JSTREAM_ERROR (maybe TRUNCATED). */
jstream_event jstream_finish(jstream *s);

/* The first byte the caller must still hold: a span being followed starts
 * there, or nothing before s->pos is needed any more. */
uint64_t jstream_keep_from(const jstream *s);

/* A short English reason: "unexpected character", "ends early", ... Static. */
const char *jstream_strerror(jstream_error e);

#endif /* HELIOX_JSONSTREAM_H */

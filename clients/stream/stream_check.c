/*
 * stream_check.c - one pass over an export document (see stream_check.h).
 *
 * Each element goes through hx_export_parse_record() into a one-record
 * hx_batch: that is the server's own parsing, validation and normalisation,
 * with the element's index in the original file in every path. Its
 * violations land in a scratch list first, so that a document-level one
 * ("$") can be told from a record's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heliox/docrules.h"
#include "heliox/export.h"

#include "stream_check.h"

/* How often the tick is called: cheap enough, often enough for ~10 Hz. */
#define CHECK_TICK_EVERY 4096u
/* One record's violations: four fields and a duplicate. */
#define CHECK_SCRATCH_LIMIT 8u

void
stream_check_init(stream_check *c, check_mode mode)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode;
	keyset_init(&c->keys);
	hx_batch_init(&c->one);
	hx_violations_init(&c->scratch, CHECK_SCRATCH_LIMIT);
}

void
stream_check_free(stream_check *c)
{
	keyset_free(&c->keys);
	hx_batch_free(&c->one);
	hx_violations_free(&c->scratch);
}

/* ---- violations ---------------------------------------------------------- */

/* One of the document's own rules, worded as the server words it
 * (docrules.h); `where`, when not NULL, says where in the file. */
static check_result
doc_violation(stream_check *c, hx_doc_rule rule, const char *where)
{
	c->doc_error = true;
	return (hx_doc_violation(c->viol, rule, where) == HX_OK ? CHECK_OK : CHECK_NOMEM);
}

/* The record's violations, moved to the caller's list. A "$" means cJSON
 * refused an element the scanner took: the document is at fault. */
static check_result
move_scratch(stream_check *c)
{
	size_t i;

	for (i = 0; i < c->scratch.len; i++) {
		const hx_violation *v = &c->scratch.items[i];

		if (strcmp(v->field, "$") == 0) {
			c->doc_error = true;
		}
		if (hx_violations_add(c->viol, v->field, "%s", v->description) != HX_OK) {
			return (CHECK_NOMEM);
		}
	}
	return (CHECK_OK);
}

/* A syntax error makes every other finding moot, as on the server, where
 * the document is not parsed at all: "$" is then the only violation. */
static check_result
syntax_error(stream_check *c, const jstream *js)
{
	char        where[HX_DESC_MAX];
	hx_doc_rule rule;

	if (js->error == JSTREAM_ERR_NUL) {
		rule = HX_DOC_NUL;
		snprintf(where, sizeof(where), " (at byte offset %" PRIu64 ")", js->error_at);
	} else {
		rule = HX_DOC_NOT_JSON;
		snprintf(where, sizeof(where), ": %s at byte offset %" PRIu64,
		         jstream_strerror(js->error), js->error_at);
	}
	hx_violations_clear(c->viol);
	c->received = 0; /* as on the server: no document, no records */
	return (doc_violation(c, rule, where));
}

/* The document's shape, known at its end: the same checks as
 * src/core/export.c makes on a parsed document, in its words (docrules.h). */
static check_result
document_end(stream_check *c, const jstream *js)
{
	if (!js->root_object) {
		hx_violations_clear(c->viol);
		c->received = 0;
		return (doc_violation(c, HX_DOC_NOT_OBJECT, NULL));
	}
	switch (js->data) {
	case JSTREAM_DATA_MISSING:
	case JSTREAM_DATA_NULL:
		return (doc_violation(c, HX_DOC_DATA_MISSING, NULL));
	case JSTREAM_DATA_OTHER:
		return (doc_violation(c, HX_DOC_DATA_NOT_ARRAY, NULL));
	default:
		/* With replace windows an empty export is the truth "nothing
		 * in there", as on the server. */
		if (js->n_elements == 0 && (c->meta == NULL || c->meta->windows_received == 0)) {
			return (doc_violation(c, HX_DOC_DATA_EMPTY, NULL));
		}
		return (CHECK_OK);
	}
}

/* ---- records --------------------------------------------------------------- */

/* Parses and validates one element into c->one. Returns HX_OK (valid),
 * HX_INVALID_ARGUMENT (violations in scratch) or HX_RESOURCE_EXHAUSTED. */
static hx_status
parse_element(stream_check *c, const doc_event *ev)
{
	hx_batch_reset(&c->one);
	hx_violations_clear(&c->scratch);
	return (
	    hx_export_parse_record(ev->span, ev->len, (size_t) ev->index, &c->one, &c->scratch));
}

/* Same wording as hx_batch_add's duplicate within one request. */
static hx_status
check_duplicate(stream_check *c, uint64_t index)
{
	char     field[HX_FIELD_MAX];
	uint32_t first;
	int      rc;

	rc = keyset_add(&c->keys, keyset_hash(&c->one.recs[0]), (uint32_t) index, &first);
	if (rc < 0) {
		return (HX_RESOURCE_EXHAUSTED);
	}
	if (rc == 0) {
		return (HX_OK);
	}
	snprintf(field, sizeof(field), "cost_data[%" PRIu64 "]", index);
	if (hx_violations_add(&c->scratch, field, "duplicate of cost_data[%" PRIu32 "]", first) !=
	    HX_OK) {
		return (HX_RESOURCE_EXHAUSTED);
	}
	return (HX_INVALID_ARGUMENT);
}

static check_result
mark_invalid(stream_check *c, uint64_t index)
{
	c->n_invalid++;
	return (bitvec_set(c->invalid, index) == 0 ? CHECK_OK : CHECK_NOMEM);
}

static check_result
validate_element(stream_check *c, const doc_event *ev)
{
	hx_status    st = parse_element(c, ev);
	check_result rc;

	if (st == HX_OK) {
		st = check_duplicate(c, ev->index);
	}
	if (st == HX_RESOURCE_EXHAUSTED) {
		return (CHECK_NOMEM);
	}
	if ((rc = move_scratch(c)) != CHECK_OK || st == HX_OK) {
		return (rc);
	}
	return (mark_invalid(c, ev->index));
}

static check_result
too_big(stream_check *c, const doc_event *ev, size_t max_span)
{
	char field[HX_FIELD_MAX];

	snprintf(field, sizeof(field), "cost_data[%" PRIu64 "]", ev->index);
	if (hx_violations_add(c->viol, field, "is longer than %zu bytes", max_span) != HX_OK) {
		return (CHECK_NOMEM);
	}
	return (mark_invalid(c, ev->index));
}

/* The second pass: what the first found valid must still be valid. */
static check_result
emit_element(stream_check *c, const doc_event *ev)
{
	hx_status st;

	if (ev->index >= c->expect) {
		return (CHECK_CHANGED);
	}
	if (bitvec_get(c->invalid, ev->index)) {
		return (CHECK_OK);
	}
	if (ev->kind == JSTREAM_ELEMENT_TOO_BIG) {
		return (CHECK_CHANGED);
	}
	if ((st = parse_element(c, ev)) != HX_OK) {
		return (st == HX_RESOURCE_EXHAUSTED ? CHECK_NOMEM : CHECK_CHANGED);
	}
	return (c->sink(c->ctx, &c->one.recs[0], ev->index) == 0 ? CHECK_OK : CHECK_STOPPED);
}

/* ---- the pass -------------------------------------------------------------- */

static check_result
on_element(stream_check *c, const doc_event *ev, const doc_reader *r)
{
	check_result rc;

	/* Indexes are kept in 32 bits (keyset.h). */
	if (ev->index >= UINT32_MAX) {
		return (CHECK_TOO_MANY);
	}
	c->received = ev->index + 1;
	if (c->mode == CHECK_EMIT) {
		rc = emit_element(c, ev);
	} else if (ev->kind == JSTREAM_ELEMENT_TOO_BIG) {
		rc = too_big(c, ev, r->js.max_span);
	} else {
		rc = validate_element(c, ev);
	}
	if (rc == CHECK_OK && c->tick != NULL && c->received % CHECK_TICK_EVERY == 0 &&
	    c->tick(c->ctx, c->received, doc_reader_bytes(r)) != 0) {
		rc = CHECK_STOPPED;
	}
	return (rc);
}

static check_result
on_currency(stream_check *c, const doc_event *ev)
{
	hx_status st;

	if (c->mode == CHECK_EMIT) {
		return (CHECK_OK);
	}
	if (ev->kind == JSTREAM_CURRENCY_TOO_BIG) {
		/* Far too long to be "USD" however it is escaped. */
		return (doc_violation(c, HX_DOC_CURRENCY, NULL));
	}
	st = hx_export_check_currency(ev->span, ev->len, c->viol);
	if (st == HX_RESOURCE_EXHAUSTED) {
		return (CHECK_NOMEM);
	}
	c->doc_error = c->doc_error || st != HX_OK;
	return (CHECK_OK);
}

/* v2: "replace" and "provenance", parsed by the core library into c->meta
 * with the server's rules and paths. Their faults are the document's. */
static check_result
on_meta(stream_check *c, const doc_event *ev, size_t max_span)
{
	bool      replace = ev->kind == JSTREAM_REPLACE || ev->kind == JSTREAM_REPLACE_TOO_BIG;
	hx_status st;

	if (c->mode == CHECK_EMIT || c->meta == NULL) {
		return (CHECK_OK);
	}
	if (ev->kind == JSTREAM_REPLACE_TOO_BIG || ev->kind == JSTREAM_PROVENANCE_TOO_BIG) {
		if (replace) {
			/* It was there: an empty cost_data stays allowed. */
			c->meta->windows_received++;
		}
		/* The stream's own limit (the server's is the message size):
		 * worded as too_big words an element. */
		c->doc_error = true;
		return (hx_violations_add(c->viol, replace ? "replace" : "provenance",
		                          "is longer than %zu bytes", max_span) == HX_OK
		            ? CHECK_OK
		            : CHECK_NOMEM);
	}
	st = replace ? hx_export_parse_replace(ev->span, ev->len, c->meta, c->viol)
	             : hx_export_parse_provenance(ev->span, ev->len, c->meta, c->viol);
	if (st == HX_RESOURCE_EXHAUSTED) {
		return (CHECK_NOMEM);
	}
	c->doc_error = c->doc_error || st != HX_OK;
	return (CHECK_OK);
}

/* The document is over, well formed or not. */
static check_result
on_end(stream_check *c, const doc_event *ev, const jstream *js)
{
	if (c->mode == CHECK_EMIT) {
		return (ev->kind == JSTREAM_END && js->n_elements == c->expect ? CHECK_OK
		                                                               : CHECK_CHANGED);
	}
	if (ev->kind == JSTREAM_ERROR) {
		return (syntax_error(c, js));
	}
	return (document_end(c, js));
}

check_result
stream_check_run(stream_check *c, doc_reader *r)
{
	check_result rc = CHECK_OK;
	doc_event    ev;

	while (rc == CHECK_OK) {
		if (doc_reader_next(r, &ev) != 0) {
			return (CHECK_IO);
		}
		switch (ev.kind) {
		case JSTREAM_ELEMENT:
		case JSTREAM_ELEMENT_TOO_BIG:
			rc = on_element(c, &ev, r);
			break;
		case JSTREAM_CURRENCY:
		case JSTREAM_CURRENCY_TOO_BIG:
			rc = on_currency(c, &ev);
			break;
		case JSTREAM_REPLACE:
		case JSTREAM_REPLACE_TOO_BIG:
		case JSTREAM_PROVENANCE:
		case JSTREAM_PROVENANCE_TOO_BIG:
			rc = on_meta(c, &ev, r->js.max_span);
			break;
		default:
			return (on_end(c, &ev, &r->js));
		}
	}
	return (rc);
}

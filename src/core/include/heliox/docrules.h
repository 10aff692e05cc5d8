/*
 * docrules.h - the wording of the export document's own rules (contract
 * section 4): what is wrong with the document as a whole, or with one of
 * its top-level members, as opposed to a record's fields.
 *
 * Two front ends judge a document: the server parses it whole with cJSON
 * (export.c), the CLI scans a file of any size as a stream
 * (clients/stream). Both word these violations from this one table, so a
 * user sees the same field and the same words from either; the stream
 * only adds where in the file (" at byte offset N").
 *
 * In-tree only (hx_core), not installed. No I/O.
 */
#ifndef HELIOX_DOCRULES_H
#define HELIOX_DOCRULES_H

#include "heliox/heliox.h"
#include "heliox/record.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum hx_doc_rule {
	HX_DOC_NUL,                  /* "$"          contains a NUL character */
	HX_DOC_NOT_JSON,             /* "$"          is not valid JSON */
	HX_DOC_NOT_OBJECT,           /* "$"          must be a JSON object */
	HX_DOC_DATA_MISSING,         /* "cost_data"  is required */
	HX_DOC_DATA_NOT_ARRAY,       /* "cost_data"  must be an array */
	HX_DOC_DATA_EMPTY,           /* "cost_data"  must not be empty */
	HX_DOC_CURRENCY,             /* "currency"   must be "USD" */
	HX_DOC_REPLACE_TWICE,        /* "replace"    given in the request and the document */
	HX_DOC_REPLACE_NOT_ARRAY,    /* "replace"    must be an array */
	HX_DOC_PROVENANCE_NOT_OBJECT /* "provenance" must be an object */
} hx_doc_rule;

/* The rule's field ("$", "cost_data", ...) and its description, static. */
const char *hx_doc_rule_field(hx_doc_rule rule);
const char *hx_doc_rule_text(hx_doc_rule rule);

/* Adds the rule's violation to v; `where`, when not NULL, is appended to the
 * description as it is (the stream's ": ends early at byte offset 812").
 * Returns what hx_violations_add returns. */
hx_status hx_doc_violation(hx_violations *v, hx_doc_rule rule, const char *where);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_DOCRULES_H */

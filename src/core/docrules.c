/*
 * docrules.c - the one wording of the export document's rules (see
 * docrules.h), for the server's parser and the CLI's streaming scanner.
 */
#include <stddef.h>

#include "heliox/docrules.h"

static const struct {
	const char *field;
	const char *text;
} rules[] = {
	[HX_DOC_NUL] = { "$", "contains a NUL character" },
	[HX_DOC_NOT_JSON] = { "$", "is not valid JSON" },
	[HX_DOC_NOT_OBJECT] = { "$", "must be a JSON object" },
	[HX_DOC_DATA_MISSING] = { "cost_data", "is required" },
	[HX_DOC_DATA_NOT_ARRAY] = { "cost_data", "must be an array" },
	[HX_DOC_DATA_EMPTY] = { "cost_data", "must not be empty" },
	[HX_DOC_CURRENCY] = { "currency", "must be \"USD\"" },
	[HX_DOC_REPLACE_TWICE] = { "replace",
	                           "is given both in the request and in the export document" },
	[HX_DOC_REPLACE_NOT_ARRAY] = { "replace", "must be an array" },
	[HX_DOC_PROVENANCE_NOT_OBJECT] = { "provenance", "must be an object" },
};

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

const char *
hx_doc_rule_field(hx_doc_rule rule)
{
	return ((size_t) rule < N_RULES ? rules[rule].field : "$");
}

const char *
hx_doc_rule_text(hx_doc_rule rule)
{
	return ((size_t) rule < N_RULES ? rules[rule].text : "is not a valid export document");
}

hx_status
hx_doc_violation(hx_violations *v, hx_doc_rule rule, const char *where)
{
	return (hx_violations_add(v, hx_doc_rule_field(rule), "%s%s", hx_doc_rule_text(rule),
	                          where != NULL ? where : ""));
}

/*
 * export.c - reads a cost export document (contract section 4) with cJSON
 * and hands each cost_data element to hx_batch_add().
 *
 * cJSON gives back C strings and doubles, which loses two things we must
 * not lose: a NUL inside a string (it would silently cut the value short),
 * and a number's decimal text. The first is rewritten before parsing into a
 * control character validation refuses on its own field; the second is
 * rebuilt exactly by hx_money_from_double().
 */
#include <math.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/text.h"
#include "heliox/export.h"

/* A raw NUL byte: never valid JSON (control characters must be escaped). */
static bool
has_nul(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

/* Offset of the 'u' of the next \u0000 escape at or after `from`, or len.
 * An escaped backslash followed by "u0000" is not one, hence the walk over
 * escapes. */
static size_t
next_nul_escape(const char *s, size_t len, size_t from)
{
	size_t i;

	for (i = from; i + 1 < len; i++) {
		if (s[i] != '\\') {
			continue;
		}
		i++; /* the escaped character; the loop steps past it */
		if (s[i] == 'u' && len - i > 4 && memcmp(s + i + 1, "0000", 4) == 0) {
			return i;
		}
	}
	return len;
}

/*
 * A copy of the document with every \u0000 escape turned into \u0001, or
 * NULL when out of memory. cJSON would end the value's C string at the NUL
 * and silently cut it short; \u0001 keeps the value whole and is refused by
 * validation as the control character it stands for, on the exact field
 * ("cost_data[1].provider: contains a control character").
 */
static char *
copy_without_nul_escapes(const char *s, size_t len)
{
	char  *copy = malloc(len);
	size_t i = 0;

	if (copy == NULL) {
		return NULL;
	}
	memcpy(copy, s, len);
	while ((i = next_nul_escape(copy, len, i)) < len) {
		copy[i + 4] = '1';
	}
	return copy;
}

/* The document, or NULL. cJSON stops after the first value, so trailing
 * bytes other than white space ("{} junk") are checked for here. */
static cJSON *
parse_document(const char *json, size_t len)
{
	const char *end = NULL;
	char       *copy = NULL;
	cJSON      *root;

	if (next_nul_escape(json, len, 0) < len) {
		if ((copy = copy_without_nul_escapes(json, len)) == NULL) {
			return NULL; /* reported as invalid JSON, like cJSON's own OOM */
		}
		json = copy;
	}
	root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (root != NULL) {
		while (end < json + len && hx_text_is_space(*end)) {
			end++;
		}
		if (end != json + len) {
			cJSON_Delete(root);
			root = NULL;
		}
	}
	free(copy);
	return root;
}

/*
 * The decimal text of a JSON number. When none can be written (|d| >= 1e21,
 * or too small to write out in full), a stand-in with the same verdict is
 * used, so that the cost is still judged by hx_check_cost() next to the
 * record's other fields, in one place.
 */
static void
number_text(double d, char buf[HX_MONEY_TEXT_MAX])
{
	if (hx_money_from_double(d, buf) == 0) {
		return;
	}
	if (!(fabs(d) < 1)) {
		snprintf(buf, HX_MONEY_TEXT_MAX, "%s", d < 0 ? "-1000000000000" : "1000000000000");
	} else {
		snprintf(buf, HX_MONEY_TEXT_MAX, "%s", d < 0 ? "-0.0000001" : "0.0000001");
	}
}

static void
raw_value(const cJSON *it, hx_raw_value *v, char buf[HX_MONEY_TEXT_MAX])
{
	memset(v, 0, sizeof(*v));
	if (it == NULL) {
		v->kind = HX_RAW_MISSING;
	} else if (cJSON_IsNull(it)) {
		v->kind = HX_RAW_NULL;
	} else if (cJSON_IsString(it) && it->valuestring != NULL) {
		v->kind = HX_RAW_STRING;
		v->s = it->valuestring;
		v->len = strlen(it->valuestring);
	} else if (cJSON_IsNumber(it)) {
		number_text(it->valuedouble, buf);
		v->kind = HX_RAW_NUMBER;
		v->s = buf;
		v->len = strlen(buf);
	} else {
		v->kind = HX_RAW_OTHER;
	}
}

static hx_status
parse_record(const cJSON *el, size_t i, hx_batch *b, hx_violations *viol)
{
	char          num[5][HX_MONEY_TEXT_MAX];
	char          field[HX_FIELD_MAX];
	hx_raw_record raw;
	hx_status     st;

	if (!cJSON_IsObject(el)) {
		b->received++; /* hx_batch_add counts the others */
		snprintf(field, sizeof(field), "cost_data[%zu]", i);
		return hx_violations_add(viol, field, "must be an object");
	}
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "date"), &raw.date, num[0]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "provider"), &raw.provider, num[1]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "gpu_type"), &raw.gpu_type, num[2]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "cost_usd"), &raw.cost_usd, num[3]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "gpu_hours"), &raw.gpu_hours, num[4]);
	st = hx_batch_add(b, &raw, "cost_data", i, viol);
	/* An invalid record is already in `viol`; only running out of memory
	 * stops the walk. */
	return st == HX_RESOURCE_EXHAUSTED ? st : HX_OK;
}

/* Adds the "currency" violation when `cur` is present but not "USD". */
static hx_status
check_currency(const cJSON *cur, hx_violations *viol)
{
	/* null counts as absent, as it does for a record's fields. */
	if (cur != NULL && !cJSON_IsNull(cur) &&
	    !(cJSON_IsString(cur) && strcmp(cur->valuestring, "USD") == 0)) {
		return hx_violations_add(viol, "currency", "must be \"USD\"");
	}
	return HX_OK;
}

/* One element of "replace"; only running out of memory stops the walk. */
static hx_status
parse_window(const cJSON *el, size_t i, hx_batch *b, hx_violations *viol)
{
	char         num[3][HX_MONEY_TEXT_MAX];
	char         field[HX_FIELD_MAX];
	hx_raw_value prov, from, to;
	hx_status    st;

	if (!cJSON_IsObject(el)) {
		b->windows_received++;
		snprintf(field, sizeof(field), "replace[%zu]", i);
		return hx_violations_add(viol, field, "must be an object");
	}
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "provider"), &prov, num[0]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "from_date"), &from, num[1]);
	raw_value(cJSON_GetObjectItemCaseSensitive(el, "to_date"), &to, num[2]);
	st = hx_batch_add_window(b, &prov, &from, &to, i, viol);
	return st == HX_RESOURCE_EXHAUSTED ? st : HX_OK;
}

static hx_status
check_replace(const cJSON *rep, hx_batch *b, hx_violations *viol)
{
	const cJSON *el;
	size_t       i = 0;
	hx_status    st;

	if (rep == NULL || cJSON_IsNull(rep)) {
		return HX_OK;
	}
	/* The request's own windows came first (src/ingest.c): two sets of
	 * windows would make the paths ambiguous and the truth unclear. */
	if (b->windows_received > 0) {
		return hx_violations_add(viol, "replace",
		                         "is given both in the request and in the export document");
	}
	if (!cJSON_IsArray(rep)) {
		return hx_violations_add(viol, "replace", "must be an array");
	}
	cJSON_ArrayForEach(el, rep)
	{
		if ((st = parse_window(el, i++, b, viol)) != HX_OK) {
			return st;
		}
	}
	return HX_OK;
}

static hx_status
check_provenance(const cJSON *p, hx_batch *b, hx_violations *viol)
{
	static const struct {
		const char *key;
		size_t      off, max;
	} fields[] = {
		{ "format", offsetof(hx_provenance, format), HX_PROV_TEXT_MAX },
		{ "name", offsetof(hx_provenance, name), HX_PROV_NAME_MAX },
		{ "mapping_version", offsetof(hx_provenance, mapping_version), HX_PROV_TEXT_MAX },
	};
	char         num[HX_MONEY_TEXT_MAX], path[HX_FIELD_MAX];
	hx_raw_value v;
	const char  *why;
	hx_status    st = HX_OK;
	size_t       k;

	if (p == NULL || cJSON_IsNull(p)) {
		return HX_OK;
	}
	if (!cJSON_IsObject(p)) {
		return hx_violations_add(viol, "provenance", "must be an object");
	}
	for (k = 0; k < sizeof(fields) / sizeof(fields[0]) && st == HX_OK; k++) {
		raw_value(cJSON_GetObjectItemCaseSensitive(p, fields[k].key), &v, num);
		why = hx_check_prov_text(&v, fields[k].max, (char *) &b->prov + fields[k].off);
		if (why != NULL) {
			snprintf(path, sizeof(path), "provenance.%s", fields[k].key);
			st = hx_violations_add(viol, path, "%s", why);
		}
	}
	return st;
}

static hx_status
parse_object(const cJSON *root, hx_batch *b, hx_violations *viol)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "cost_data");
	const cJSON *el;
	size_t       i = 0;
	hx_status    st;

	st = check_currency(cJSON_GetObjectItemCaseSensitive(root, "currency"), viol);
	if (st == HX_OK) {
		st =
		    check_provenance(cJSON_GetObjectItemCaseSensitive(root, "provenance"), b, viol);
	}
	/* Windows before records: a record is judged against its window. */
	if (st == HX_OK) {
		st = check_replace(cJSON_GetObjectItemCaseSensitive(root, "replace"), b, viol);
	}
	if (st != HX_OK) {
		return st;
	}
	if (data == NULL || cJSON_IsNull(data)) {
		return hx_violations_add(viol, "cost_data", "is required");
	}
	if (!cJSON_IsArray(data)) {
		return hx_violations_add(viol, "cost_data", "must be an array");
	}
	/* With windows an empty export is the truth "nothing in there". */
	if (data->child == NULL && b->windows_received == 0) {
		return hx_violations_add(viol, "cost_data", "must not be empty");
	}
	cJSON_ArrayForEach(el, data)
	{
		if ((st = parse_record(el, i++, b, viol)) != HX_OK) {
			return st;
		}
	}
	st = hx_batch_check_windows(b, "cost_data", viol, NULL);
	return st == HX_RESOURCE_EXHAUSTED ? st : HX_OK;
}

hx_status
hx_export_parse(const char *json, size_t len, hx_batch *b, hx_violations *viol)
{
	size_t    before = viol->total;
	cJSON    *root = NULL;
	hx_status st;

	if (json == NULL) {
		len = 0;
	}
	if (len > 0 && has_nul(json, len)) {
		st = hx_violations_add(viol, "$", "contains a NUL character");
	} else if ((root = parse_document(json, len)) == NULL) {
		/* cJSON does not tell running out of memory from bad syntax. */
		st = hx_violations_add(viol, "$", "is not valid JSON");
	} else if (!cJSON_IsObject(root)) {
		st = hx_violations_add(viol, "$", "must be a JSON object");
	} else {
		st = parse_object(root, b, viol);
	}
	cJSON_Delete(root);
	if (st != HX_OK) {
		return st;
	}
	return viol->total > before ? HX_INVALID_ARGUMENT : HX_OK;
}

/*
 * The streaming reader's way in (clients/): the pieces of a document it has
 * found itself go through the same code as a whole document does above, so
 * the rules and their wording stay in one place.
 */

/* Parses one value's text; on failure adds the violation "$" as
 * hx_export_parse would for the whole document. */
static hx_status
parse_piece(const char *json, size_t len, cJSON **out, hx_violations *viol)
{
	*out = NULL;
	if (json == NULL) {
		len = 0;
	}
	if (len > 0 && has_nul(json, len)) {
		return hx_violations_add(viol, "$", "contains a NUL character");
	}
	if ((*out = parse_document(json, len)) == NULL) {
		return hx_violations_add(viol, "$", "is not valid JSON");
	}
	return HX_OK;
}

hx_status
hx_export_parse_record(const char *json, size_t len, size_t index, hx_batch *b, hx_violations *viol)
{
	size_t    before = viol->total;
	cJSON    *el;
	hx_status st;

	if ((st = parse_piece(json, len, &el, viol)) == HX_OK && el != NULL) {
		st = parse_record(el, index, b, viol);
	} else if (st == HX_OK) {
		b->received++; /* not JSON: still a record offered, and refused */
	}
	cJSON_Delete(el);
	if (st != HX_OK) {
		return st;
	}
	return viol->total > before ? HX_INVALID_ARGUMENT : HX_OK;
}

/* One span of the document (a "replace" or "provenance" value the CLI's
 * scanner cut out), checked by `check` into b. */
static hx_status
parse_checked(const char *json, size_t len, hx_batch *b, hx_violations *viol,
              hx_status (*check)(const cJSON *, hx_batch *, hx_violations *))
{
	size_t    before = viol->total;
	cJSON    *piece;
	hx_status st;

	if ((st = parse_piece(json, len, &piece, viol)) == HX_OK && piece != NULL) {
		st = check(piece, b, viol);
	}
	cJSON_Delete(piece);
	if (st != HX_OK) {
		return st;
	}
	return viol->total > before ? HX_INVALID_ARGUMENT : HX_OK;
}

hx_status
hx_export_parse_replace(const char *json, size_t len, hx_batch *b, hx_violations *viol)
{
	return parse_checked(json, len, b, viol, check_replace);
}

hx_status
hx_export_parse_provenance(const char *json, size_t len, hx_batch *b, hx_violations *viol)
{
	return parse_checked(json, len, b, viol, check_provenance);
}

hx_status
hx_export_check_currency(const char *json, size_t len, hx_violations *viol)
{
	size_t    before = viol->total;
	cJSON    *cur;
	hx_status st;

	if ((st = parse_piece(json, len, &cur, viol)) == HX_OK && cur != NULL) {
		st = check_currency(cur, viol);
	}
	cJSON_Delete(cur);
	if (st != HX_OK) {
		return st;
	}
	return viol->total > before ? HX_INVALID_ARGUMENT : HX_OK;
}

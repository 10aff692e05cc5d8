/*
 * validate.c - the rules a cost record must pass (contract section 4), the
 * violation list that reports every broken rule, and the batch that collects
 * valid records and catches a key given twice in one request.
 *
 * Every source (JSON export, protobuf RecordBatch, the client's files) goes
 * through hx_batch_add(), so the rules and their wording live only here.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/date.h"
#include "base/errf.h"
#include "base/hash.h"
#include "base/text.h"
#include "heliox/batch.h"
#include "heliox/record.h"

#define MSG_REQUIRED "is required"
#define MSG_STRING   "must be a string"
#define MSG_DATE     "must be a real calendar date YYYY-MM-DD"
#define MSG_EMPTY    "must not be empty"
#define MSG_LONG     "is longer than 64 bytes"
#define MSG_UTF8     "is not valid UTF-8"
#define MSG_CONTROL  "contains a control character"
#define MSG_POSITIVE "must be greater than 0"
#define MSG_COSTTYPE "must be a number or a decimal string"
#define MSG_NONNEG   "must be 0 or greater"

/* ---- violations ------------------------------------------------------- */

void
hx_violations_init(hx_violations *v, size_t limit)
{
	memset(v, 0, sizeof(*v));
	v->limit = limit != 0 ? limit : HX_VIOLATIONS_DEFAULT_LIMIT;
}

void
hx_violations_free(hx_violations *v)
{
	size_t limit = v->limit;

	free(v->items);
	hx_violations_init(v, limit);
}

void
hx_violations_clear(hx_violations *v)
{
	v->len = 0;
	v->total = 0;
}

static hx_status
violations_reserve(hx_violations *v, size_t limit)
{
	hx_violation *items;
	size_t        cap;

	if (v->len < v->cap) {
		return HX_OK;
	}
	/* Most requests have none or a few; grow, never allocate `limit` up front. */
	cap = v->cap != 0 ? v->cap * 2 : 8;
	if (cap > limit) {
		cap = limit;
	}
	items = realloc(v->items, cap * sizeof(*items));
	if (items == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	v->items = items;
	v->cap = cap;
	return HX_OK;
}

hx_status
hx_violations_add(hx_violations *v, const char *field, const char *fmt, ...)
{
	size_t        limit = v->limit != 0 ? v->limit : HX_VIOLATIONS_DEFAULT_LIMIT;
	hx_violation *it;
	va_list       ap;

	v->total++;
	if (v->len >= limit) {
		return HX_OK; /* counted; the caller says "and N more" */
	}
	if (violations_reserve(v, limit) != HX_OK) {
		return HX_RESOURCE_EXHAUSTED;
	}
	it = &v->items[v->len++];
	snprintf(it->field, sizeof(it->field), "%s", field);
	va_start(ap, fmt);
	hx_verrf(it->description, sizeof(it->description), fmt, ap);
	va_end(ap);
	return HX_OK;
}

/* ---- field checks ------------------------------------------------------- */

/* The verdict on a field that must be text, or NULL when it is text. */
static const char *
need_string(const hx_raw_value *v)
{
	switch (v->kind) {
	case HX_RAW_STRING:
		return NULL;
	case HX_RAW_MISSING:
	case HX_RAW_NULL:
		return MSG_REQUIRED;
	default:
		return MSG_STRING;
	}
}

const char *
hx_check_date(const hx_raw_value *v, char out[HX_DATE_LEN + 1])
{
	const char *why = need_string(v);
	const char *s = v->s;
	size_t      len = v->len;

	if (why != NULL) {
		return why;
	}
	hx_text_trim(&s, &len);
	if (!hx_date_parse(s, len, NULL)) {
		return MSG_DATE;
	}
	memcpy(out, s, HX_DATE_LEN);
	out[HX_DATE_LEN] = '\0';
	return NULL;
}

/*
 * Decodes UTF-8 strictly (no overlongs, surrogates or code points past
 * U+10FFFF) and looks for C0, DEL and C1 controls on the way. Hand-written:
 * libunistring would be a new dependency for one function.
 */
static const char *
check_text(const unsigned char *s, size_t len)
{
	bool   control = false;
	size_t i = 0, n, k;

	while (i < len) {
		uint32_t c = s[i], min;

		if (c < 0x80) {
			n = 1, min = 0;
		} else if ((c & 0xE0) == 0xC0) {
			n = 2, min = 0x80, c &= 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 3, min = 0x800, c &= 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 4, min = 0x10000, c &= 0x07;
		} else {
			return MSG_UTF8;
		}
		if (n > len - i) {
			return MSG_UTF8;
		}
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80) {
				return MSG_UTF8;
			}
			c = (c << 6) | (s[i + k] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
			return MSG_UTF8;
		}
		control |= c < 0x20 || (c >= 0x7F && c <= 0x9F);
		i += n;
	}
	return control ? MSG_CONTROL : NULL;
}

const char *
hx_check_name(const hx_raw_value *v, char out[HX_NAME_MAX + 1])
{
	const char *why = need_string(v);
	const char *s = v->s;
	size_t      len = v->len;

	if (why != NULL) {
		return why;
	}
	hx_text_trim(&s, &len);
	if (len == 0) {
		return MSG_EMPTY;
	}
	if (len > HX_NAME_MAX) {
		return MSG_LONG;
	}
	if ((why = check_text((const unsigned char *) s, len)) != NULL) {
		return why;
	}
	/* ASCII only: Unicode case folding is locale business, and "AWS" vs
	 * "aws" is the case that matters in practice. */
	memcpy(out, s, len);
	out[len] = '\0';
	hx_text_lower(out, len);
	return NULL;
}

const char *
hx_check_cost(const hx_raw_value *v, hx_micros *out)
{
	const char  *s = v->s;
	size_t       len = v->len;
	hx_micros    m = 0;
	hx_money_err err;

	if (v->kind == HX_RAW_MISSING || v->kind == HX_RAW_NULL) {
		return MSG_REQUIRED;
	}
	if (v->kind != HX_RAW_STRING && v->kind != HX_RAW_NUMBER) {
		return MSG_COSTTYPE;
	}
	hx_text_trim(&s, &len);
	err = hx_money_parse(s, len, &m);
	if (err == HX_MONEY_EMPTY || err == HX_MONEY_SYNTAX) {
		return hx_money_strerror(HX_MONEY_SYNTAX);
	}
	/* Too large or too precise means non-zero: a '-' makes it negative,
	 * and "must be greater than 0" is then the more useful thing to say. */
	if (err != HX_MONEY_OK) {
		return s[0] == '-' ? MSG_POSITIVE : hx_money_strerror(err);
	}
	if (m <= 0) {
		return MSG_POSITIVE;
	}
	*out = m;
	return NULL;
}

const char *
hx_check_gpu_hours(const hx_raw_value *v, hx_micros *out, bool *known)
{
	const char  *s = v->s;
	size_t       len = v->len;
	hx_micros    m = 0;
	hx_money_err err;

	*known = false;
	if (v->kind == HX_RAW_MISSING || v->kind == HX_RAW_NULL) {
		return NULL;
	}
	if (v->kind != HX_RAW_STRING && v->kind != HX_RAW_NUMBER) {
		return MSG_COSTTYPE;
	}
	hx_text_trim(&s, &len);
	/* The wire's proto3 string cannot be absent, only empty: empty is
	 * "unknown" there, and the same in JSON. */
	if (len == 0) {
		return NULL;
	}
	err = hx_money_parse(s, len, &m);
	if (err == HX_MONEY_EMPTY || err == HX_MONEY_SYNTAX) {
		return hx_money_strerror(HX_MONEY_SYNTAX);
	}
	if (err != HX_MONEY_OK) {
		return s[0] == '-' ? MSG_NONNEG : hx_money_strerror(err);
	}
	if (m < 0) {
		return MSG_NONNEG;
	}
	*out = m;
	*known = true;
	return NULL;
}

const char *
hx_check_prov_text(const hx_raw_value *v, size_t max, char *out)
{
	const char *s = v->s;
	size_t      len = v->len;
	const char *why;

	out[0] = '\0';
	if (v->kind == HX_RAW_MISSING || v->kind == HX_RAW_NULL) {
		return NULL;
	}
	if (v->kind != HX_RAW_STRING) {
		return MSG_STRING;
	}
	hx_text_trim(&s, &len);
	if (len > max) {
		return max == HX_PROV_NAME_MAX ? "is longer than 255 bytes" : MSG_LONG;
	}
	if ((why = check_text((const unsigned char *) s, len)) != NULL) {
		return why;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return NULL;
}

/* Days from 0001-01-01 to 1970-01-01, where hx_date_parse counts from. */
#define DAYS_0001_TO_1970 719162

/* Days from 0001-01-01 (proleptic Gregorian): only differences matter. The
 * caller passes a checked date (hx_check_date's output). */
int64_t
hx_date_days(const char *date)
{
	int32_t days = 0;

	(void) hx_date_parse(date, HX_DATE_LEN, &days);
	return (int64_t) days + DAYS_0001_TO_1970;
}

/* ---- the batch -------------------------------------------------------- */

void
hx_batch_init(hx_batch *b)
{
	memset(b, 0, sizeof(*b));
}

void
hx_batch_free(hx_batch *b)
{
	free(b->recs);
	free(b->src);
	free(b->slots);
	hx_batch_init(b);
}

void
hx_batch_reset(hx_batch *b)
{
	b->len = 0;
	b->received = 0;
	b->n_windows = 0;
	b->windows_received = 0;
	memset(&b->prov, 0, sizeof(b->prov));
	if (b->slots != NULL) {
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	}
}

/* FNV-1a over the three fields, each with its NUL as separator (names can
 * hold no NUL: it is a control character), finalised because the table
 * mask keeps only the low bits. */
static uint64_t
key_hash(const hx_record *r)
{
	uint64_t h = HX_FNV1A_OFFSET;

	h = hx_fnv1a(h, r->date, strlen(r->date) + 1);
	h = hx_fnv1a(h, r->provider, strlen(r->provider) + 1);
	h = hx_fnv1a(h, r->gpu_type, strlen(r->gpu_type) + 1);
	return hx_mix64(h);
}

static bool
same_key(const hx_record *a, const hx_record *b)
{
	return strcmp(a->date, b->date) == 0 && strcmp(a->provider, b->provider) == 0 &&
	    strcmp(a->gpu_type, b->gpu_type) == 0;
}

/* The slot holding r's key, or the empty slot where it belongs. */
static size_t
probe(const hx_batch *b, const hx_record *r, uint64_t h)
{
	size_t mask = b->nslots - 1;
	size_t i = (size_t) h & mask;

	while (b->slots[i] != 0 && !same_key(&b->recs[b->slots[i] - 1], r)) {
		i = (i + 1) & mask;
	}
	return i;
}

/* Keeps the table at most half full, so linear probes stay short. */
static hx_status
table_reserve(hx_batch *b)
{
	uint32_t *slots;
	size_t    n, i;

	if ((b->len + 1) * 2 <= b->nslots) {
		return HX_OK;
	}
	n = b->nslots != 0 ? b->nslots * 2 : 64;
	if (n > SIZE_MAX / sizeof(*slots) || (slots = calloc(n, sizeof(*slots))) == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	free(b->slots);
	b->slots = slots;
	b->nslots = n;
	for (i = 0; i < b->len; i++) {
		b->slots[probe(b, &b->recs[i], key_hash(&b->recs[i]))] = (uint32_t) (i + 1);
	}
	return HX_OK;
}

static hx_status
recs_reserve(hx_batch *b)
{
	hx_record *recs;
	size_t    *src;
	size_t     cap;

	if (b->len < b->cap) {
		return HX_OK;
	}
	/* Slots store index + 1 in a uint32_t. */
	if (b->len >= UINT32_MAX - 1) {
		return HX_RESOURCE_EXHAUSTED;
	}
	cap = b->cap != 0 ? b->cap * 2 : 64;
	if (cap > UINT32_MAX - 1) {
		cap = UINT32_MAX - 1;
	}
	if (cap > SIZE_MAX / sizeof(*recs)) {
		return HX_RESOURCE_EXHAUSTED;
	}
	if ((recs = realloc(b->recs, cap * sizeof(*recs))) == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	b->recs = recs;
	if ((src = realloc(b->src, cap * sizeof(*src))) == NULL) {
		return HX_RESOURCE_EXHAUSTED; /* recs merely got bigger: harmless */
	}
	b->src = src;
	b->cap = cap;
	return HX_OK;
}

static hx_status
batch_insert(hx_batch *b, const hx_record *r, const char *array_name, size_t index,
             hx_violations *viol)
{
	char      field[HX_FIELD_MAX];
	size_t    slot;
	hx_status st;

	if ((st = table_reserve(b)) != HX_OK) {
		return st;
	}
	slot = probe(b, r, key_hash(r));
	if (b->slots[slot] != 0) {
		snprintf(field, sizeof(field), "%s[%zu]", array_name, index);
		st = hx_violations_add(viol, field, "duplicate of %s[%zu]", array_name,
		                       b->src[b->slots[slot] - 1]);
		return st != HX_OK ? st : HX_INVALID_ARGUMENT;
	}
	if ((st = recs_reserve(b)) != HX_OK) {
		return st;
	}
	b->recs[b->len] = *r;
	b->src[b->len] = index;
	b->slots[slot] = (uint32_t) ++b->len;
	return HX_OK;
}

/* Adds "<array>[<index>].<field>: why" when why is set. */
static hx_status
report(hx_violations *viol, const char *array_name, size_t index, const char *field,
       const char *why, bool *bad)
{
	char path[HX_FIELD_MAX];

	if (why == NULL) {
		return HX_OK;
	}
	*bad = true;
	snprintf(path, sizeof(path), "%s[%zu].%s", array_name, index, field);
	return hx_violations_add(viol, path, "%s", why);
}

hx_status
hx_batch_add(hx_batch *b, const hx_raw_record *raw, const char *array_name, size_t index,
             hx_violations *viol)
{
	hx_record r;
	bool      bad = false;
	hx_status st;

	b->received++;
	memset(&r, 0, sizeof(r));
	/* Every field is checked, so a caller fixes a record in one round. */
	st = report(viol, array_name, index, "date", hx_check_date(&raw->date, r.date), &bad);
	if (st == HX_OK) {
		st = report(viol, array_name, index, "provider",
		            hx_check_name(&raw->provider, r.provider), &bad);
	}
	if (st == HX_OK) {
		st = report(viol, array_name, index, "gpu_type",
		            hx_check_name(&raw->gpu_type, r.gpu_type), &bad);
	}
	if (st == HX_OK) {
		st = report(viol, array_name, index, "cost_usd",
		            hx_check_cost(&raw->cost_usd, &r.cost), &bad);
	}
	if (st == HX_OK) {
		st = report(viol, array_name, index, "gpu_hours",
		            hx_check_gpu_hours(&raw->gpu_hours, &r.gpu_hours, &r.has_gpu_hours),
		            &bad);
	}
	if (st != HX_OK) {
		return st;
	}
	if (bad) {
		return HX_INVALID_ARGUMENT;
	}
	return batch_insert(b, &r, array_name, index, viol);
}

/* ---- replace windows (v2) ---------------------------------------------------- */

const hx_replace_window *
hx_batch_window(const hx_batch *b, const char *provider)
{
	size_t i;

	/* At most HX_REPLACE_MAX windows, and in practice one per cloud. */
	for (i = 0; i < b->n_windows; i++) {
		if (strcmp(b->windows[i].provider, provider) == 0) {
			return &b->windows[i];
		}
	}
	return NULL;
}

hx_status
hx_batch_add_window(hx_batch *b, const hx_raw_value *provider, const hx_raw_value *from_date,
                    const hx_raw_value *to_date, size_t index, hx_violations *viol)
{
	hx_replace_window        w;
	const hx_replace_window *other;
	char                     path[HX_FIELD_MAX];
	bool                     bad = false, dates_ok;
	hx_status                st;
	int64_t                  days;

	b->windows_received++;
	memset(&w, 0, sizeof(w));
	st = report(viol, "replace", index, "provider", hx_check_name(provider, w.provider), &bad);
	if (st == HX_OK) {
		st = report(viol, "replace", index, "from_date",
		            hx_check_date(from_date, w.from_date), &bad);
	}
	if (st == HX_OK) {
		st = report(viol, "replace", index, "to_date", hx_check_date(to_date, w.to_date),
		            &bad);
	}
	/* The order and span only mean something between two real dates. */
	dates_ok = w.from_date[0] != '\0' && w.to_date[0] != '\0';
	if (st == HX_OK && dates_ok) {
		days = hx_date_days(w.to_date) - hx_date_days(w.from_date) + 1;
		if (days < 1) {
			st = report(viol, "replace", index, "to_date",
			            "must not be before from_date", &bad);
		} else if (days > HX_REPLACE_DAYS) {
			st = report(viol, "replace", index, "to_date",
			            "is more than 366 days after from_date", &bad);
		}
	}
	if (st == HX_OK && w.provider[0] != '\0' &&
	    (other = hx_batch_window(b, w.provider)) != NULL) {
		snprintf(path, sizeof(path), "replace[%zu].provider", index);
		st = hx_violations_add(viol, path, "another window for provider %s: replace[%zu]",
		                       w.provider, (size_t) (other - b->windows));
		bad = true;
	}
	if (st == HX_OK && !bad && b->n_windows == HX_REPLACE_MAX) {
		st = hx_violations_add(viol, "replace", "has more than %d windows", HX_REPLACE_MAX);
		bad = true;
	}
	if (st != HX_OK) {
		return st;
	}
	if (bad) {
		return HX_INVALID_ARGUMENT;
	}
	b->windows[b->n_windows++] = w;
	return HX_OK;
}

bool
hx_record_in_window(const hx_batch *b, const hx_record *r)
{
	const hx_replace_window *w = hx_batch_window(b, r->provider);

	/* YYYY-MM-DD compares as text the way it compares as a date. */
	return w == NULL ||
	    (strcmp(r->date, w->from_date) >= 0 && strcmp(r->date, w->to_date) <= 0);
}

hx_status
hx_window_violation(const hx_batch *b, const hx_record *r, const char *record_path,
                    hx_violations *viol)
{
	const hx_replace_window *w = hx_batch_window(b, r->provider);
	char                     path[HX_FIELD_MAX];

	if (hx_record_in_window(b, r)) {
		return HX_OK;
	}
	/* record_path is "<array>[i]" (below), far shorter than path: a cut
	 * is impossible, and checking the count says so to the compiler. */
	if (snprintf(path, sizeof(path), "%s.date", record_path) >= (int) sizeof(path)) {
		return HX_INTERNAL;
	}
	if (hx_violations_add(viol, path, "is outside the replace window for %s (%s .. %s)",
	                      w->provider, w->from_date, w->to_date) != HX_OK) {
		return HX_RESOURCE_EXHAUSTED;
	}
	return HX_INVALID_ARGUMENT;
}

hx_status
hx_batch_check_windows(const hx_batch *b, const char *array_name, hx_violations *viol, size_t *bad)
{
	char      path[HX_FIELD_MAX];
	size_t    i, n = 0;
	hx_status st = HX_OK;

	for (i = 0; i < b->len && st == HX_OK && b->n_windows > 0; i++) {
		snprintf(path, sizeof(path), "%s[%zu]", array_name, b->src[i]);
		st = hx_window_violation(b, &b->recs[i], path, viol);
		if (st == HX_INVALID_ARGUMENT) {
			n++;
			st = HX_OK;
		}
	}
	if (bad != NULL) {
		*bad = n;
	}
	if (st != HX_OK) {
		return st;
	}
	return n > 0 ? HX_INVALID_ARGUMENT : HX_OK;
}

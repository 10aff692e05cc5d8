/*
 * batch.h - how records are validated: the raw fields as they arrived, the
 * field checks, and the validated batch (hx_core, in-tree only: the server,
 * the CLI's streaming engine and the tests use it; libheliox-client neither
 * exports nor installs it).
 *
 * The path of a record through the core:
 *
 *   source (JSON export, protobuf RecordBatch, a file on the client)
 *     -> hx_raw_record      borrowed views of the fields, as sent
 *     -> hx_batch_add()     validate + normalise + duplicate check
 *     -> hx_record          owned, fixed-size, normalised (record.h)
 *
 * No I/O here.
 */
#ifndef HELIOX_BATCH_H
#define HELIOX_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/heliox.h"
#include "heliox/money.h"
#include "heliox/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a field arrived. */
typedef enum hx_raw_kind {
	HX_RAW_MISSING = 0, /* absent */
	HX_RAW_STRING,      /* text; s/len hold it (may contain NUL bytes) */
	HX_RAW_NUMBER,      /* a JSON number; s/len hold its exact decimal text */
	HX_RAW_NULL,        /* JSON null */
	HX_RAW_OTHER,       /* any other JSON type (bool, object, array) */
} hx_raw_kind;

typedef struct hx_raw_value {
	hx_raw_kind kind;
	const char *s; /* borrowed; not NUL-terminated necessarily */
	size_t      len;
} hx_raw_value;

/* One record as received. Borrowed views; the caller keeps the text alive
 * for the duration of hx_batch_add(). */
typedef struct hx_raw_record {
	hx_raw_value date;
	hx_raw_value provider;
	hx_raw_value gpu_type;
	hx_raw_value cost_usd;
	hx_raw_value gpu_hours; /* optional: missing, null or blank text = unknown */
} hx_raw_record;

/* ---- field checks (pure, exposed for tests and the streaming client) ---- */

/*
 * Each returns NULL when the value is valid (and writes the normalised form to
 * out), or a static description of what is wrong ("must be a real calendar
 * date YYYY-MM-DD", "must not be empty", "is longer than 64 bytes",
 * "contains a control character", "is not valid UTF-8", "must be a string",
 * "is required", "must be greater than 0", ...).
 */
const char *hx_check_date(const hx_raw_value *v, char out[HX_DATE_LEN + 1]);
const char *hx_check_name(const hx_raw_value *v, char out[HX_NAME_MAX + 1]);
const char *hx_check_cost(const hx_raw_value *v, hx_micros *out);
/* gpu_hours: missing, null or blank text is unknown (*known = false);
 * otherwise a number or decimal string >= 0, < 10^12, at most 6 fractional
 * digits. */
const char *hx_check_gpu_hours(const hx_raw_value *v, hx_micros *out, bool *known);

/* A provenance field: trimmed, valid UTF-8, no control characters, at most
 * `max` bytes; missing, null or blank is "". */
const char *hx_check_prov_text(const hx_raw_value *v, size_t max, char *out);

/* Days from 0001-01-01 of a valid YYYY-MM-DD (hx_check_date's output). */
int64_t hx_date_days(const char *date);

/* ---- the batch -------------------------------------------------------- */

/*
 * A request's validated records plus the table that finds repeated keys
 * (date, provider, gpu_type) within the request.
 */
typedef struct hx_batch {
	hx_record *recs; /* owned; len valid records, in request order */
	size_t    *src;  /* owned; src[i] = index of recs[i] in the request */
	size_t     len;
	size_t     cap;
	uint32_t  *slots;    /* owned; open-addressing key table: 0 = empty, else i+1 */
	size_t     nslots;   /* power of two */
	size_t     received; /* records offered to hx_batch_add, valid or not */

	/* v2: the request's replace windows (valid ones, in request order) and
	 * provenance. */
	hx_replace_window windows[HX_REPLACE_MAX];
	size_t            n_windows;
	size_t            windows_received; /* windows offered, valid or not */
	hx_provenance     prov;
} hx_batch;

void hx_batch_init(hx_batch *b);
void hx_batch_free(hx_batch *b);
/* Forgets the records but keeps the memory, for reuse. */
void hx_batch_reset(hx_batch *b);

/*
 * Validates and normalises `raw`, the record at position `index` of the array
 * `array_name` ("cost_data" or "records"). Every problem found is added to
 * `viol` with its path, e.g. "cost_data[3].provider"; a repeated key is a
 * violation on `array_name[index]` described as "duplicate of cost_data[0]".
 * Returns HX_OK when the record was valid and appended, HX_INVALID_ARGUMENT
 * when it was not (violations added, nothing appended), HX_RESOURCE_EXHAUSTED
 * when memory ran out. b->received counts every call.
 */
hx_status hx_batch_add(hx_batch *b, const hx_raw_record *raw, const char *array_name, size_t index,
                       hx_violations *viol);

/*
 * Validates the replace window at position `index` of "replace": provider
 * (like a record's), from_date and to_date (real dates), from <= to, at most
 * HX_REPLACE_DAYS days, at most one window per provider (violation
 * "replace[i].provider", "another window for provider aws: replace[0]"), at
 * most HX_REPLACE_MAX windows (violation "replace"). Same returns as
 * hx_batch_add; b->windows_received counts every call.
 */
hx_status hx_batch_add_window(hx_batch *b, const hx_raw_value *provider,
                              const hx_raw_value *from_date, const hx_raw_value *to_date,
                              size_t index, hx_violations *viol);

/* The window of `provider`, or NULL. */
const hx_replace_window *hx_batch_window(const hx_batch *b, const char *provider);

/*
 * Every record of a provider that has a window must lie inside it: adds
 * "<array>[i].date" "is outside the replace window for aws (2024-09-01 ..
 * 2024-09-30)" for each that does not (i = the record's request index).
 * Call after every record and window was added. Returns HX_OK,
 * HX_INVALID_ARGUMENT or HX_RESOURCE_EXHAUSTED. `bad`, when not NULL, gets
 * the number of records outside.
 */
hx_status hx_batch_check_windows(const hx_batch *b, const char *array_name, hx_violations *viol,
                                 size_t *bad);

/* Whether r lies inside its provider's window (or its provider has none). */
bool hx_record_in_window(const hx_batch *b, const hx_record *r);

/* Adds "<record_path>.date" "is outside the replace window for aws
 * (2024-09-01 .. 2024-09-30)" when r lies outside its provider's window and
 * returns HX_INVALID_ARGUMENT; HX_OK when inside; HX_RESOURCE_EXHAUSTED. */
hx_status hx_window_violation(const hx_batch *b, const hx_record *r, const char *record_path,
                              hx_violations *viol);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_BATCH_H */

/*
 * record.h - cost records, violations, and the validated batch.
 *
 * The path of a record through the library:
 *
 *   source (JSON export, protobuf RecordBatch, a file on the client)
 *     -> hx_raw_record      borrowed views of the four fields, as sent
 *     -> hx_batch_add()     validate + normalise + duplicate check
 *     -> hx_record          owned, fixed-size, normalised; ready for the store
 *
 * Every problem becomes an hx_violation whose `field` is a path into the
 * request ("cost_data[3].cost_usd", "records[0].date", "$", "currency").
 * No I/O here.
 */
#ifndef HELIOX_RECORD_H
#define HELIOX_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/api.h"
#include "heliox/heliox.h"
#include "heliox/money.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HX_NAME_MAX 64 /* bytes of provider / gpu_type after trimming */
#define HX_DATE_LEN 10 /* "YYYY-MM-DD" */

/* A validated, normalised record. Fixed size so a batch is one allocation. */
typedef struct hx_record {
	char      date[HX_DATE_LEN + 1];     /* YYYY-MM-DD, a real calendar date */
	char      provider[HX_NAME_MAX + 1]; /* trimmed, ASCII lower-cased */
	char      gpu_type[HX_NAME_MAX + 1]; /* trimmed, ASCII lower-cased */
	hx_micros cost;                      /* > 0 and < 10^12 USD */
	hx_micros gpu_hours;                 /* millionths of a GPU-hour, >= 0 and < 10^12
	                                      * hours; meaningful when has_gpu_hours */
	bool      has_gpu_hours;             /* false: unknown (stored as NULL) */
} hx_record;

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

/* ---- violations ------------------------------------------------------- */

#define HX_FIELD_MAX 96
#define HX_DESC_MAX  160
/* Violations kept per request by default; the rest are only counted. */
#define HX_VIOLATIONS_DEFAULT_LIMIT 1000

typedef struct hx_violation {
	char field[HX_FIELD_MAX];      /* "cost_data[3].cost_usd" */
	char description[HX_DESC_MAX]; /* "must be greater than 0" */
} hx_violation;

typedef struct hx_violations {
	hx_violation *items; /* owned; `len` stored, in the order found */
	size_t        len;
	size_t        cap;
	size_t        total; /* all found, including those past `limit` */
	size_t        limit; /* most kept in `items` */
} hx_violations;

/* limit 0 means HX_VIOLATIONS_DEFAULT_LIMIT. */
HX_API void hx_violations_init(hx_violations *v, size_t limit);
HX_API void hx_violations_free(hx_violations *v);
HX_API void hx_violations_clear(hx_violations *v);
/* Records one violation (counted always, kept while under the limit). Field
 * and description are truncated to fit. Returns HX_OK or HX_RESOURCE_EXHAUSTED
 * when memory runs out. */
HX_API hx_status hx_violations_add(hx_violations *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- field checks (pure, exposed for tests and the streaming client) ---- */

/*
 * Each returns NULL when the value is valid (and writes the normalised form to
 * out), or a static description of what is wrong ("must be a real calendar
 * date YYYY-MM-DD", "must not be empty", "is longer than 64 bytes",
 * "contains a control character", "is not valid UTF-8", "must be a string",
 * "is required", "must be greater than 0", ...).
 */
HX_API const char *hx_check_date(const hx_raw_value *v, char out[HX_DATE_LEN + 1]);
HX_API const char *hx_check_name(const hx_raw_value *v, char out[HX_NAME_MAX + 1]);
HX_API const char *hx_check_cost(const hx_raw_value *v, hx_micros *out);
/* gpu_hours: missing, null or blank text is unknown (*known = false);
 * otherwise a number or decimal string >= 0, < 10^12, at most 6 fractional
 * digits. */
HX_API const char *hx_check_gpu_hours(const hx_raw_value *v, hx_micros *out, bool *known);

/* ---- request-level fields (v2) ------------------------------------------------ */

#define HX_REPLACE_MAX   64  /* windows in one request */
#define HX_REPLACE_DAYS  366 /* longest window, in days (to - from + 1) */
#define HX_PROV_TEXT_MAX 64  /* bytes of provenance.format and .mapping_version */
#define HX_PROV_NAME_MAX 255 /* bytes of provenance.name */

/* A validated replace window: the request is the whole truth for `provider`
 * over [from_date, to_date] (contract section 5). */
typedef struct hx_replace_window {
	char provider[HX_NAME_MAX + 1]; /* normalised like records */
	char from_date[HX_DATE_LEN + 1];
	char to_date[HX_DATE_LEN + 1];
} hx_replace_window;

/* Where the records came from; all optional, "" when not given. */
typedef struct hx_provenance {
	char format[HX_PROV_TEXT_MAX + 1];
	char name[HX_PROV_NAME_MAX + 1];
	char mapping_version[HX_PROV_TEXT_MAX + 1];
} hx_provenance;

/* A provenance field: trimmed, valid UTF-8, no control characters, at most
 * `max` bytes; missing, null or blank is "". */
HX_API const char *hx_check_prov_text(const hx_raw_value *v, size_t max, char *out);

/* Days from 0001-01-01 of a valid YYYY-MM-DD (hx_check_date's output). */
HX_API int64_t hx_date_days(const char *date);

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

HX_API void hx_batch_init(hx_batch *b);
HX_API void hx_batch_free(hx_batch *b);
/* Forgets the records but keeps the memory, for reuse. */
HX_API void hx_batch_reset(hx_batch *b);

/*
 * Validates and normalises `raw`, the record at position `index` of the array
 * `array_name` ("cost_data" or "records"). Every problem found is added to
 * `viol` with its path, e.g. "cost_data[3].provider"; a repeated key is a
 * violation on `array_name[index]` described as "duplicate of cost_data[0]".
 * Returns HX_OK when the record was valid and appended, HX_INVALID_ARGUMENT
 * when it was not (violations added, nothing appended), HX_RESOURCE_EXHAUSTED
 * when memory ran out. b->received counts every call.
 */
HX_API hx_status hx_batch_add(hx_batch *b, const hx_raw_record *raw, const char *array_name,
                              size_t index, hx_violations *viol);

/*
 * Validates the replace window at position `index` of "replace": provider
 * (like a record's), from_date and to_date (real dates), from <= to, at most
 * HX_REPLACE_DAYS days, at most one window per provider (violation
 * "replace[i].provider", "another window for provider aws: replace[0]"), at
 * most HX_REPLACE_MAX windows (violation "replace"). Same returns as
 * hx_batch_add; b->windows_received counts every call.
 */
HX_API hx_status hx_batch_add_window(hx_batch *b, const hx_raw_value *provider,
                                     const hx_raw_value *from_date, const hx_raw_value *to_date,
                                     size_t index, hx_violations *viol);

/* The window of `provider`, or NULL. */
HX_API const hx_replace_window *hx_batch_window(const hx_batch *b, const char *provider);

/*
 * Every record of a provider that has a window must lie inside it: adds
 * "<array>[i].date" "is outside the replace window for aws (2024-09-01 ..
 * 2024-09-30)" for each that does not (i = the record's request index).
 * Call after every record and window was added. Returns HX_OK,
 * HX_INVALID_ARGUMENT or HX_RESOURCE_EXHAUSTED. `bad`, when not NULL, gets
 * the number of records outside.
 */
HX_API hx_status hx_batch_check_windows(const hx_batch *b, const char *array_name,
                                        hx_violations *viol, size_t *bad);

/* Whether r lies inside its provider's window (or its provider has none). */
HX_API bool hx_record_in_window(const hx_batch *b, const hx_record *r);

/* Adds "<record_path>.date" "is outside the replace window for aws
 * (2024-09-01 .. 2024-09-30)" when r lies outside its provider's window and
 * returns HX_INVALID_ARGUMENT; HX_OK when inside; HX_RESOURCE_EXHAUSTED. */
HX_API hx_status hx_window_violation(const hx_batch *b, const hx_record *r, const char *record_path,
                                     hx_violations *viol);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_RECORD_H */

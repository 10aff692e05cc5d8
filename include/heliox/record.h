/*
 * record.h - cost records, violations, and a request's replace windows and
 * provenance: the data a client sends and gets back.
 *
 * Every problem found in a request becomes an hx_violation whose `field` is
 * a path into the request ("cost_data[3].cost_usd", "records[0].date", "$",
 * "currency"). How records are validated (the raw fields, the checks, the
 * batch) is the core's own business: src/core/include/heliox/batch.h,
 * in-tree only. No I/O here.
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

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_RECORD_H */

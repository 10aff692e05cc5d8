/*
 * summary.h - the Summary method's query and rows, shared by the store (which
 * computes them) and the client library (which receives them).
 */
#ifndef HELIOX_SUMMARY_H
#define HELIOX_SUMMARY_H

#include <stdint.h>

#include "heliox/api.h"
#include "heliox/money.h"
#include "heliox/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Same numbers as the wire enum heliox.ingest.v1.GroupBy. */
typedef enum hx_group_by {
	HX_GROUP_NONE = 0,
	HX_GROUP_PROVIDER = 1,
	HX_GROUP_GPU_TYPE = 2,
	HX_GROUP_DATE = 3,
	HX_GROUP_PROVIDER_GPU_TYPE = 4,
} hx_group_by;

/* "NONE", "PROVIDER", ...; NULL for an unknown value. */
HX_API const char *hx_group_by_name(hx_group_by g);
/* Case-insensitive; accepts the wire names and "provider_gpu_type" etc.
 * Returns 0 and sets *out, or -1. */
HX_API int hx_group_by_parse(const char *name, hx_group_by *out);

/* Filters; NULL or "" = no filter. Dates are YYYY-MM-DD, inclusive; names
 * are compared after normalisation (trim + ASCII lower-case). */
typedef struct hx_summary_query {
	const char *from_date;
	const char *to_date;
	const char *provider;
	const char *gpu_type;
	hx_group_by group_by;
} hx_summary_query;

typedef struct hx_summary_row {
	char     date[HX_DATE_LEN + 1];     /* "" when not grouped by date */
	char     provider[HX_NAME_MAX + 1]; /* "" when not grouped by provider */
	char     gpu_type[HX_NAME_MAX + 1]; /* "" when not grouped by gpu_type */
	uint64_t records;
	char     total_usd[HX_MONEY_TEXT_MAX]; /* exact, e.g. "55623.47" */
	char     avg_usd[HX_MONEY_TEXT_MAX];   /* rounded to 2 places; "" when records == 0 */
	char     min_usd[HX_MONEY_TEXT_MAX];   /* "" when records == 0 */
	char     max_usd[HX_MONEY_TEXT_MAX];   /* "" when records == 0 */
	char     gpu_hours[HX_MONEY_TEXT_MAX]; /* v2: exact sum of the known gpu_hours;
	                                         * "" when none is known */
	char     usd_per_gpu_hour[HX_MONEY_TEXT_MAX]; /* v2: cost of the rows with known
	                                               * gpu_hours / their sum, 4 places;
	                                               * "" when none or the sum is 0 */
} hx_summary_row;

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_SUMMARY_H */

/*
 * metrics.h - the server's Prometheus metrics (SERVICE.md section 9).
 *
 * Each worker owns one hx_metrics_slot and is its only writer, so the
 * request path takes no lock and shares no cache line with other workers:
 * it bumps its own relaxed atomics. A scrape sums the slots. A scrape may
 * see a request's counter before its histogram bucket (or the reverse):
 * harmless for Prometheus, which only ever compares scrapes seconds apart.
 *
 * Rendering needs no nng and no database (testable alone); the HTTP side
 * is metrics_http.c.
 */
#ifndef HELIOX_METRICS_H
#define HELIOX_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/heliox.h"

typedef enum hx_metric_method {
	HX_METHOD_INGEST = 0,
	HX_METHOD_HEALTH,
	HX_METHOD_SUMMARY,
	HX_METHOD_UNKNOWN,
	HX_METHOD_COUNT
} hx_metric_method;

typedef enum hx_metric_outcome {
	HX_OUTCOME_INSERTED = 0,
	HX_OUTCOME_UPDATED,
	HX_OUTCOME_UNCHANGED,
	HX_OUTCOME_FAILED,
	HX_OUTCOME_DELETED,
	HX_OUTCOME_COUNT
} hx_metric_outcome;

#define HX_METRIC_CODES   17 /* hx_status 0..16 */
#define HX_METRIC_BUCKETS 14 /* finite buckets of heliox_rpc_duration_seconds */

/* Upper bounds of the finite buckets, in microseconds (+Inf is implied). */
extern const uint64_t hx_metric_bucket_us[HX_METRIC_BUCKETS];

/* Aligned to a cache line: two workers' counters never share one. */
typedef struct hx_metrics_slot {
	_Alignas(64) atomic_uint_fast64_t requests[HX_METHOD_COUNT][HX_METRIC_CODES];
	atomic_uint_fast64_t bucket[HX_METHOD_COUNT][HX_METRIC_BUCKETS + 1]; /* not cumulative */
	atomic_uint_fast64_t dur_sum_us[HX_METHOD_COUNT];
	atomic_uint_fast64_t records[HX_OUTCOME_COUNT];
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t served;   /* requests finished: reload waits on it */
	atomic_uint          inflight; /* 0 or 1: this worker holds a request */
} hx_metrics_slot;

/* What one finished request adds. */
typedef struct hx_metric_event {
	hx_metric_method method;
	hx_status        code;
	uint64_t         duration_us;
	bool             auth_failed;
	bool             has_records; /* a real (not dry-run, not replayed) ingest result */
	uint64_t         records[HX_OUTCOME_COUNT];
} hx_metric_event;

typedef struct hx_metrics {
	hx_metrics_slot *slots; /* one per worker */
	unsigned         n_slots;
	atomic_int       db_up;        /* set by the database watch */
	double           start_time_s; /* process start, seconds since the epoch */
} hx_metrics;

/* Allocates n zeroed slots. Returns HX_OK or HX_RESOURCE_EXHAUSTED. */
hx_status hx_metrics_init(hx_metrics *m, unsigned n_slots);
void      hx_metrics_free(hx_metrics *m);

hx_metric_method hx_metric_method_of(const char *name);

/* Called by the slot's own worker only. */
void hx_metrics_record(hx_metrics_slot *s, const hx_metric_event *ev);

/* Renders the exposition text (format 0.0.4) into a malloc'd buffer. */
hx_status hx_metrics_render(const hx_metrics *m, char **out, size_t *len);

#endif /* HELIOX_METRICS_H */

/*
 * metrics_http.h - the operator's side door: the database watch, and
 * GET /metrics and GET /healthz on --metrics-listen (nng's HTTP server).
 *
 * The watch is one thread with a database connection of its own that asks
 * "SELECT 1" every HX_DBWATCH_PERIOD_MS. /healthz and heliox_db_up read
 * what it saw last, so neither ever waits on the database: a database that
 * hangs (instead of refusing) simply stops refreshing last_ok, and /healthz
 * turns 503 HX_DBWATCH_FRESH_MS after its last answer. The watch is also
 * what logs the database going away and coming back, once each.
 */
#ifndef HELIOX_METRICS_HTTP_H
#define HELIOX_METRICS_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "metrics.h"
#include "store.h"

#define HX_DBWATCH_PERIOD_MS 500u
#define HX_DBWATCH_FRESH_MS  1500u

typedef struct hx_dbwatch {
	hx_store            *store;
	hx_metrics          *metrics; /* borrowed; its db_up follows the watch */
	pthread_t            thread;
	bool                 started;
	atomic_bool          stop;
	atomic_uint_fast64_t last_ok_us; /* monotonic; 0 = never */
	int                  state;      /* -1 unknown, 0 down, 1 up: the watch's own */
} hx_dbwatch;

/* Starts the watch (its first check runs before this returns, so /healthz
 * is right from the first request). */
hx_status hx_dbwatch_start(hx_dbwatch *w, const char *conninfo, hx_metrics *m);
void      hx_dbwatch_stop(hx_dbwatch *w);
/* True when the database answered within HX_DBWATCH_FRESH_MS. Never blocks. */
bool hx_dbwatch_up(hx_dbwatch *w);

typedef struct hx_http hx_http;

/* Serves http://HOSTPORT/metrics and /healthz. `serving` is false once the
 * server is shutting down (/healthz then says 503). *port gets the bound
 * port (useful with port 0). Returns HX_OK, or HX_INVALID_ARGUMENT /
 * HX_UNAVAILABLE with the reason in err. */
hx_status hx_http_start(hx_http **out, const char *hostport, hx_metrics *m, hx_dbwatch *w,
                        const atomic_bool *stopping, int *port, char *err, size_t errsz);
void      hx_http_stop(hx_http *h);

#endif /* HELIOX_METRICS_HTTP_H */

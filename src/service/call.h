/*
 * call.h - one request in flight, shared by the dispatcher (rpc.c) and the
 * method files (health.c, summary.c, ingest.c). Private to hx_service.
 *
 * It sits below both on purpose: a method needs the call's state and the
 * helpers that answer it, never the dispatcher that chose the method, so
 * calls go dispatcher -> method -> call and never back up.
 *
 * An hx_call is who sent the request, its id, and the reply being built
 * (code, message, violations, result). Each step of the path either leaves
 * c->code at HX_OK and lets the next step run, or sets the answer with
 * hx_call_fail() and the path stops there.
 */
#ifndef HELIOX_CALL_H
#define HELIOX_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/ingest/v1/ingest.pb-c.h"
#include "heliox/batch.h"
#include "rpc.h"

#define HX_REQUEST_ID_MAX 128 /* bytes of a caller's request_id */
#define HX_CALL_MSG_MAX   256
#define HX_CALL_LOG_MAX   256

typedef struct hx_call {
	const hx_rpc_config *cfg;
	hx_store            *store; /* NULL: no database */
	const char          *peer;
	const char          *method; /* "ingest", "health", "summary" or "-" */
	hx_rpc_auth          auth;   /* how far auth got */
	char                 rid[HX_REQUEST_ID_MAX + 1];
	char                 base_rid[HX_REQUEST_ID_MAX + 1]; /* the caller's, else rid */
	const char          *key_id; /* the key that authenticated the call; NULL before */
	uint64_t             started_us;
	uint32_t             timeout_ms; /* the request's, or the server default; 0 = none */

	hx_status     code;
	char          message[HX_CALL_MSG_MAX];
	hx_violations viol;
	char          detail[HX_CALL_LOG_MAX]; /* method's part of the final log line */

	Heliox__Ingest__V1__RpcResponse__ResultCase result_case;
	Heliox__Ingest__V1__IngestResult            ingest;
	Heliox__Ingest__V1__HealthResult            health;
	Heliox__Ingest__V1__SummaryResult           summary;
	hx_store_sum_row                           *rows; /* owned, backs summary's strings */
} hx_call;

/* A fresh call (code HX_OK, no id yet), started now. */
void hx_call_init(hx_call *c, const hx_rpc_config *cfg, hx_store *store, const char *peer);
/* Frees what the call owns (violations, summary rows); not c itself. */
void hx_call_free(hx_call *c);

/* Sets the reply's code and message (printf-style). */
void hx_call_fail(hx_call *c, hx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Microseconds since the call started. */
uint64_t hx_call_elapsed_us(const hx_call *c);

/* Milliseconds left of the request's deadline for a database call: 0 when
 * there is no deadline. When it has already passed, answers
 * DEADLINE_EXCEEDED and returns false. */
bool hx_call_remaining_ms(hx_call *c, uint32_t *out);

/* Answers a failed store call (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL),
 * logging `err` (which never goes to the caller). */
void hx_call_store_failed(hx_call *c, const char *what, hx_status st, const char *err);

/* ---- the end of a call: the dispatcher's, once the method is done ---- */

/* The duration the log, the metrics and the reply agree on: an ingest's
 * own (measured where it was written), else the time since the start. */
uint64_t hx_call_duration(const hx_call *c);

/* The one log line of the request, with `us` from hx_call_duration(). */
void hx_call_log(const hx_call *c, uint64_t us);

/* What the server counts in its metrics (metrics.h). */
void hx_call_outcome(const hx_call *c, uint64_t us, hx_rpc_outcome *o);

/* Packs the reply into *out (malloc'd, caller frees). HX_RESOURCE_EXHAUSTED
 * when not even that could be allocated. */
hx_status hx_call_reply(hx_call *c, uint8_t **out, size_t *out_len);

#endif /* HELIOX_CALL_H */

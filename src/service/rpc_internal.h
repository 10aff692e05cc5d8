/*
 * rpc_internal.h - what rpc.c (the request path) and ingest.c (the Ingest
 * method) share. Private to hx_service.
 *
 * An hx_call is one request in flight: who sent it, its id, and the reply
 * being built (code, message, violations, result). Each step of the path
 * either leaves c->code at HX_OK and lets the next step run, or sets the
 * answer with hx_call_fail() and the path stops there.
 */
#ifndef HX_RPC_INTERNAL_H
#define HX_RPC_INTERNAL_H

#include <stdbool.h>
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
	hx_summary_row                             *rows; /* owned, backs summary's strings */
} hx_call;

/* Sets the reply's code and message (printf-style). */
void hx_call_fail(hx_call *c, hx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Milliseconds left of the request's deadline for a database call: 0 when
 * there is no deadline. When it has already passed, answers
 * DEADLINE_EXCEEDED and returns false. */
bool hx_call_remaining_ms(hx_call *c, uint32_t *out);

/* Answers a failed store call (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL),
 * logging `err` (which never goes to the caller). */
void hx_call_store_failed(hx_call *c, const char *what, hx_status st, const char *err);

/* The Ingest method (ingest.c). */
void hx_rpc_ingest(hx_call *c, const Heliox__Ingest__V1__IngestRequest *rq);
/* An authenticated ingest refused before the method ran (bad request_id, a
 * NUL byte): still an ingest result and an audit row. */
void hx_rpc_ingest_refused(hx_call *c, const Heliox__Ingest__V1__IngestRequest *rq);

#endif /* HX_RPC_INTERNAL_H */

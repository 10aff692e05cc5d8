/*
 * call.c - one request in flight: its state, the answers a step or a method
 * gives (hx_call_fail and the store-failure mapping), its deadline, and at
 * the end its log line, its metrics outcome and its packed reply.
 *
 * Below both the dispatcher (rpc.c) and the methods, so that neither has to
 * call the other for these (see call.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errf.h"
#include "call.h"
#include "log.h"

typedef Heliox__Ingest__V1__RpcResponse RpcResponse;

void
hx_call_init(hx_call *c, const hx_rpc_config *cfg, hx_store *store, const char *peer)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->store = store;
	c->peer = peer != NULL ? peer : "-";
	c->method = "-";
	c->started_us = hx_clock_us();
	c->code = HX_OK;
	hx_violations_init(&c->viol, HX_VIOLATIONS_DEFAULT_LIMIT);
}

void
hx_call_free(hx_call *c)
{
	hx_violations_free(&c->viol);
	free(c->summary.rows); /* one block with the rows behind the pointers */
	free(c->rows);
}

void
hx_call_fail(hx_call *c, hx_status code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	va_start(ap, fmt);
	hx_verrf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

uint64_t
hx_call_elapsed_us(const hx_call *c)
{
	return hx_clock_us() - c->started_us;
}

bool
hx_call_remaining_ms(hx_call *c, uint32_t *out)
{
	uint64_t spent = hx_call_elapsed_us(c) / 1000u;

	*out = 0;
	if (c->timeout_ms == 0)
		return true;
	if (spent >= c->timeout_ms) {
		hx_call_fail(c, HX_DEADLINE_EXCEEDED, "deadline of %" PRIu32 " ms exceeded",
		             c->timeout_ms);
		return false;
	}
	*out = c->timeout_ms - (uint32_t) spent;
	return true;
}

void
hx_call_store_failed(hx_call *c, const char *what, hx_status st, const char *err)
{
	/* A database that is away is logged once by the server's watch, not
	 * by every request that meets it. */
	if (st == HX_UNAVAILABLE)
		hx_debug(c->rid, "%s failed: %s: %s", what, hx_status_name(st), err);
	else
		hx_error(c->rid, "%s failed: %s: %s", what, hx_status_name(st), err);
	switch (st) {
	case HX_UNAVAILABLE:
		hx_call_fail(c, HX_UNAVAILABLE, "database unavailable, retry");
		break;
	case HX_DEADLINE_EXCEEDED:
		hx_call_fail(c, HX_DEADLINE_EXCEEDED, "deadline of %" PRIu32 " ms exceeded",
		             c->timeout_ms);
		break;
	default:
		hx_call_fail(c, HX_INTERNAL, "internal error");
		break;
	}
}

/* ---- the end of the call ------------------------------------------------------ */

uint64_t
hx_call_duration(const hx_call *c)
{
	return c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST
	    ? c->ingest.duration_us
	    : hx_call_elapsed_us(c);
}

void
hx_call_log(const hx_call *c, uint64_t us)
{
	const char   *sep = c->detail[0] != '\0' ? " " : "";
	const char   *base = c->base_rid[0] != '\0' ? c->base_rid : c->rid;
	char          ids[2 * HX_REQUEST_ID_MAX + 64] = "";
	hx_log_fields f = {
		.method = c->method,
		.peer = c->peer,
		.code = hx_status_name(c->code),
		.has_duration = true,
		.duration_us = us,
	};

	if (!hx_log_enabled(HX_LOG_INFO))
		return;
	if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST) {
		f.has_counts = true;
		f.received = c->ingest.received;
		f.inserted = c->ingest.inserted;
		f.updated = c->ingest.updated;
		f.unchanged = c->ingest.unchanged;
		f.failed = c->ingest.failed;
		f.deleted = c->ingest.deleted;
	}
	/* The ids the audit row holds, so that log and table join on them. */
	if (c->key_id != NULL) {
		snprintf(ids, sizeof(ids), " base_request_id=%s key_id=%s", base, c->key_id);
		f.base_request_id = base;
		f.key_id = c->key_id;
	}
	if (c->code == HX_OK)
		hx_log_fields_line(HX_LOG_INFO, c->rid, &f,
		                   "%s peer=%s%s code=OK%s%s duration_us=%" PRIu64, c->method,
		                   c->peer, ids, sep, c->detail, us);
	else
		hx_log_fields_line(
		    HX_LOG_INFO, c->rid, &f,
		    "%s peer=%s%s code=%s%s%s duration_us=%" PRIu64 " message=\"%s\"", c->method,
		    c->peer, ids, hx_status_name(c->code), sep, c->detail, us, c->message);
}

/* Records only of ingests that ran, as ingestion_runs holds them, so that
 * the metrics and the table agree. */
void
hx_call_outcome(const hx_call *c, uint64_t us, hx_rpc_outcome *o)
{
	o->auth = c->auth;
	o->code = c->code;
	o->method = c->method;
	o->duration_us = us;
	o->has_counts = c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST &&
	    !c->ingest.dry_run && !c->ingest.replayed;
	o->inserted = c->ingest.inserted;
	o->updated = c->ingest.updated;
	o->unchanged = c->ingest.unchanged;
	o->failed = c->ingest.failed;
	o->deleted = c->ingest.deleted;
}

/* Should the violation list not fit in memory, the reply goes without it
 * rather than not at all. */
hx_status
hx_call_reply(hx_call *c, uint8_t **out, size_t *out_len)
{
	Heliox__Ingest__V1__Status           st = HELIOX__INGEST__V1__STATUS__INIT;
	RpcResponse                          resp = HELIOX__INGEST__V1__RPC_RESPONSE__INIT;
	size_t                               n = c->viol.len;
	Heliox__Ingest__V1__FieldViolation  *fv = calloc(n ? n : 1, sizeof(*fv));
	Heliox__Ingest__V1__FieldViolation **fvp =
	    calloc(n ? n : 1, sizeof(*fvp)); // NOLINT(bugprone-sizeof-expression)

	if (fv == NULL || fvp == NULL)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		heliox__ingest__v1__field_violation__init(&fv[i]);
		fv[i].field = c->viol.items[i].field;
		fv[i].description = c->viol.items[i].description;
		fvp[i] = &fv[i];
	}
	st.code = (Heliox__Ingest__V1__Code) c->code;
	st.message = c->message;
	st.n_violations = n;
	st.violations = fvp;
	resp.status = &st;
	resp.request_id = c->rid;
	resp.result_case = c->result_case;
	if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST)
		resp.ingest = &c->ingest;
	else if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH)
		resp.health = &c->health;
	else if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY)
		resp.summary = &c->summary;

	size_t size = heliox__ingest__v1__rpc_response__get_packed_size(&resp);
	*out = malloc(size ? size : 1);
	*out_len = *out != NULL ? heliox__ingest__v1__rpc_response__pack(&resp, *out) : 0;
	free(fv);
	free(fvp);
	return *out != NULL ? HX_OK : HX_RESOURCE_EXHAUSTED;
}

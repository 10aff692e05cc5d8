/*
 * rpc.c - one request in, one reply out: the path of a request.
 *
 *   size limit -> decode -> auth -> request_id -> NUL check -> method -> reply
 *
 * Each step is one function that either lets the request go on or sets the
 * answer (hx_call_fail) and stops it. Whatever happens, the caller gets a
 * reply that carries a request_id (the caller's, or one generated here) and
 * the log gets one line per request carrying the same id. This file only
 * decodes, authenticates and dispatches: the methods are one file each
 * (method.h), the call's state and reply are call.c's, the NUL walk wire.c's.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/uuid.h"
#include "call.h"
#include "log.h"
#include "method.h"
#include "wire.h"

typedef Heliox__Ingest__V1__RpcRequest RpcRequest;

/* ---- request ids ------------------------------------------------------------ */

/* Printable ASCII without space, at most HX_REQUEST_ID_MAX bytes: safe to
 * echo, to log and to store. */
static bool
request_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n == HX_REQUEST_ID_MAX || (unsigned char) s[n] < 0x21 ||
		    (unsigned char) s[n] > 0x7e)
			return false;
	}
	return true;
}

/* Gives the call its id: the caller's when usable, else a generated one
 * (which an empty id asks for). Returns false for an unusable id. */
static bool
request_id_resolve(hx_call *c, const char *id)
{
	bool ok = request_id_valid(id);

	if (ok && id[0] != '\0')
		memcpy(c->rid, id, strlen(id) + 1);
	else
		hx_uuid4(c->rid);
	return ok;
}

/* ---- steps 1 to 5 ------------------------------------------------------------ */

static bool
step_size(hx_call *c, size_t len)
{
	size_t limit =
	    c->cfg->max_message_bytes ? c->cfg->max_message_bytes : HX_RPC_DEFAULT_MAX_MESSAGE;

	if (len <= limit)
		return true;
	hx_call_fail(c, HX_RESOURCE_EXHAUSTED,
	             "request of %zu bytes exceeds the limit of %zu bytes", len, limit);
	return false;
}

/*
 * protobuf-c allocates from an arena that dies with the call: a 5,000-record
 * request is 30,000 pieces, 1.2 ms of malloc and free against 0.27 ms from
 * the arena, in one block (hx_arena_size_for_message).
 *
 * That block (1 MB for 5,000 records) is kept for the thread's next request
 * (base/spare.h): a fresh one each time took 38,000 page faults over
 * 200,000 records and cost the fresh ingest more than the arena saved. One
 * per thread, since the workers decode at once.
 */
static _Thread_local hx_spare decode_spare = HX_SPARE_INIT;

void
hx_rpc_thread_done(void)
{
	hx_spare_drain(&decode_spare);
}

static RpcRequest *
step_decode(hx_call *c, hx_arena *arena, const uint8_t *req, size_t len)
{
	ProtobufCAllocator alloc = { hx_arena_cb_alloc, hx_arena_cb_free, arena };
	RpcRequest        *r = heliox__ingest__v1__rpc_request__unpack(&alloc, len, req);

	if (r == NULL)
		hx_call_fail(c, HX_INVALID_ARGUMENT, "request could not be decoded");
	return r;
}

static const char *
method_name(const RpcRequest *r)
{
	switch (r->call_case) {
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST:
		return "ingest";
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH:
		return "health";
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY:
		return "summary";
	default:
		return "-";
	}
}

/* Nothing of the request counts before this step. (Its method name and id
 * were read, only to label the log line: audit wants refused calls too.) */
static bool
step_auth(hx_call *c, const RpcRequest *r)
{
	const char *why = NULL;

	if (r->api_key[0] == '\0')
		why = "missing api_key";
	else if (hx_auth_check_id(atomic_load(&c->cfg->auth), r->api_key, strlen(r->api_key),
	                          &c->key_id) != HX_OK)
		why = "invalid api_key";
	if (why == NULL) {
		c->auth = HX_RPC_AUTH_OK;
		return true;
	}
	c->auth = HX_RPC_AUTH_FAILED;
	hx_warn(c->rid, "auth failed: method=%s peer=%s: %s", c->method, c->peer, why);
	hx_call_fail(c, HX_UNAUTHENTICATED, "%s", why);
	return false;
}

static bool
step_request_id(hx_call *c, bool valid, const char *base)
{
	bool base_ok = request_id_valid(base);

	snprintf(c->base_rid, sizeof(c->base_rid), "%s",
	         base_ok && base[0] != '\0' ? base : c->rid);
	if (valid && base_ok)
		return true;
	if (!valid)
		hx_violations_add(&c->viol, "request_id",
		                  "must be at most %d bytes of printable ASCII without spaces",
		                  HX_REQUEST_ID_MAX);
	if (!base_ok)
		hx_violations_add(&c->viol, "base_request_id",
		                  "must be at most %d bytes of printable ASCII without spaces",
		                  HX_REQUEST_ID_MAX);
	hx_call_fail(c, HX_INVALID_ARGUMENT, "invalid %s",
	             valid ? "base_request_id" : "request_id");
	return false;
}

/* protobuf-c cuts a string at its first NUL; wire.c finds those fields. */
static bool
step_nul(hx_call *c, const uint8_t *req, size_t len)
{
	hx_wire_nul_check(&c->viol, req, len);
	if (c->viol.total == 0)
		return true;
	hx_call_fail(c, HX_INVALID_ARGUMENT, "string fields must not contain NUL characters");
	return false;
}

/* ---- step 6: the method -------------------------------------------------------- */

static void
step_method(hx_call *c, const RpcRequest *r)
{
	c->timeout_ms = r->timeout_ms ? r->timeout_ms : c->cfg->default_timeout_ms;
	switch (r->call_case) {
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST:
		hx_method_ingest(c, r->ingest);
		break;
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH:
		hx_method_health(c);
		break;
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY:
		hx_method_summary(c, r->summary);
		break;
	default:
		hx_call_fail(c, HX_UNIMPLEMENTED, "no method set");
		break;
	}
}

/* ---- step 7: the reply (call.c) ------------------------------------------------------ */

hx_status
hx_rpc_handle(const hx_rpc_config *cfg, hx_store *store, const uint8_t *req, size_t len,
              const char *peer, hx_rpc_outcome *outcome, uint8_t **out, size_t *out_len)
{
	RpcRequest *r = NULL;
	hx_arena    arena;
	hx_call     c;

	hx_arena_init(&arena, hx_arena_size_for_message(len), &decode_spare);
	hx_call_init(&c, cfg, store, peer);
	if (step_size(&c, len) && (r = step_decode(&c, &arena, req, len)) != NULL) {
		bool id_ok = request_id_resolve(&c, r->request_id);
		c.method = method_name(r);
		if (step_auth(&c, r)) {
			if (step_request_id(&c, id_ok, r->base_request_id) &&
			    step_nul(&c, req, len))
				step_method(&c, r);
			else if (r->call_case == HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST)
				hx_method_ingest_refused(&c, r->ingest);
		}
	}
	if (c.rid[0] == '\0')
		hx_uuid4(c.rid); /* undecodable: still an id to match reply and log */
	uint64_t us = hx_call_duration(&c);
	hx_call_log(&c, us);
	hx_status st = hx_call_reply(&c, out, out_len);
	if (outcome != NULL)
		hx_call_outcome(&c, us, outcome);
	/* The decoded request goes back to malloc wiped, like the configured
	 * keys: it holds our copy of the caller's key (every copy, should
	 * the field come twice). The raw request bytes are nng's. */
	hx_arena_free(&arena, 1);
	hx_call_free(&c);
	return st;
}

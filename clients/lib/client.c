/*
 * client.c - the Heliox ingest client library (see include/heliox/client.h).
 *
 * One req0 socket per client, one dialer per URL. Every call opens its own
 * nng context and aio, so calls from several threads never share state: the
 * client itself is read-only after hx_client_open().
 *
 * A call is: build an RpcRequest, pack it straight into an nng message, send
 * it on a fresh context, wait for the reply within the call's timeout, and
 * hand it to reply.c, which unpacks the RpcResponse and copies everything
 * into an hx_reply the caller owns. The connections are link.c's. The
 * protobuf-c structures never leave these files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "base/errf.h"
#include "client_int.h"

#define HX_CLIENT_DEFAULT_MAX_REPLY ((size_t) 64 * 1024 * 1024)

/*
 * nng's REQ resends a request that has no answer after its resend time. The
 * server may legitimately take the whole timeout, so the resend time is the
 * timeout plus a margin: a slow ingest is never sent twice by the timer.
 */
#define HX_RESEND_MARGIN_MS 1000

/* nng_duration is an int32 of milliseconds; keep room for the margin. */
#define HX_CLIENT_MAX_TIMEOUT_MS ((uint32_t) INT32_MAX - HX_RESEND_MARGIN_MS)

/*
 * An UNAVAILABLE answer means the server could not reach its database and
 * wrote nothing; it reconnects by itself. A database restart takes seconds
 * to tens of seconds, so retries back off (100 ms doubling to 2 s) over a
 * window (hx_client_opts.retry_window_ms, default 30 s) that outlasts one,
 * always within the call's own deadline.
 */
#define HX_RETRY_BACKOFF_MS     100
#define HX_RETRY_BACKOFF_MAX_MS 2000

/* ---- small helpers ------------------------------------------------------ */

/*
 * protobuf-c's generated structs hold char * and uint8_t * even where packing
 * only reads, while our API takes const. Packing never writes through them,
 * so const is dropped here, in one place, through a union rather than a cast.
 */
static void *
wire_ptr(const void *p)
{
	union {
		const void *in;
		void       *out;
	} u;

	u.in = p;
	return (u.out);
}

/* NULL means "not given" in our API; the generated structs want "". */
static char *
wire_str(const char *s)
{
	return (wire_ptr(s != NULL ? s : ""));
}

static hx_status
nng_to_status(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return (HX_RESOURCE_EXHAUSTED);
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
	case NNG_ENOENT:
	case NNG_EPERM:
	case NNG_ECRYPTO:
		return (HX_INVALID_ARGUMENT);
	case NNG_ETIMEDOUT:
		return (HX_DEADLINE_EXCEEDED);
	default:
		return (HX_UNAVAILABLE);
	}
}

static uint32_t
effective_timeout(const hx_client *c, uint32_t ms)
{
	if (ms == 0) {
		ms = c->timeout_ms;
	}
	return (ms > HX_CLIENT_MAX_TIMEOUT_MS ? HX_CLIENT_MAX_TIMEOUT_MS : ms);
}

/* ---- open / close ------------------------------------------------------- */

static int
open_socket(hx_client *c, size_t maxsz, char *err, size_t errsz)
{
	int rv;

	if ((rv = nng_mtx_alloc(&c->mtx)) != 0 || (rv = nng_cv_alloc(&c->cv, c->mtx)) != 0) {
		hx_errf(err, errsz, "out of memory");
		return (rv);
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		hx_errf(err, errsz, "cannot open req0 socket: %s", nng_strerror(rv));
		return (rv);
	}
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, maxsz)) != 0) {
		hx_errf(err, errsz, "cannot set the reply size limit: %s", nng_strerror(rv));
		return (rv);
	}
	if ((rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, hxc_pipe_event, c)) != 0 ||
	    (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, hxc_pipe_event, c)) != 0) {
		hx_errf(err, errsz, "cannot watch connections: %s", nng_strerror(rv));
	}
	return (rv);
}

static int
copy_opts(hx_client *c, const hx_client_opts *opts)
{
	c->timeout_ms = opts->timeout_ms != 0 ? opts->timeout_ms : HX_CLIENT_DEFAULT_TIMEOUT_MS;
	c->retry_window_ms =
	    opts->retry_window_ms != 0 ? opts->retry_window_ms : HX_CLIENT_DEFAULT_RETRY_WINDOW_MS;
	if ((c->api_key = strdup(opts->api_key)) == NULL ||
	    (c->tls_ca = strdup(hxc_tls_ca_path(opts))) == NULL) {
		return (-1);
	}
	if (opts->tls_server_name != NULL &&
	    (c->tls_name = strdup(opts->tls_server_name)) == NULL) {
		return (-1);
	}
	if (opts->tls_ca_file != NULL && (c->tls_ca_given = strdup(opts->tls_ca_file)) == NULL) {
		return (-1);
	}
	return (0);
}

hx_status
hx_client_open(hx_client **out, const char *const *urls, size_t n_urls, const hx_client_opts *opts,
               char *err, size_t errsz)
{
	hx_client *c;
	size_t     maxsz, i;
	int        rv = 0;

	if (out == NULL || urls == NULL || n_urls == 0 || opts == NULL || opts->api_key == NULL) {
		hx_errf(err, errsz, "hx_client_open: urls, opts and opts->api_key are required");
		return (HX_INVALID_ARGUMENT);
	}
	if (n_urls > HX_CLIENT_MAX_URLS) {
		hx_errf(err, errsz, "hx_client_open: at most %d URLs", HX_CLIENT_MAX_URLS);
		return (HX_INVALID_ARGUMENT);
	}
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL || copy_opts(c, opts) != 0 ||
	    (c->links = calloc(n_urls, sizeof(url_link))) == NULL) {
		hx_errf(err, errsz, "out of memory");
		hx_client_close(c);
		return (HX_RESOURCE_EXHAUSTED);
	}
	maxsz = opts->max_reply_bytes != 0 ? opts->max_reply_bytes : HX_CLIENT_DEFAULT_MAX_REPLY;
	c->maxsz = maxsz;
	rv = open_socket(c, maxsz, err, errsz);
	for (i = 0; rv == 0 && i < n_urls; i++) {
		c->n_links = i + 1;
		rv = hxc_add_link(c, &c->links[i], urls[i], err, errsz);
	}
	if (rv != 0) {
		hx_client_close(c);
		return (nng_to_status(rv));
	}
	/* Dial now, in the background: the first call finds the outcome, and
	 * opening never waits for a server that is not up yet. */
	nng_mtx_lock(c->mtx);
	for (i = 0; i < c->n_links; i++) {
		hxc_link_kick(c, &c->links[i]);
	}
	nng_mtx_unlock(c->mtx);
	*out = c;
	return (HX_OK);
}

void
hx_client_close(hx_client *c)
{
	size_t i;

	if (c == NULL) {
		return;
	}
	if (c->mtx != NULL) {
		/*
		 * No attempt may be running when the socket closes: nng 1.5's
		 * nng_close() and a synchronous nng_dialer_start() on one of its
		 * dialers can deadlock (seen: 1 close in ~200 right after open).
		 * An attempt ends when the server answers or refuses, or when
		 * the kernel gives up on an unanswered connect.
		 */
		nng_mtx_lock(c->mtx);
		c->closing = true;
		for (i = 0; i < c->n_links; i++) {
			while (c->links[i].state == LINK_DIALING ||
			       c->links[i].state == LINK_RENEWING) {
				nng_cv_wait(c->cv);
			}
		}
		nng_mtx_unlock(c->mtx);
	}
	/* Closing the socket closes its dialers, ends attempts in progress and
	 * aborts calls in flight; then the attempt threads can be joined. */
	if (nng_socket_id(c->sock) > 0) {
		nng_close(c->sock);
	}
	for (i = 0; i < c->n_links; i++) {
		if (c->links[i].thr != NULL) {
			nng_thread_destroy(c->links[i].thr);
		}
		free(c->links[i].url);
	}
	free(c->links);
	if (c->cv != NULL) {
		nng_cv_free(c->cv);
	}
	if (c->mtx != NULL) {
		nng_mtx_free(c->mtx);
	}
	if (c->api_key != NULL) {
		/* Do not leave the key lying in freed memory; explicit_bzero is
		 * not optimised away as a dead store the way memset may be. */
		explicit_bzero(c->api_key, strlen(c->api_key));
		free(c->api_key);
	}
	free(c->tls_ca);
	free(c->tls_ca_given);
	free(c->tls_name);
	free(c);
}

/* ---- one round trip ----------------------------------------------------- */

/*
 * Starts op (nng_ctx_send or nng_ctx_recv) on x's aio unless every
 * connection went since x began; under c->mtx, so that hxc_pipe_event either
 * sees the operation running (and aborts it) or has already marked x.
 */
static bool
exchange_start(exchange *x, nng_ctx ctx, void (*op)(nng_ctx, nng_aio *))
{
	bool go;

	nng_mtx_lock(x->c->mtx);
	go = !x->lost;
	if (go) {
		op(ctx, x->aio);
	}
	nng_mtx_unlock(x->c->mtx);
	return go;
}

static void
ctx_exchange(nng_ctx ctx, exchange *x, nng_msg *req, uint32_t timeout_ms, nng_msg **rep)
{
	nng_aio *aio = x->aio;
	nng_time deadline = nng_clock() + timeout_ms;
	nng_time now;

	nng_aio_set_timeout(aio, (nng_duration) timeout_ms);
	nng_aio_set_msg(aio, req);
	if (!exchange_start(x, ctx, nng_ctx_send)) {
		nng_msg_free(req);
		return;
	}
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		nng_msg_free(nng_aio_get_msg(aio)); /* a failed send leaves it to us */
		return;
	}
	/* The deadline covers send and receive together. */
	if ((now = nng_clock()) >= deadline) {
		return;
	}
	nng_aio_set_timeout(aio, (nng_duration) (deadline - now));
	if (!exchange_start(x, ctx, nng_ctx_recv)) {
		return;
	}
	nng_aio_wait(aio);
	if (nng_aio_result(aio) == 0) {
		*rep = nng_aio_get_msg(aio);
	}
}

/* Enters x in the calls in flight; false (not entered) when every
 * connection is already gone. */
static bool
exchange_enter(exchange *x)
{
	hx_client *c = x->c;
	bool       ok;

	nng_mtx_lock(c->mtx);
	ok = !hxc_all_lost(c);
	if (ok) {
		x->next = c->inflight;
		x->prev = NULL;
		if (c->inflight != NULL) {
			c->inflight->prev = x;
		}
		c->inflight = x;
	}
	nng_mtx_unlock(c->mtx);
	return ok;
}

static void
exchange_leave(exchange *x)
{
	hx_client *c = x->c;

	nng_mtx_lock(c->mtx);
	if (x->prev != NULL) {
		x->prev->next = x->next;
	} else {
		c->inflight = x->next;
	}
	if (x->next != NULL) {
		x->next->prev = x->prev;
	}
	nng_mtx_unlock(c->mtx);
}

/*
 * Sends `req` (always consumed) and waits for the reply within timeout_ms.
 * Returns 0 with *rep set, or an nng error (NNG_ETIMEDOUT for no answer,
 * NNG_ECONNSHUT when every connection went while it waited: see
 * hxc_pipe_event).
 */
static int
roundtrip(hx_client *c, nng_msg *req, uint32_t timeout_ms, nng_msg **rep)
{
	nng_ctx  ctx;
	exchange x = { .c = c };
	int      rv;

	*rep = NULL;
	if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
		nng_msg_free(req);
		return (rv);
	}
	if ((rv = nng_aio_alloc(&x.aio, NULL, NULL)) != 0) {
		nng_msg_free(req);
		nng_ctx_close(ctx);
		return (rv);
	}
	rv = nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME,
	                    (nng_duration) (timeout_ms + HX_RESEND_MARGIN_MS));
	if (rv != 0) {
		nng_msg_free(req);
	} else if (!exchange_enter(&x)) {
		nng_msg_free(req);
		rv = NNG_ECONNSHUT;
	} else {
		ctx_exchange(ctx, &x, req, timeout_ms, rep);
		exchange_leave(&x);
		rv = *rep != NULL ? 0 : x.lost ? NNG_ECONNSHUT : nng_aio_result(x.aio);
		/* Out of time between send and receive: no answer in time. */
		if (*rep == NULL && rv == 0) {
			rv = NNG_ETIMEDOUT;
		}
	}
	nng_aio_free(x.aio);
	nng_ctx_close(ctx);
	return (rv);
}

hx_status
hx_client_call_raw(hx_client *c, const void *req, size_t len, uint32_t timeout_ms, void **resp,
                   size_t *resp_len)
{
	nng_msg *msg, *rep;
	int      rv;

	if (c == NULL || (req == NULL && len > 0) || resp == NULL || resp_len == NULL) {
		return (HX_INVALID_ARGUMENT);
	}
	*resp = NULL;
	*resp_len = 0;
	if (nng_msg_alloc(&msg, len) != 0) {
		return (HX_RESOURCE_EXHAUSTED);
	}
	if (len > 0) {
		memcpy(nng_msg_body(msg), req, len);
	}
	timeout_ms = effective_timeout(c, timeout_ms);
	if ((rv = hxc_await_link(c, nng_clock() + timeout_ms, NULL, 0)) != 0) {
		nng_msg_free(msg);
		return (rv == NNG_ETIMEDOUT ? HX_DEADLINE_EXCEEDED : HX_UNAVAILABLE);
	}
	if ((rv = roundtrip(c, msg, timeout_ms, &rep)) != 0) {
		return (nng_to_status(rv));
	}
	/* malloc(0) may return NULL; always hand back a freeable buffer. */
	*resp_len = nng_msg_len(rep);
	if ((*resp = malloc(*resp_len + 1)) == NULL) {
		*resp_len = 0;
		nng_msg_free(rep);
		return (HX_RESOURCE_EXHAUSTED);
	}
	memcpy(*resp, nng_msg_body(rep), *resp_len);
	nng_msg_free(rep);
	return (HX_OK);
}

/* ---- typed calls -------------------------------------------------------- */

/*
 * Sends the packed request, retrying an UNAVAILABLE answer with back-off
 * within the retry window and the deadline. The same bytes (and so the same
 * request_id) go out every time, so the server's replay makes a retried
 * ingest safe even if the first attempt did commit. A failure to connect is
 * not retried here: it is reported at once, with its cause.
 */
static hx_status
call_packed(hx_client *c, const uint8_t *buf, size_t len, uint32_t timeout_ms,
            const char *request_id, hx_reply *out)
{
	nng_time     start = nng_clock();
	nng_time     deadline = start + timeout_ms;
	nng_time     retry_end = start + c->retry_window_ms;
	nng_duration backoff = HX_RETRY_BACKOFF_MS;
	nng_msg     *msg, *rep;
	nng_time     now;
	char         why[1536];
	int          rv;

	for (;;) {
		if (nng_clock() >= deadline) {
			return (hxc_reply_no_answer(out, NNG_ETIMEDOUT, timeout_ms, request_id));
		}
		if ((rv = hxc_await_link(c, deadline, why, sizeof(why))) != 0) {
			return (hxc_reply_no_link(out, rv, timeout_ms, why, request_id));
		}
		if ((rv = nng_msg_alloc(&msg, len)) != 0) {
			return (hxc_reply_no_answer(out, rv, timeout_ms, request_id));
		}
		memcpy(nng_msg_body(msg), buf, len);
		now = nng_clock();
		rv = roundtrip(c, msg, (uint32_t) (deadline > now ? deadline - now : 1), &rep);
		if (rv == NNG_ECONNSHUT) {
			/* Every connection went while we waited: renew the links
			 * (hxc_await_link) and send the same bytes again, or say why
			 * nobody is there. A replay makes the resend safe. */
			continue;
		}
		if (rv != 0) {
			return (hxc_reply_no_answer(out, rv, timeout_ms, request_id));
		}
		hxc_decode_reply(rep, request_id, out);
		nng_msg_free(rep);
		now = nng_clock();
		if (out->code != HX_UNAVAILABLE || now + (nng_time) backoff >= deadline ||
		    now + (nng_time) backoff >= retry_end) {
			return (out->code);
		}
		nng_msleep(backoff);
		backoff =
		    backoff * 2 > HX_RETRY_BACKOFF_MAX_MS ? HX_RETRY_BACKOFF_MAX_MS : backoff * 2;
	}
}

/* Fills the fields every request carries and sends it. */
static hx_status
call(hx_client *c, rpc_request *req, const hx_call_opts *o, hx_reply *out)
{
	uint32_t  timeout_ms = effective_timeout(c, o != NULL ? o->timeout_ms : 0);
	uint8_t  *buf;
	size_t    len;
	hx_status st;

	req->api_key = c->api_key;
	req->request_id = wire_str(o != NULL ? o->request_id : NULL);
	req->base_request_id = wire_str(o != NULL ? o->base_request_id : NULL);
	req->timeout_ms = timeout_ms; /* the server derives its own deadline */
	len = heliox__ingest__v1__rpc_request__get_packed_size(req);
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		return (hxc_reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	heliox__ingest__v1__rpc_request__pack(req, buf);
	st = call_packed(c, buf, len, timeout_ms, req->request_id, out);
	free(buf);
	return (st);
}

/* Every typed call starts from a clean reply, so that `out` is always fully
 * defined on return whatever happened. */
static bool
begin(const hx_client *c, hx_reply *out)
{
	if (out == NULL) {
		return (false);
	}
	memset(out, 0, sizeof(*out));
	if (c == NULL) {
		hxc_reply_local(out, HX_INVALID_ARGUMENT, "no client");
		return (false);
	}
	return (true);
}

static hx_status
call_ingest(hx_client *c, const Heliox__Ingest__V1__IngestRequest *source, const hx_ingest_opts *o,
            hx_reply *out)
{
	/* A copy: the windows and provenance below live only for this call. */
	Heliox__Ingest__V1__IngestRequest  ing = *source;
	rpc_request                        req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__Provenance     prov = HELIOX__INGEST__V1__PROVENANCE__INIT;
	Heliox__Ingest__V1__ReplaceWindow *win = NULL, **ptrs = NULL;
	size_t                             n = o != NULL && o->replace != NULL ? o->n_replace : 0;
	size_t                             i;
	hx_status                          st;

	ing.dry_run = o != NULL && o->dry_run;
	ing.skip_invalid = o != NULL && o->skip_invalid;
	ing.client_failed = o != NULL ? o->client_failed : 0;
	if (n > 0 &&
	    ((win = calloc(n, sizeof(*win))) == NULL ||
	     (ptrs = calloc(n, sizeof(Heliox__Ingest__V1__ReplaceWindow *))) == NULL)) {
		free(win);
		return (hxc_reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	for (i = 0; i < n; i++) {
		heliox__ingest__v1__replace_window__init(&win[i]);
		win[i].provider = wire_str(o->replace[i].provider);
		win[i].from_date = wire_str(o->replace[i].from_date);
		win[i].to_date = wire_str(o->replace[i].to_date);
		ptrs[i] = &win[i];
	}
	ing.n_replace = n;
	ing.replace = ptrs;
	if (o != NULL && o->provenance != NULL) {
		prov.format = wire_str(o->provenance->format);
		prov.name = wire_str(o->provenance->name);
		prov.mapping_version = wire_str(o->provenance->mapping_version);
		ing.provenance = &prov;
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	req.ingest = &ing;
	st = call(c, &req, o != NULL ? &o->call : NULL, out);
	free(ptrs);
	free(win);
	return (st);
}

hx_status
hx_client_ingest_mock(hx_client *c, const hx_ingest_opts *o, hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_MOCK;
	ing.mock = 1;
	return (call_ingest(c, &ing, o, out));
}

hx_status
hx_client_ingest_json(hx_client *c, const void *json, size_t len, const hx_ingest_opts *o,
                      hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (json == NULL && len > 0) {
		return (hxc_reply_local(out, HX_INVALID_ARGUMENT, "no export document"));
	}
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_EXPORT_JSON;
	ing.export_json.len = len;
	ing.export_json.data = wire_ptr(json);
	return (call_ingest(c, &ing, o, out));
}

hx_status
hx_client_ingest_records(hx_client *c, const hx_cost_record *recs, size_t n,
                         const hx_ingest_opts *o, hx_reply *out)
{
	Heliox__Ingest__V1__IngestRequest ing = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	Heliox__Ingest__V1__RecordBatch   batch = HELIOX__INGEST__V1__RECORD_BATCH__INIT;
	Heliox__Ingest__V1__CostRecord   *wire = NULL, **ptrs = NULL;
	hx_status                         st;
	size_t                            i;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (recs == NULL && n > 0) {
		return (hxc_reply_local(out, HX_INVALID_ARGUMENT, "no records"));
	}
	if (n > 0 &&
	    ((wire = calloc(n, sizeof(*wire))) == NULL ||
	     (ptrs = calloc(n, sizeof(Heliox__Ingest__V1__CostRecord *))) == NULL)) {
		free(wire);
		return (hxc_reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	for (i = 0; i < n; i++) {
		heliox__ingest__v1__cost_record__init(&wire[i]);
		wire[i].date = wire_str(recs[i].date);
		wire[i].provider = wire_str(recs[i].provider);
		wire[i].gpu_type = wire_str(recs[i].gpu_type);
		wire[i].cost_usd = wire_str(recs[i].cost_usd);
		wire[i].gpu_hours = wire_str(recs[i].gpu_hours);
		ptrs[i] = &wire[i];
	}
	batch.n_records = n;
	batch.records = ptrs;
	ing.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS;
	ing.records = &batch;
	st = call_ingest(c, &ing, o, out);
	free(ptrs);
	free(wire);
	return (st);
}

hx_status
hx_client_health(hx_client *c, const hx_call_opts *o, hx_reply *out)
{
	rpc_request                       req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__HealthRequest h = HELIOX__INGEST__V1__HEALTH_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH;
	req.health = &h;
	return (call(c, &req, o, out));
}

hx_status
hx_client_summary(hx_client *c, const hx_summary_query *q, const hx_call_opts *o, hx_reply *out)
{
	rpc_request                        req = HELIOX__INGEST__V1__RPC_REQUEST__INIT;
	Heliox__Ingest__V1__SummaryRequest s = HELIOX__INGEST__V1__SUMMARY_REQUEST__INIT;

	if (!begin(c, out)) {
		return (out != NULL ? out->code : HX_INVALID_ARGUMENT);
	}
	if (q != NULL) {
		s.from_date = wire_str(q->from_date);
		s.to_date = wire_str(q->to_date);
		s.provider = wire_str(q->provider);
		s.gpu_type = wire_str(q->gpu_type);
		s.group_by = (Heliox__Ingest__V1__GroupBy) q->group_by;
	}
	req.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY;
	req.summary = &s;
	return (call(c, &req, o, out));
}

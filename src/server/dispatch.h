/*
 * dispatch.h - hands each request to the worker that went idle last.
 *
 * rep0 gives a request to whichever context has waited longest, so with
 * one receiving context per worker, calls that come one after another
 * rotate through every worker, and through every worker's PostgreSQL
 * backend: each call lands on a thread and a backend whose caches went cold
 * while the others ran. Measured on 28-record ingests, one client: p50
 * 1.25-1.53 ms with 4 workers against 1.00-1.34 ms with 1.
 *
 * So the receiving contexts are not tied to workers. Each context posts a
 * receive; when one completes (on nng's thread), the request goes to the
 * worker at the top of a stack of idle workers, the one that finished
 * last. Sequential calls then all run on one warm worker, and concurrent
 * calls still spread over all of them.
 *
 * A worker goes back on the idle stack before its reply is even sent: a
 * client that sends its next call the moment the reply lands must find
 * that same worker on top. The reply goes out on the request's context
 * without the worker waiting for it, and only then does the context
 * receive again. There are as many contexts as workers, and a worker is
 * idle before its context receives, so a completed receive always finds
 * an idle worker (until shutdown, when the request is left to the
 * client's resend).
 *
 * Thread-safe: hx_dispatch_wait/done run on the workers' threads, the
 * receive callbacks on nng's, hx_dispatch_stop on the main thread.
 */
#ifndef HELIOX_DISPATCH_H
#define HELIOX_DISPATCH_H

#include <nng/nng.h>

#include "heliox/heliox.h"

typedef struct hx_dispatch hx_dispatch;

/* One request handed to a worker: it owns msg until it sends or frees it,
 * and may use (or replace, see worker_defer) *ctx until hx_dispatch_done. */
typedef struct hx_dispatch_job {
	nng_msg *msg;
	nng_ctx *ctx; /* the context the request came on: its reply goes there */
	void    *slot;
} hx_dispatch_job;

/* Opens n_workers contexts on sock; receives start with hx_dispatch_start. */
hx_status hx_dispatch_new(hx_dispatch **out, nng_socket sock, unsigned n_workers);

/* Posts every context's first receive. */
void hx_dispatch_start(hx_dispatch *d);

/* Blocks worker `id` until a request is handed to it (HX_OK, *job set) or
 * the dispatcher stops (HX_UNAVAILABLE). A request handed over before the
 * stop is still returned: every request received is answered. */
hx_status hx_dispatch_wait(hx_dispatch *d, unsigned id, hx_dispatch_job *job);

/* Worker `id` is done with job: it goes back on top of the idle stack,
 * reply (taken; NULL: none) is sent on the job's context, and the context
 * then receives again. A reply not sent within send_timeout_ms (a peer
 * that stopped reading) is dropped with a log line naming peer. */
void hx_dispatch_reply(hx_dispatch *d, unsigned id, hx_dispatch_job *job, nng_msg *reply,
                       nng_duration send_timeout_ms, const char *peer);

/* Wakes every idle worker to return HX_UNAVAILABLE; busy ones do after
 * their request. Call before joining the workers. */
void hx_dispatch_stop(hx_dispatch *d);

/* Waits for the replies still being sent, cancels the pending receives
 * (requests stay queued in their connections) and closes the contexts.
 * Call with the workers joined. NULL is a no-op. */
void hx_dispatch_free(hx_dispatch *d);

#endif /* HELIOX_DISPATCH_H */

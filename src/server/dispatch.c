/*
 * dispatch.c - hands each request to the worker that went idle last
 * (dispatch.h says why).
 *
 * A slot is one receiving context with its aio. It is in nng's hands
 * (receiving, sending a reply, or pausing after a failed receive) or a
 * worker's (between hx_dispatch_wait and hx_dispatch_reply). The lock
 * guards the idle stack, each worker's handed-over job, the stop flag and
 * the count of replies being sent.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"

#define PAUSE_MS 200 /* after a failed receive (e.g. NNG_ENOMEM), before the next */
#define PEER_MAX 160

enum slot_state { SLOT_RECEIVING, SLOT_SENDING, SLOT_PAUSING, SLOT_WORKER };

struct slot {
	hx_dispatch    *d;
	nng_ctx         ctx;
	bool            ctx_open;
	nng_aio        *aio;
	enum slot_state state;          /* changed only by whoever holds the slot */
	char            peer[PEER_MAX]; /* the reply's, for a failed send's log line */
};

struct dworker {
	pthread_cond_t cv;
	bool           cv_ok;
	struct slot   *job; /* handed over, not yet taken by hx_dispatch_wait */
	nng_msg       *msg;
};

struct hx_dispatch {
	pthread_mutex_t lk;
	bool            lk_ok;
	bool            stopping;
	unsigned        n;
	struct dworker *workers;
	struct slot    *slots;
	unsigned       *idle; /* a stack of worker ids: the top went idle last */
	unsigned        n_idle;
	unsigned        n_sending;
	pthread_cond_t  sent; /* n_sending fell to 0 */
	bool            sent_ok;
};

/* A slot goes back to receiving, unless the server stops: then it stays
 * idle, and what arrives waits in its connection. */
static void
slot_receive(hx_dispatch *d, struct slot *s)
{
	bool stopping;

	pthread_mutex_lock(&d->lk);
	stopping = d->stopping;
	pthread_mutex_unlock(&d->lk);
	if (!stopping) {
		s->state = SLOT_RECEIVING;
		nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
		nng_ctx_recv(s->ctx, s->aio);
	}
}

/* A reply went out (rv 0) or not: either way the slot is free again. */
static void
slot_sent(hx_dispatch *d, struct slot *s, int rv)
{
	nng_msg *msg;

	if (rv != 0) {
		/* A failed send leaves the message with us. */
		if ((msg = nng_aio_get_msg(s->aio)) != NULL) {
			nng_msg_free(msg);
		}
		nng_aio_set_msg(s->aio, NULL);
		hx_warn("-", "reply to %s not sent: %s", s->peer, nng_strerror(rv));
	}
	s->state = SLOT_WORKER; /* nobody's, for a moment */
	slot_receive(d, s);
	pthread_mutex_lock(&d->lk);
	if (--d->n_sending == 0) {
		pthread_cond_broadcast(&d->sent);
	}
	pthread_mutex_unlock(&d->lk);
}

/* Gives msg, received on s, to the worker that went idle last. */
static void
hand_over(hx_dispatch *d, struct slot *s, nng_msg *msg)
{
	struct dworker *w = NULL;

	pthread_mutex_lock(&d->lk);
	if (d->n_idle > 0) {
		w = &d->workers[d->idle[--d->n_idle]];
		w->job = s;
		w->msg = msg;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&d->lk);
	if (w == NULL) {
		/* Only once every worker has stopped: the client's REQ resends
		 * it when its connection drops, as for any request not served. */
		hx_debug("-", "a request arrived during shutdown; not served");
		nng_msg_free(msg);
	}
}

/* Runs on nng's threads when a slot's receive (or pause) ends. */
static void
slot_cb(void *arg)
{
	struct slot *s = arg;
	int          rv = nng_aio_result(s->aio);
	nng_msg     *msg;

	if (s->state == SLOT_SENDING) {
		slot_sent(s->d, s, rv);
		return;
	}
	if (s->state == SLOT_PAUSING) {
		if (rv == 0) {
			slot_receive(s->d, s);
		}
		return;
	}
	switch (rv) {
	case 0:
		/* The last this callback does with the slot: the worker may
		 * send on its aio before hand_over even returns. */
		msg = nng_aio_get_msg(s->aio);
		nng_aio_set_msg(s->aio, NULL);
		s->state = SLOT_WORKER;
		hand_over(s->d, s, msg);
		return;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return; /* shutdown */
	default:
		/* Say so, and pause, so that a persistent error cannot turn
		 * receiving into a busy spin. */
		hx_warn("-", "receive failed: %s", nng_strerror(rv));
		s->state = SLOT_PAUSING;
		nng_sleep_aio(PAUSE_MS, s->aio);
		return;
	}
}

hx_status
hx_dispatch_new(hx_dispatch **out, nng_socket sock, unsigned n_workers)
{
	hx_dispatch *d;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	d->n = n_workers;
	d->workers = calloc(n_workers, sizeof(*d->workers));
	d->slots = calloc(n_workers, sizeof(*d->slots));
	d->idle = calloc(n_workers, sizeof(*d->idle));
	if (d->workers == NULL || d->slots == NULL || d->idle == NULL ||
	    pthread_mutex_init(&d->lk, NULL) != 0) {
		hx_dispatch_free(d);
		return HX_RESOURCE_EXHAUSTED;
	}
	d->lk_ok = true;
	if (pthread_cond_init(&d->sent, NULL) != 0) {
		hx_dispatch_free(d);
		return HX_RESOURCE_EXHAUSTED;
	}
	d->sent_ok = true;
	for (unsigned i = 0; i < n_workers; i++) {
		struct slot *s = &d->slots[i];

		s->d = d;
		if (pthread_cond_init(&d->workers[i].cv, NULL) != 0) {
			hx_dispatch_free(d);
			return HX_RESOURCE_EXHAUSTED;
		}
		d->workers[i].cv_ok = true;
		if (nng_aio_alloc(&s->aio, slot_cb, s) != 0 || nng_ctx_open(&s->ctx, sock) != 0) {
			hx_dispatch_free(d);
			return HX_RESOURCE_EXHAUSTED;
		}
		s->ctx_open = true;
		/* Worker 0 on top: at rest, the first worker takes the calls. */
		d->idle[d->n_idle++] = n_workers - 1 - i;
	}
	*out = d;
	return HX_OK;
}

void
hx_dispatch_start(hx_dispatch *d)
{
	for (unsigned i = 0; i < d->n; i++) {
		slot_receive(d, &d->slots[i]);
	}
}

hx_status
hx_dispatch_wait(hx_dispatch *d, unsigned id, hx_dispatch_job *job)
{
	struct dworker *w = &d->workers[id];
	hx_status       st = HX_OK;

	pthread_mutex_lock(&d->lk);
	while (w->job == NULL && !d->stopping) {
		pthread_cond_wait(&w->cv, &d->lk);
	}
	if (w->job != NULL) {
		job->slot = w->job;
		job->ctx = &w->job->ctx;
		job->msg = w->msg;
		w->job = NULL;
		w->msg = NULL;
	} else {
		/* Stopping: off the idle stack, so no request is handed to a
		 * worker that is gone. */
		for (unsigned i = 0; i < d->n_idle; i++) {
			if (d->idle[i] == id) {
				memmove(&d->idle[i], &d->idle[i + 1],
				        (d->n_idle - i - 1) * sizeof(d->idle[0]));
				d->n_idle--;
				break;
			}
		}
		st = HX_UNAVAILABLE;
	}
	pthread_mutex_unlock(&d->lk);
	return st;
}

void
hx_dispatch_reply(hx_dispatch *d, unsigned id, hx_dispatch_job *job, nng_msg *reply,
                  nng_duration send_timeout_ms, const char *peer)
{
	struct slot *s = job->slot;

	pthread_mutex_lock(&d->lk);
	/* Idle first (dispatch.h says why): should the next request arrive
	 * before this function returns, it waits in w->job for this worker. */
	if (!d->stopping) {
		d->idle[d->n_idle++] = id;
	}
	if (reply != NULL) {
		d->n_sending++;
	}
	pthread_mutex_unlock(&d->lk);
	memset(job, 0, sizeof(*job));
	if (reply == NULL) {
		slot_receive(d, s);
		return;
	}
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	s->state = SLOT_SENDING;
	nng_aio_set_msg(s->aio, reply);
	nng_aio_set_timeout(s->aio, send_timeout_ms);
	nng_ctx_send(s->ctx, s->aio);
}

void
hx_dispatch_stop(hx_dispatch *d)
{
	if (d == NULL) {
		return;
	}
	pthread_mutex_lock(&d->lk);
	d->stopping = true;
	for (unsigned i = 0; i < d->n; i++) {
		pthread_cond_signal(&d->workers[i].cv);
	}
	pthread_mutex_unlock(&d->lk);
}

void
hx_dispatch_free(hx_dispatch *d)
{
	if (d == NULL) {
		return;
	}
	/* The replies of the last requests first: each ends within its send
	 * timeout, and stopping the aio now would drop it. */
	if (d->sent_ok) {
		pthread_mutex_lock(&d->lk);
		while (d->n_sending > 0) {
			pthread_cond_wait(&d->sent, &d->lk);
		}
		pthread_mutex_unlock(&d->lk);
	}
	for (unsigned i = 0; d->slots != NULL && i < d->n; i++) {
		struct slot *s = &d->slots[i];

		if (s->aio != NULL) {
			nng_aio_stop(s->aio); /* waits for slot_cb */
		}
	}
	for (unsigned i = 0; d->workers != NULL && i < d->n; i++) {
		if (d->workers[i].msg != NULL) {
			nng_msg_free(d->workers[i].msg); /* handed over, never taken */
		}
		if (d->workers[i].cv_ok) {
			pthread_cond_destroy(&d->workers[i].cv);
		}
	}
	for (unsigned i = 0; d->slots != NULL && i < d->n; i++) {
		struct slot *s = &d->slots[i];

		if (s->ctx_open) {
			nng_ctx_close(s->ctx);
		}
		if (s->aio != NULL) {
			nng_aio_free(s->aio);
		}
	}
	if (d->sent_ok) {
		pthread_cond_destroy(&d->sent);
	}
	if (d->lk_ok) {
		pthread_mutex_destroy(&d->lk);
	}
	free(d->idle);
	free(d->slots);
	free(d->workers);
	free(d);
}

/*
 * stream_send.c - batches, a bounded queue and the worker threads that send
 * them (see stream_send.h).
 *
 * The main thread fills one batch at a time and queues it; each worker takes
 * the oldest queued batch, sends it (one synchronous call on the shared
 * client), adds the answer to the totals and puts the batch back on the
 * free list. A batch is allocated only when no free one exists and fewer
 * than inflight + 1 do, so the main thread waits rather than read ahead
 * without bound.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

#include "pathmap.h"
#include "stream_send.h"

/* "<base>-b<k>": the base is at most STREAM_BASE_ID_MAX (100) bytes, as
 * clients/cli/args.c checks --request-id, k at most 20 digits. */
#define SEND_RID_MAX 128u
/* How long the main thread waits before calling the idle hook again. */
#define SEND_IDLE_US 100000u

typedef struct send_batch {
	struct send_batch *next; /* on the free list or in the queue */
	uint64_t           k;
	size_t             n, cap;
	hx_record         *recs;
	uint64_t          *src; /* cost_data index of each record */
	char (*cost)[HX_MONEY_TEXT_MAX];
	char (*hours)[HX_MONEY_TEXT_MAX];
	hx_cost_record *wire;
	hx_reply        reply;
	bool            skipped; /* dropped after a failure, never sent */
	uint32_t        invalid; /* records of the file left out before/among these */
} send_batch;

struct sender {
	send_config           cfg;
	pthread_mutex_t       mu;
	pthread_cond_t        work; /* a batch was queued, or closing */
	pthread_cond_t        done; /* a batch came back */
	send_batch           *free_list;
	send_batch           *head, *tail; /* the queue, oldest first */
	send_batch           *cur;         /* being filled by the main thread */
	size_t                n_alloc;
	size_t                outstanding; /* queued or being sent */
	uint64_t              next_k;
	uint64_t              next_index; /* cost_data index after the last record added */
	bool                  closing;
	atomic_bool           stopped;
	atomic_uint_least64_t records_done, batches_done;
	send_totals           totals;
	pthread_t             threads[SEND_MAX_INFLIGHT];
	unsigned              n_threads;
};

/* ---- batches ---------------------------------------------------------------- */

static void
batch_free(send_batch *b)
{
	if (b == NULL) {
		return;
	}
	free(b->recs);
	free(b->src);
	free(b->cost);
	free(b->hours);
	free(b->wire);
	free(b);
}

static send_batch *
batch_new(size_t cap)
{
	send_batch *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		return (NULL);
	}
	b->cap = cap;
	b->recs = malloc(cap * sizeof(*b->recs));
	b->src = malloc(cap * sizeof(*b->src));
	b->cost = malloc(cap * sizeof(*b->cost));
	b->hours = malloc(cap * sizeof(*b->hours));
	b->wire = malloc(cap * sizeof(*b->wire));
	if (b->recs == NULL || b->src == NULL || b->cost == NULL || b->hours == NULL ||
	    b->wire == NULL) {
		batch_free(b);
		return (NULL);
	}
	return (b);
}

/* Small files get small batches: no need for 5000 slots for 28 records. */
static size_t
batch_cap(const send_config *cfg)
{
	if (cfg->expected != 0 && cfg->expected < cfg->batch_size) {
		return ((size_t) cfg->expected);
	}
	return (cfg->batch_size);
}

/* ---- one request -------------------------------------------------------------- */

/* Wire form: normalised text, and the cost as exact decimal text. */
static void
batch_wire(send_batch *b)
{
	size_t j;

	for (j = 0; j < b->n; j++) {
		hx_money_format(b->recs[j].cost, b->cost[j]);
		b->wire[j].date = b->recs[j].date;
		b->wire[j].provider = b->recs[j].provider;
		b->wire[j].gpu_type = b->recs[j].gpu_type;
		b->wire[j].cost_usd = b->cost[j];
		b->hours[j][0] = '\0'; /* unknown */
		if (b->recs[j].has_gpu_hours) {
			hx_money_format(b->recs[j].gpu_hours, b->hours[j]);
		}
		b->wire[j].gpu_hours = b->hours[j];
	}
}

static void
batch_send(const send_config *cfg, send_batch *b)
{
	char           rid[SEND_RID_MAX + 1];
	hx_ingest_opts o;

	memset(&o, 0, sizeof(o));
	snprintf(rid, sizeof(rid), "%s-b%" PRIu64, cfg->base_id, b->k);
	o.call.request_id = rid;
	o.call.base_request_id = cfg->base_id;
	o.call.timeout_ms = cfg->timeout_ms;
	o.dry_run = cfg->dry_run;
	o.skip_invalid = cfg->skip_invalid;
	o.client_failed = cfg->skip_invalid ? b->invalid : 0;
	o.replace = cfg->replace;
	o.n_replace = cfg->n_replace;
	o.provenance = cfg->provenance;
	batch_wire(b);
	hx_client_ingest_records(cfg->client, b->wire, b->n, &o, &b->reply);
}

/* ---- accounting (under the lock) ------------------------------------------------- */

/* The server names records by their place in the batch; say where they
 * are in the file. */
static void
map_violations(sender *s, const send_batch *b)
{
	char   field[HX_FIELD_MAX], desc[HX_DESC_MAX];
	size_t i;

	for (i = 0; i < b->reply.n_violations; i++) {
		pathmap_records(b->reply.violations[i].field, b->src, b->n, field, sizeof(field));
		pathmap_records(b->reply.violations[i].description, b->src, b->n, desc,
		                sizeof(desc));
		if (hx_violations_add(s->cfg.viol, field, "%s", desc) != HX_OK) {
			s->totals.out_of_memory = true;
		}
	}
}

static void
note_failure(sender *s, const send_batch *b)
{
	send_totals  *t = &s->totals;
	send_failure *f;

	atomic_store(&s->stopped, true);
	if (t->n_failures == SEND_MAX_INFLIGHT) {
		return;
	}
	f = &t->failures[t->n_failures++];
	f->batch = b->k;
	f->first = b->src[0];
	f->last = b->src[b->n - 1];
	f->code = b->reply.code;
	snprintf(f->message, sizeof(f->message), "%s", b->reply.message);
}

static void
account(sender *s, send_batch *b)
{
	send_totals            *t = &s->totals;
	const hx_ingest_result *g = &b->reply.ingest;

	if (b->skipped) {
		t->not_sent++;
	} else {
		map_violations(s, b);
	}
	if (!b->skipped && b->reply.code == HX_OK) {
		t->committed++;
		t->replayed += g->replayed ? 1 : 0;
		t->received += g->received;
		t->inserted += g->inserted;
		t->updated += g->updated;
		t->unchanged += g->unchanged;
		t->failed += g->failed;
		t->deleted += g->deleted;
	} else {
		/* Nothing of a failed or dropped batch was written. */
		if (!b->skipped) {
			note_failure(s, b);
		}
		t->received += b->n + b->invalid;
		t->failed += b->n + b->invalid;
	}
	atomic_fetch_add(&s->records_done, b->n);
	atomic_fetch_add(&s->batches_done, 1);
}

/* ---- workers ---------------------------------------------------------------------- */

static send_batch *
dequeue(sender *s)
{
	send_batch *b;

	while (s->head == NULL && !s->closing) {
		pthread_cond_wait(&s->work, &s->mu);
	}
	if ((b = s->head) != NULL && (s->head = b->next) == NULL) {
		s->tail = NULL;
	}
	return (b);
}

static void *
worker(void *arg)
{
	sender     *s = arg;
	send_batch *b;

	pthread_mutex_lock(&s->mu);
	while ((b = dequeue(s)) != NULL) {
		b->skipped = atomic_load(&s->stopped);
		pthread_mutex_unlock(&s->mu);
		if (!b->skipped) {
			batch_send(&s->cfg, b);
		}
		pthread_mutex_lock(&s->mu);
		account(s, b);
		hx_reply_free(&b->reply);
		b->n = 0;
		b->next = s->free_list;
		s->free_list = b;
		s->outstanding--;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return (NULL);
}

/* ---- the main thread's side -------------------------------------------------------- */

/* Waits on `done` for at most SEND_IDLE_US, then lets the caller redraw its
 * progress (without the lock: the hook may take its time). */
static void
wait_done(sender *s)
{
	/* hx_clock_us reads CLOCK_MONOTONIC, the clock `done` waits on. */
	uint64_t        until = hx_clock_us() + SEND_IDLE_US;
	struct timespec ts = { .tv_sec = (time_t) (until / 1000000u),
		               .tv_nsec = (long) (until % 1000000u) * 1000L };

	pthread_cond_timedwait(&s->done, &s->mu, &ts);
	if (s->cfg.idle != NULL) {
		pthread_mutex_unlock(&s->mu);
		s->cfg.idle(s->cfg.ctx);
		pthread_mutex_lock(&s->mu);
	}
}

/* A batch to fill: a free one, a new one while fewer than inflight + 1
 * exist, or the next one to come back. NULL once stopped or out of memory. */
static send_batch *
take_batch(sender *s)
{
	send_batch *b = NULL;

	pthread_mutex_lock(&s->mu);
	while (b == NULL && !atomic_load(&s->stopped)) {
		if ((b = s->free_list) != NULL) {
			s->free_list = b->next;
		} else if (s->n_alloc < (size_t) s->cfg.inflight + 1) {
			if ((b = batch_new(batch_cap(&s->cfg))) == NULL) {
				s->totals.out_of_memory = true;
				atomic_store(&s->stopped, true);
			} else {
				s->n_alloc++;
			}
		} else {
			wait_done(s);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return (b);
}

static void
submit(sender *s, send_batch *b)
{
	pthread_mutex_lock(&s->mu);
	b->k = ++s->next_k;
	b->next = NULL;
	if (s->tail != NULL) {
		s->tail->next = b;
	} else {
		s->head = b;
	}
	s->tail = b;
	s->outstanding++;
	s->totals.batches++;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
}

int
sender_add(sender *s, const hx_record *rec, uint64_t index)
{
	send_batch *b;

	/* A full batch goes only when the next record comes: invalid records
	 * left out after its last one are its to count (or, at the end of the
	 * file, sender_finish's last batch's). */
	if (s->cur != NULL && s->cur->n == s->cur->cap) {
		submit(s, s->cur);
		s->cur = NULL;
	}
	if (s->cur == NULL) {
		if ((s->cur = take_batch(s)) == NULL) {
			return (-1);
		}
		s->cur->invalid = 0;
	}
	b = s->cur;
	b->recs[b->n] = *rec;
	b->src[b->n] = index;
	b->n++;
	if (index > s->next_index) {
		b->invalid += (uint32_t) (index - s->next_index);
	}
	s->next_index = index + 1;
	return (atomic_load(&s->stopped) ? -1 : 0);
}

void
sender_stop(sender *s)
{
	atomic_store(&s->stopped, true);
}

void
sender_progress(const sender *s, uint64_t *records, uint64_t *batches)
{
	*records = atomic_load(&s->records_done);
	*batches = atomic_load(&s->batches_done);
}

/* ---- start and finish ---------------------------------------------------------------- */

static int
init_sync(sender *s)
{
	pthread_condattr_t ca;
	int                rv;

	if (pthread_condattr_init(&ca) != 0) {
		return (-1);
	}
	/* Timed waits on the monotonic clock (hx_clock_us's): a clock change
	 * must not stall us. */
	rv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rv == 0) {
		rv = pthread_cond_init(&s->done, &ca);
	}
	pthread_condattr_destroy(&ca);
	if (rv != 0) {
		return (-1);
	}
	if (pthread_cond_init(&s->work, NULL) != 0) {
		pthread_cond_destroy(&s->done);
		return (-1);
	}
	pthread_mutex_init(&s->mu, NULL);
	return (0);
}

static void
free_sender(sender *s)
{
	send_batch *b;

	batch_free(s->cur);
	while ((b = s->free_list) != NULL) {
		s->free_list = b->next;
		batch_free(b);
	}
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* Stops the workers once the queue is empty, and joins them. */
static void
join_workers(sender *s)
{
	unsigned i;

	pthread_mutex_lock(&s->mu);
	s->closing = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->mu);
	for (i = 0; i < s->n_threads; i++) {
		pthread_join(s->threads[i], NULL);
	}
	s->n_threads = 0;
}

int
sender_start(sender **out, const send_config *cfg)
{
	sender  *s = calloc(1, sizeof(*s));
	unsigned i;

	*out = NULL;
	if (s == NULL || cfg->batch_size == 0 || cfg->inflight == 0 ||
	    cfg->inflight > SEND_MAX_INFLIGHT) {
		free(s);
		return (-1);
	}
	s->cfg = *cfg;
	if (init_sync(s) != 0) {
		free(s);
		return (-1);
	}
	atomic_init(&s->stopped, false);
	atomic_init(&s->records_done, 0);
	atomic_init(&s->batches_done, 0);
	for (i = 0; i < cfg->inflight; i++) {
		if (pthread_create(&s->threads[i], NULL, worker, s) != 0) {
			join_workers(s);
			free_sender(s);
			return (-1);
		}
		s->n_threads++;
	}
	*out = s;
	return (0);
}

void
sender_finish(sender *s, send_totals *t)
{
	if (s->cur != NULL && s->cur->n > 0 && !atomic_load(&s->stopped)) {
		if (s->cfg.total > s->next_index) {
			s->cur->invalid += (uint32_t) (s->cfg.total - s->next_index);
		}
		submit(s, s->cur);
		s->cur = NULL;
	}
	pthread_mutex_lock(&s->mu);
	while (s->outstanding > 0) {
		wait_done(s);
	}
	pthread_mutex_unlock(&s->mu);
	join_workers(s);
	*t = s->totals;
	free_sender(s);
}

/*
 * stream_ingest.c - `ingest FILE`: check the whole file, then send it in
 * batches (see stream_ingest.h). This file is the sequence and the verdict;
 * the reading, checking and sending are in their own files.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/errf.h"

#include "bitvec.h"
#include "docreader.h"
#include "progress.h"
#include "source.h"
#include "stream_check.h"
#include "stream_ingest.h"

/* Set by SIGINT / SIGTERM: stop sending, wait for the batches in flight,
 * and say how to resume, rather than die with no word of what committed. */
static volatile sig_atomic_t interrupted;

typedef struct run {
	const stream_opts *o;
	stream_report     *r;
	source             src;
	bitvec             invalid; /* pass 1 -> pass 2 */
	progress           prog;
	sender            *snd;
	uint64_t           n_valid;
	bool               doc_error;
	hx_batch           meta;     /* v2: the document's replace windows and provenance */
	bool               windowed; /* it has windows: one request (stream_ingest.h) */
	uint64_t           outside;  /* records found outside their window (pass 2) */
} run;

/* ---- report ---------------------------------------------------------------- */

void
stream_report_init(stream_report *r)
{
	memset(r, 0, sizeof(*r));
	hx_violations_init(&r->viol, 0);
}

void
stream_report_free(stream_report *r)
{
	hx_violations_free(&r->viol);
}

static void set_outcome(stream_report *r, hx_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_outcome(stream_report *r, hx_status code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	hx_verrf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

/* ---- signals ----------------------------------------------------------------- */

static void
on_signal(int sig)
{
	(void) sig;
	interrupted = 1;
}

/* SA_RESETHAND: a second Ctrl-C kills at once, for a user who will not wait. */
static void
catch_signals(struct sigaction old[2])
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old[0]);
	sigaction(SIGTERM, &sa, &old[1]);
}

static void
restore_signals(const struct sigaction old[2])
{
	sigaction(SIGINT, &old[0], NULL);
	sigaction(SIGTERM, &old[1], NULL);
}

/* ---- pass 1: check ------------------------------------------------------------- */

static int
checking_tick(void *ctx, uint64_t records, uint64_t bytes)
{
	run *x = ctx;

	progress_update(&x->prog, records, bytes, NULL);
	return (interrupted ? 1 : 0);
}

/* Why a pass could not run to its end, in words, into the report. */
static void
pass_failed(run *x, check_result rc, const doc_reader *rd)
{
	stream_report *r = x->r;

	switch (rc) {
	case CHECK_IO:
		if (rd->tee_err != 0) {
			set_outcome(r, HX_INTERNAL, "cannot copy stdin to a temporary file: %s",
			            strerror(rd->tee_err));
		} else {
			set_outcome(r, HX_INTERNAL, "cannot read %s: %s", x->src.name,
			            strerror(rd->err));
		}
		break;
	case CHECK_NOMEM:
		set_outcome(r, HX_RESOURCE_EXHAUSTED, "out of memory");
		break;
	case CHECK_TOO_MANY:
		set_outcome(r, HX_OUT_OF_RANGE, "more than %" PRIu32 " records in one file",
		            UINT32_MAX - 1);
		break;
	case CHECK_CHANGED:
		set_outcome(r, HX_ABORTED, "%s changed while it was being ingested", x->src.name);
		break;
	default: /* CHECK_STOPPED */
		if (interrupted) {
			set_outcome(r, HX_CANCELLED, "interrupted");
		}
		break;
	}
}

static check_result
pass_check(run *x)
{
	doc_reader   rd;
	stream_check c;
	check_result rc;

	if (doc_reader_init(&rd, x->src.fd, DOC_READER_BUFSIZE, DOC_READER_MAX_SPAN) != 0) {
		pass_failed(x, CHECK_NOMEM, &rd);
		return (CHECK_NOMEM);
	}
	rd.tee_fd = x->src.spool_fd;
	stream_check_init(&c, CHECK_VALIDATE);
	c.viol = &x->r->viol;
	c.invalid = &x->invalid;
	c.tick = checking_tick;
	c.ctx = x;
	c.meta = &x->meta;
	progress_begin(&x->prog, "checking", x->src.size);
	if ((rc = stream_check_run(&c, &rd)) != CHECK_OK) {
		pass_failed(x, rc, &rd);
	} else {
		progress_finish(&x->prog, c.received, NULL);
	}
	x->r->received = c.received;
	x->n_valid = c.received - c.n_invalid;
	x->doc_error = c.doc_error;
	stream_check_free(&c); /* the key set goes before any batch exists */
	doc_reader_free(&rd);
	return (rc);
}

/* The first violation about the document rather than one record. */
static const hx_violation *
first_doc_violation(const hx_violations *v)
{
	size_t i;

	for (i = 0; i < v->len; i++) {
		if (strncmp(v->items[i].field, "cost_data[", 10) != 0) {
			return (&v->items[i]);
		}
	}
	return (NULL);
}

/* The file is at fault: say so, and that nothing was sent. */
static void
verdict_invalid(run *x)
{
	stream_report *r = x->r;
	char           capped[64] = "";

	if (r->viol.total > r->viol.len) {
		snprintf(capped, sizeof(capped), " (first %zu listed)", r->viol.len);
	}
	if (x->doc_error) {
		const hx_violation *v = first_doc_violation(&r->viol);

		set_outcome(r, HX_INVALID_ARGUMENT,
		            "the export is invalid: %s %s%s; nothing was sent",
		            v != NULL ? v->field : "$", v != NULL ? v->description : "", capped);
	} else {
		set_outcome(r, HX_INVALID_ARGUMENT,
		            "%" PRIu64 " of %" PRIu64 " records are invalid%s; nothing was sent",
		            r->received - x->n_valid, r->received, capped);
	}
}

/* ---- pass 2: send ----------------------------------------------------------------- */

static void
draw_sending(run *x)
{
	uint64_t records, batches;
	char     note[64];

	sender_progress(x->snd, &records, &batches);
	snprintf(note, sizeof(note), "batch %" PRIu64 "/%" PRIu64, batches, x->r->batches_total);
	progress_update(&x->prog, records, records, note);
}

/* A record outside its provider's window: the one request must not go,
 * and every such record is reported. The request's single batch is only
 * sent once full (or at the end, unless stopped), so stopping the sender
 * here, before the batch filled, sends nothing. */
static int
outside_window(run *x, const hx_record *rec, uint64_t index)
{
	char field[HX_FIELD_MAX];

	x->outside++;
	sender_stop(x->snd);
	snprintf(field, sizeof(field), "cost_data[%" PRIu64 "]", index);
	return (hx_window_violation(&x->meta, rec, field, &x->r->viol) == HX_RESOURCE_EXHAUSTED);
}

static int
send_sink(void *ctx, const hx_record *rec, uint64_t index)
{
	run *x = ctx;

	if (interrupted) {
		sender_stop(x->snd);
		return (1);
	}
	if (x->windowed && !hx_record_in_window(&x->meta, rec)) {
		return (outside_window(x, rec, index));
	}
	if (x->outside > 0) {
		return (0); /* stopped already; read on for the other violations */
	}
	return (sender_add(x->snd, rec, index) != 0 ? 1 : 0);
}

static int
send_tick(void *ctx, uint64_t records, uint64_t bytes)
{
	draw_sending(ctx);
	return (0);
}

static void
send_idle(void *ctx)
{
	run *x = ctx;

	if (interrupted) {
		sender_stop(x->snd);
	}
	draw_sending(x);
}

static int
start_sender(run *x, hx_client *client)
{
	send_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.client = client;
	cfg.base_id = x->o->base_id;
	cfg.batch_size = x->windowed ? (size_t) x->n_valid : x->o->batch_size;
	cfg.inflight = x->o->inflight;
	cfg.expected = x->n_valid;
	cfg.total = x->r->received;
	cfg.dry_run = x->o->dry_run;
	cfg.skip_invalid = x->o->skip_invalid;
	cfg.timeout_ms = x->o->timeout_ms;
	cfg.viol = &x->r->viol;
	cfg.replace = x->meta.windows;
	cfg.n_replace = x->meta.n_windows;
	cfg.provenance = &x->meta.prov;
	cfg.idle = send_idle;
	cfg.ctx = x;
	return (sender_start(&x->snd, &cfg));
}

static check_result
send_records(run *x, int fd)
{
	doc_reader   rd;
	stream_check c;
	check_result rc;

	if (doc_reader_init(&rd, fd, DOC_READER_BUFSIZE, DOC_READER_MAX_SPAN) != 0) {
		return (CHECK_NOMEM);
	}
	stream_check_init(&c, CHECK_EMIT);
	c.invalid = &x->invalid;
	c.expect = x->r->received;
	c.sink = send_sink;
	c.tick = send_tick;
	c.ctx = x;
	progress_begin(&x->prog, "sending", x->n_valid);
	rc = stream_check_run(&c, &rd);
	if (rc != CHECK_OK) {
		/* No partial last batch from a file that changed or a stop. */
		sender_stop(x->snd);
	}
	sender_finish(x->snd, &x->r->batches);
	x->snd = NULL;
	if (rc == CHECK_OK && x->r->batches.n_failures == 0 && x->r->batches.not_sent == 0) {
		char note[64];

		snprintf(note, sizeof(note), "batch %" PRIu64 "/%" PRIu64, x->r->batches.batches,
		         x->r->batches_total);
		progress_finish(&x->prog, x->n_valid, note);
	}
	if (rc != CHECK_OK && rc != CHECK_STOPPED) {
		pass_failed(x, rc, &rd);
	}
	stream_check_free(&c);
	doc_reader_free(&rd);
	return (rc);
}

/* ---- the verdict ------------------------------------------------------------------ */

/* A failed batch is the reason the run stopped: it decides the outcome. */
static void
verdict_sent(run *x)
{
	stream_report      *r = x->r;
	const send_totals  *t = &r->batches;
	const send_failure *f = &t->failures[0];

	if (t->n_failures > 0) {
		/* Batch k is fixed by the file and --batch: the server has seen
		 * this id with other records. */
		bool id_reused = f->code == HX_INVALID_ARGUMENT && strstr(f->message, "request_id");

		set_outcome(r, f->code,
		            "batch %" PRIu64 " of %" PRIu64 " (cost_data[%" PRIu64 "..%" PRIu64
		            "]) failed: %s%s",
		            f->batch, r->batches_total, f->first, f->last, f->message,
		            id_reused ? " (resume with the same file and --batch as the first run)"
		                      : "");
	} else if (t->out_of_memory) {
		set_outcome(r, HX_RESOURCE_EXHAUSTED, "out of memory");
	} else if (interrupted) {
		set_outcome(r, HX_CANCELLED, "interrupted");
	}
}

/*
 * --skip-invalid and not one valid record: nothing to write, yet the server
 * still hears of the import (one empty batch carrying the count), so that
 * its audit row says what is printed here.
 */
static void
send_only_count(run *x, hx_client *client)
{
	stream_report *r = x->r;
	send_totals   *t = &r->batches;
	hx_ingest_opts o;
	hx_reply       rep;
	char           rid[STREAM_BASE_ID_MAX + 32];

	if (r->received == 0 || r->received > UINT32_MAX) {
		return;
	}
	memset(&o, 0, sizeof(o));
	memset(&rep, 0, sizeof(rep));
	snprintf(rid, sizeof(rid), "%s-b1", r->base_id);
	o.call.request_id = rid;
	o.call.base_request_id = r->base_id;
	o.call.timeout_ms = x->o->timeout_ms;
	o.dry_run = x->o->dry_run;
	o.skip_invalid = true;
	o.client_failed = (uint32_t) r->received;
	r->batches_total = 1;
	r->sent = true;
	t->batches = 1;
	hx_client_ingest_records(client, NULL, 0, &o, &rep);
	if (rep.code == HX_OK) {
		t->committed = 1;
		t->replayed = rep.ingest.replayed ? 1 : 0;
		t->received = rep.ingest.received;
		t->failed = rep.ingest.failed;
	} else {
		t->n_failures = 1;
		t->failures[0].batch = 1;
		t->failures[0].first = 0;
		t->failures[0].last = r->received - 1;
		t->failures[0].code = rep.code;
		snprintf(t->failures[0].message, sizeof(t->failures[0].message), "%s", rep.message);
	}
	hx_reply_free(&rep);
	verdict_sent(x);
}

/* The document's windows, checked before anything else: with
 * --skip-invalid (the server refuses it: a skipped record would delete its
 * stored row), or too many records for the one request it must be. */
static void
check_windows(run *x)
{
	hx_status st = HX_OK;

	x->windowed = x->meta.windows_received > 0;
	if (!x->windowed) {
		return;
	}
	if (x->o->skip_invalid) {
		st = hx_violations_add(&x->r->viol, "replace",
		                       "cannot be combined with --skip-invalid (a skipped record "
		                       "would delete its stored row)");
		x->doc_error = true;
	} else if (x->n_valid > STREAM_MAX_BATCH) {
		st = hx_violations_add(
		    &x->r->viol, "replace",
		    "a document with replace windows goes as one request: at most "
		    "%u records, this one has %" PRIu64,
		    STREAM_MAX_BATCH, x->n_valid);
		x->doc_error = true;
	}
	(void) st; /* out of memory: the verdict still says the file is at fault */
}

/* Windows and no records: one request with none, which empties them. */
static void
send_empty(run *x, hx_client *client)
{
	stream_report *r = x->r;
	char           rid[STREAM_BASE_ID_MAX + 8];
	hx_ingest_opts o;
	hx_reply       rep;

	memset(&o, 0, sizeof(o));
	snprintf(rid, sizeof(rid), "%s-b1", x->o->base_id);
	o.call.request_id = rid;
	o.call.base_request_id = x->o->base_id;
	o.call.timeout_ms = x->o->timeout_ms;
	o.dry_run = x->o->dry_run;
	o.replace = x->meta.windows;
	o.n_replace = x->meta.n_windows;
	o.provenance = &x->meta.prov;
	r->sent = true;
	r->batches.batches = 1;
	hx_client_ingest_records(client, NULL, 0, &o, &rep);
	for (size_t i = 0; i < rep.n_violations; i++) {
		(void) hx_violations_add(&r->viol, rep.violations[i].field, "%s",
		                         rep.violations[i].description);
	}
	if (rep.code == HX_OK) {
		r->batches.committed = 1;
		r->batches.replayed = rep.ingest.replayed ? 1 : 0;
		r->batches.deleted = rep.ingest.deleted;
	} else {
		set_outcome(r, rep.code, "the request failed: %s", rep.message);
	}
	hx_reply_free(&rep);
}

static void
check_then_send(run *x, hx_client *client)
{
	stream_report *r = x->r;
	int            fd;

	check_windows(x);
	if (x->doc_error || (r->viol.total > 0 && !x->o->skip_invalid)) {
		verdict_invalid(x);
		return;
	}
	if (x->windowed) {
		r->batches_total = 1;
		if (x->n_valid == 0) {
			send_empty(x, client);
			return;
		}
	} else {
		r->batches_total = (x->n_valid + x->o->batch_size - 1) / x->o->batch_size;
	}
	if (x->n_valid == 0) {
		send_only_count(x, client); /* --skip-invalid, and not one valid record */
		return;
	}
	if ((fd = source_rewind(&x->src, r->message, sizeof(r->message))) < 0) {
		r->code = HX_ABORTED;
		return;
	}
	if (start_sender(x, client) != 0) {
		set_outcome(r, HX_RESOURCE_EXHAUSTED, "cannot start the sending threads");
		return;
	}
	r->sent = true;
	if (x->o->progress) {
		/* Said now, not only at the end: a run that is killed can still
		 * be resumed by whoever watched it start. The checking line goes
		 * first, so that this one starts clean. */
		progress_end(&x->prog);
		fprintf(stderr, "sending %" PRIu64 " batches as request ids %s-b1..b%" PRIu64 "\n",
		        r->batches_total, r->base_id, r->batches_total);
	}
	send_records(x, fd);
	if (x->outside > 0) {
		r->sent = false; /* the one request never went */
		set_outcome(r, HX_INVALID_ARGUMENT,
		            "%" PRIu64 " of %" PRIu64 " records are outside their replace window; "
		            "nothing was sent",
		            x->outside, r->received);
		return;
	}
	verdict_sent(x);
}

/* Whatever was not written failed: the contract's
 * inserted + updated + unchanged + failed == received, for the file. */
static void
totals(stream_report *r)
{
	r->inserted = r->batches.inserted;
	r->updated = r->batches.updated;
	r->unchanged = r->batches.unchanged;
	r->deleted = r->batches.deleted;
	r->failed = r->received - (r->inserted + r->updated + r->unchanged);
}

void
stream_ingest(hx_client *client, const stream_opts *o, stream_report *r)
{
	struct sigaction old[2];
	uint64_t         t0 = hx_clock_us();
	bool             usage;
	run              x;

	memset(&x, 0, sizeof(x));
	x.o = o;
	x.r = r;
	r->base_id = o->base_id;
	r->dry_run = o->dry_run;
	r->batch_size = o->batch_size;
	r->code = HX_OK;
	bitvec_init(&x.invalid);
	hx_batch_init(&x.meta);
	progress_init(&x.prog, o->progress);
	if (source_open(&x.src, o->path, &usage, r->message, sizeof(r->message)) != 0) {
		r->code = usage ? HX_INVALID_ARGUMENT : HX_INTERNAL;
		r->usage_error = usage;
	} else {
		catch_signals(old);
		if (pass_check(&x) == CHECK_OK) {
			check_then_send(&x, client);
		}
		progress_end(&x.prog);
		restore_signals(old);
	}
	totals(r);
	r->duration_us = hx_clock_us() - t0;
	source_close(&x.src);
	bitvec_free(&x.invalid);
	hx_batch_free(&x.meta);
}

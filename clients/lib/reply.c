/*
 * reply.c - replies: the RpcResponse unpacked and copied into the hx_reply
 * the caller owns, the replies the library makes itself (no connection, no
 * answer, out of memory), and hx_reply_free. See client_int.h.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/errf.h"
#include "base/spare.h"
#include "client_int.h"

/*
 * The two large blocks of a big reply - the arena its bytes are unpacked
 * into, and the rows array hx_reply_free releases - are kept for the next
 * call (base/spare.h): a 1,000-row Summary spent half of the client's CPU
 * in page faults on fresh blocks. Process-wide, since hx_reply_free has no
 * client; at most two blocks of HX_SPARE_MAX each, freed when the library
 * is unloaded.
 */
static hx_spare decode_spare = HX_SPARE_INIT;
static hx_spare rows_spare = HX_SPARE_INIT;

__attribute__((destructor)) static void
drain_spares(void)
{
	hx_spare_drain(&decode_spare);
	hx_spare_drain(&rows_spare);
}

/*
 * Replies promise non-NULL message and request_id. When even a tiny strdup
 * fails they point here instead, and hx_reply_free() knows not to free it.
 */
static char empty_text[1];

/* ---- small helpers ------------------------------------------------------ */

static char *
dup_or_empty(const char *s)
{
	char *d;

	if (s == NULL || *s == '\0') {
		return (empty_text);
	}
	if ((d = strdup(s)) == NULL) {
		return (NULL);
	}
	return (d);
}

static void
free_text(char *s)
{
	if (s != empty_text) {
		free(s);
	}
}

/* Copies src into a fixed field, truncating: the reply's arrays are fixed
 * size by design (header), and a cut description is better than none.
 * Not snprintf: a 1,000-row Summary copies 10,000 fields, and formatting
 * them cost 0.27 ms a call. */
static void
copy_field(char *dst, size_t dstsz, const char *src)
{
	size_t n = src != NULL ? strnlen(src, dstsz - 1) : 0;

	if (n > 0) {
		memcpy(dst, src, n);
	}
	dst[n] = '\0';
}

/* ---- replies ------------------------------------------------------------ */

void
hx_reply_free(hx_reply *r)
{
	if (r == NULL) {
		return;
	}
	free_text(r->message);
	free_text(r->request_id);
	free(r->violations);
	hx_spare_free(&rows_spare, r->rows);
	memset(r, 0, sizeof(*r));
}

/* Fills a reply that carries no server answer. */

hx_status
hxc_reply_local(hx_reply *out, hx_status code, const char *fmt, ...)
{
	char    buf[2048];
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hx_reply_free(out);
	out->code = code;
	if ((out->message = dup_or_empty(buf)) == NULL) {
		out->message = empty_text;
	}
	out->request_id = empty_text;
	return (code);
}

/* Names the request we sent in a reply made here: a local reply has no
 * server's echo, and the caller still wants to look the request up later. */
hx_status
hxc_reply_set_id(hx_reply *out, const char *request_id)
{
	free_text(out->request_id);
	if ((out->request_id = dup_or_empty(request_id)) == NULL) {
		out->request_id = empty_text;
	}
	return (out->code);
}

/*
 * No answer. The reply still names the request_id that was sent, so the
 * caller can look the request up (or retry it as a replay) later.
 */
hx_status
hxc_reply_no_answer(hx_reply *out, int rv, uint32_t timeout_ms, const char *request_id)
{
	if (rv == NNG_ETIMEDOUT) {
		hxc_reply_local(out, HX_DEADLINE_EXCEEDED, "no answer from the server within %u ms",
		                (unsigned) timeout_ms);
	} else if (rv == NNG_ENOMEM) {
		hxc_reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory");
	} else {
		hxc_reply_local(out, HX_UNAVAILABLE, "%s", nng_strerror(rv));
	}
	return (hxc_reply_set_id(out, request_id));
}

static int
copy_status(hx_reply *out, const Heliox__Ingest__V1__Status *st)
{
	size_t i;

	/* proto3: an absent status is the default one, code OK. */
	out->code = st != NULL ? (hx_status) st->code : HX_OK;
	if ((out->message = dup_or_empty(st != NULL ? st->message : NULL)) == NULL) {
		return (-1);
	}
	if (st == NULL || st->n_violations == 0) {
		return (0);
	}
	if ((out->violations = calloc(st->n_violations, sizeof(hx_violation))) == NULL) {
		return (-1);
	}
	out->n_violations = st->n_violations;
	for (i = 0; i < st->n_violations; i++) {
		copy_field(out->violations[i].field, HX_FIELD_MAX, st->violations[i]->field);
		copy_field(out->violations[i].description, HX_DESC_MAX,
		           st->violations[i]->description);
	}
	return (0);
}

static void
copy_ingest(hx_ingest_result *d, const Heliox__Ingest__V1__IngestResult *s)
{
	d->received = s->received;
	d->inserted = s->inserted;
	d->updated = s->updated;
	d->unchanged = s->unchanged;
	d->failed = s->failed;
	d->deleted = s->deleted;
	d->duration_us = s->duration_us;
	d->replayed = s->replayed != 0;
	d->dry_run = s->dry_run != 0;
}

static void
copy_health(hx_health_result *d, const Heliox__Ingest__V1__HealthResult *s)
{
	d->serving = s->serving != 0;
	d->database_ok = s->database_ok != 0;
	copy_field(d->version, sizeof(d->version), s->version);
	d->uptime_s = s->uptime_s;
}

static int
copy_rows(hx_reply *out, const Heliox__Ingest__V1__SummaryResult *s)
{
	hx_summary_row *r;
	size_t          i;

	if (s->n_rows == 0) {
		return (0);
	}
	if (s->n_rows > SIZE_MAX / sizeof(hx_summary_row) ||
	    (out->rows = hx_spare_alloc(&rows_spare, s->n_rows * sizeof(hx_summary_row))) == NULL) {
		return (-1);
	}
	/* Zeroed as calloc would: no byte of an earlier reply stays behind a
	 * field's end. */
	memset(out->rows, 0, s->n_rows * sizeof(hx_summary_row));
	out->n_rows = s->n_rows;
	for (i = 0; i < s->n_rows; i++) {
		const Heliox__Ingest__V1__SummaryRow *w = s->rows[i];

		r = &out->rows[i];
		copy_field(r->date, sizeof(r->date), w->date);
		copy_field(r->provider, sizeof(r->provider), w->provider);
		copy_field(r->gpu_type, sizeof(r->gpu_type), w->gpu_type);
		r->records = w->records;
		copy_field(r->total_usd, sizeof(r->total_usd), w->total_usd);
		copy_field(r->avg_usd, sizeof(r->avg_usd), w->avg_usd);
		copy_field(r->min_usd, sizeof(r->min_usd), w->min_usd);
		copy_field(r->max_usd, sizeof(r->max_usd), w->max_usd);
		copy_field(r->gpu_hours, sizeof(r->gpu_hours), w->gpu_hours);
		copy_field(r->usd_per_gpu_hour, sizeof(r->usd_per_gpu_hour), w->usd_per_gpu_hour);
	}
	return (0);
}

static int
copy_result(hx_reply *out, const rpc_response *rsp)
{
	switch (rsp->result_case) {
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST:
		out->kind = HX_RESULT_INGEST;
		copy_ingest(&out->ingest, rsp->ingest);
		return (0);
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH:
		out->kind = HX_RESULT_HEALTH;
		copy_health(&out->health, rsp->health);
		return (0);
	case HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY:
		out->kind = HX_RESULT_SUMMARY;
		return (copy_rows(out, rsp->summary));
	default:
		out->kind = HX_RESULT_NONE;
		return (0);
	}
}

/*
 * Unpacks the reply bytes into `out`. protobuf-c allocates from an arena
 * that dies with this call, since everything is copied out: a 1,000-row
 * Summary is 11,000 pieces, in one block (hx_arena_size_for_message).
 */
hx_status
hxc_decode_reply(nng_msg *rep, const char *request_id, hx_reply *out)
{
	hx_arena           arena;
	ProtobufCAllocator alloc = { hx_arena_cb_alloc, hx_arena_cb_free, &arena };
	rpc_response      *rsp;
	size_t             len = nng_msg_len(rep);
	int                rv;

	hx_arena_init(&arena, hx_arena_size_for_message(len), &decode_spare);
	rsp = heliox__ingest__v1__rpc_response__unpack(&alloc, len, nng_msg_body(rep));
	if (rsp == NULL) {
		hx_arena_free(&arena, 0);
		hxc_reply_local(out, HX_INTERNAL, "undecodable reply");
		return (hxc_reply_set_id(out, request_id));
	}
	hx_reply_free(out);
	rv = copy_status(out, rsp->status);
	if (rv == 0 && (out->request_id = dup_or_empty(rsp->request_id)) == NULL) {
		rv = -1;
	}
	if (rv == 0) {
		rv = copy_result(out, rsp);
	}
	hx_arena_free(&arena, 0);
	if (rv != 0) {
		return (hxc_reply_local(out, HX_RESOURCE_EXHAUSTED, "out of memory"));
	}
	return (out->code);
}

/*
 * No connection to any server: UNAVAILABLE when every URL failed (nobody is
 * there: `why` names each URL's cause), DEADLINE_EXCEEDED when an attempt
 * was still running at the deadline.
 */
hx_status
hxc_reply_no_link(hx_reply *out, int rv, uint32_t timeout_ms, const char *why,
                  const char *request_id)
{
	if (rv == NNG_ETIMEDOUT) {
		hxc_reply_local(out, HX_DEADLINE_EXCEEDED,
		                "no connection to the server within %u ms: %s",
		                (unsigned) timeout_ms, why);
	} else {
		hxc_reply_local(out, HX_UNAVAILABLE, "cannot connect to %s", why);
	}
	return (hxc_reply_set_id(out, request_id));
}

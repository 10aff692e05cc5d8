/*
 * ingest.c - the Ingest method:
 *
 *   fingerprint -> source (mock | export_json | records) -> validated batch
 *     -> all-or-nothing or skip_invalid -> hx_store_ingest -> IngestResult
 *
 * Validation runs before anything needs the database, so a bad request is
 * answered INVALID_ARGUMENT with its violations even when the store is down
 * (or absent, as in tests and fuzzing). Every failure after auth is also
 * written to the audit table, best effort.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "heliox/export.h"
#include "log.h"
#include "method.h"

typedef Heliox__Ingest__V1__IngestRequest IngestRequest;

/* ---- fingerprint ----------------------------------------------------------- */

/*
 * A ProtobufCBuffer that hashes what is packed into it: the request is
 * fingerprinted without a second copy of a possibly large export. Packing
 * hands over each tag, length and value separately, a few bytes at a time,
 * and a digest update costs far more than copying a few bytes; so small
 * pieces are gathered here first and the digest sees 4 KiB at a time.
 */
typedef struct digest_buffer {
	ProtobufCBuffer base;
	EVP_MD_CTX     *md;
	int             ok;
	size_t          n;
	uint8_t         buf[4096];
} digest_buffer;

static void
digest_flush(digest_buffer *d)
{
	if (d->n > 0)
		d->ok &= EVP_DigestUpdate(d->md, d->buf, d->n);
	d->n = 0;
}

static void
digest_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
	digest_buffer *d = (digest_buffer *) buf;

	if (len == 0) {
		return; /* an empty bytes field comes as (0, NULL): nothing to copy */
	}
	if (d->n + len > sizeof(d->buf))
		digest_flush(d);
	if (len >= sizeof(d->buf)) {
		d->ok &= EVP_DigestUpdate(d->md, data, len);
		return;
	}
	memcpy(d->buf + d->n, data, len);
	d->n += len;
}

/* OpenSSL 3 looks an algorithm up (locks, a property query) every time
 * EVP_sha256() is initialised; fetched once, it is not. Never freed: one
 * per process, like OpenSSL's own. */
static EVP_MD *sha256;

static void
sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 of the packed IngestRequest: a replay with the same request_id
 * must be the same request, byte for byte as the store sees it. */
static bool
ingest_fingerprint(const IngestRequest *rq, uint8_t out[32])
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	digest_buffer         d = { .base = { digest_append } };
	unsigned int          n = 0;
	bool                  ok;

	memset(out, 0, 32);
	pthread_once(&once, sha256_fetch);
	if (sha256 == NULL)
		return false;
	d.md = EVP_MD_CTX_new();
	d.ok = d.md != NULL && EVP_DigestInit_ex(d.md, sha256, NULL);
	if (d.ok)
		protobuf_c_message_pack_to_buffer(&rq->base, &d.base);
	digest_flush(&d);
	ok = d.ok == 1 && EVP_DigestFinal_ex(d.md, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(d.md);
	return ok;
}

/* ---- sources --------------------------------------------------------------- */

static const char *
ingest_source(const IngestRequest *rq)
{
	switch (rq->source_case) {
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_MOCK:
		return "mock";
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_EXPORT_JSON:
		return "export_json";
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS:
		return "records";
	default:
		return "none";
	}
}

static hx_raw_value
raw_string(const char *s)
{
	hx_raw_value v = { HX_RAW_STRING, s, strlen(s) };
	return v;
}

/* A RecordBatch, record by record, through the same validation as JSON.
 * The wire walk (wire.c) has already refused NUL bytes, so strlen() sees
 * each whole field. */
static hx_status
ingest_records(hx_call *c, const Heliox__Ingest__V1__RecordBatch *rb, hx_batch *b)
{
	hx_status worst = HX_OK;

	/* With windows an empty batch is the truth "nothing in there". */
	if ((rb == NULL || rb->n_records == 0) && b->windows_received == 0) {
		hx_violations_add(&c->viol, "records", "must not be empty");
		return HX_INVALID_ARGUMENT;
	}
	for (size_t i = 0; rb != NULL && i < rb->n_records; i++) {
		const Heliox__Ingest__V1__CostRecord *r = rb->records[i];
		hx_raw_record                         raw = {
			                        raw_string(r->date),     raw_string(r->provider),  raw_string(r->gpu_type),
			                        raw_string(r->cost_usd), raw_string(r->gpu_hours),
		};
		hx_status st = hx_batch_add(b, &raw, "records", i, &c->viol);
		if (st == HX_RESOURCE_EXHAUSTED)
			return st;
		if (st != HX_OK)
			worst = st;
	}
	hx_status st = hx_batch_check_windows(b, "records", &c->viol, NULL);
	return st != HX_OK ? st : worst;
}

/* ---- request-level fields (v2) ---------------------------------------------- */

static hx_raw_value
raw_opt(const char *s)
{
	hx_raw_value v = { HX_RAW_STRING, s != NULL ? s : "", s != NULL ? strlen(s) : 0 };
	return v;
}

/* The request's own replace windows, before the source is read: a source's
 * records are judged against them (and an export document that brings its
 * own is refused, export.c). */
static hx_status
ingest_windows(hx_call *c, const IngestRequest *rq, hx_batch *b)
{
	hx_status worst = HX_OK;

	for (size_t i = 0; i < rq->n_replace; i++) {
		const Heliox__Ingest__V1__ReplaceWindow *w = rq->replace[i];
		hx_raw_value p = raw_opt(w->provider), f = raw_opt(w->from_date),
		             t = raw_opt(w->to_date);
		hx_status st = hx_batch_add_window(b, &p, &f, &t, i, &c->viol);
		if (st == HX_RESOURCE_EXHAUSTED)
			return st;
		if (st != HX_OK)
			worst = st;
	}
	return worst;
}

/* The request's provenance; its fields, when given, win over an export
 * document's. */
static hx_status
ingest_provenance(hx_call *c, const IngestRequest *rq, hx_batch *b)
{
	const Heliox__Ingest__V1__Provenance *p = rq->provenance;
	const struct {
		const char *name, *val;
		char       *dst;
		size_t      max;
	} f[] = {
		{ "provenance.format", p ? p->format : NULL, b->prov.format, HX_PROV_TEXT_MAX },
		{ "provenance.name", p ? p->name : NULL, b->prov.name, HX_PROV_NAME_MAX },
		{ "provenance.mapping_version", p ? p->mapping_version : NULL,
		  b->prov.mapping_version, HX_PROV_TEXT_MAX },
	};
	hx_status worst = HX_OK;

	for (size_t k = 0; p != NULL && k < sizeof(f) / sizeof(f[0]); k++) {
		char         buf[HX_PROV_NAME_MAX + 1];
		hx_raw_value v = raw_opt(f[k].val);
		const char  *why = hx_check_prov_text(&v, f[k].max, buf);
		if (why != NULL) {
			if (hx_violations_add(&c->viol, f[k].name, "%s", why) != HX_OK)
				return HX_RESOURCE_EXHAUSTED;
			worst = HX_INVALID_ARGUMENT;
		} else if (buf[0] != '\0') {
			memcpy(f[k].dst, buf, strlen(buf) + 1);
		}
	}
	return worst;
}

/* Fills the batch from the request's source. Returns HX_OK, or
 * HX_INVALID_ARGUMENT with violations, or another status with the reply
 * already set. */
static hx_status
ingest_load(hx_call *c, const IngestRequest *rq, hx_batch *b)
{
	hx_status st = ingest_windows(c, rq, b), st2;

	if (st == HX_RESOURCE_EXHAUSTED) {
		hx_call_fail(c, HX_RESOURCE_EXHAUSTED, "out of memory");
		return st;
	}
	switch (rq->source_case) {
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_MOCK:
		if (c->cfg->mock_json == NULL) {
			hx_call_fail(c, HX_FAILED_PRECONDITION, "no mock export in the data dir");
			return HX_FAILED_PRECONDITION;
		}
		st2 = hx_export_parse(c->cfg->mock_json, c->cfg->mock_len, b, &c->viol);
		break;
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_EXPORT_JSON:
		st2 = hx_export_parse((const char *) rq->export_json.data, rq->export_json.len, b,
		                      &c->viol);
		break;
	case HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS:
		/* Empty is fine when the client left every record out as
		 * invalid and says how many: the run is still audited. */
		if (rq->skip_invalid && rq->client_failed > 0 && rq->records != NULL &&
		    rq->records->n_records == 0)
			st2 = HX_OK;
		else
			st2 = ingest_records(c, rq->records, b);
		break;
	default:
		hx_violations_add(&c->viol, "source",
		                  "one of mock, export_json, records is required");
		return HX_INVALID_ARGUMENT;
	}
	if (st2 != HX_OK && st != HX_RESOURCE_EXHAUSTED)
		st = st2;
	if (st != HX_RESOURCE_EXHAUSTED) {
		st2 = ingest_provenance(c, rq, b);
		if (st2 != HX_OK)
			st = st2;
	}
	/* A skipped record would have its stored row deleted by its window. */
	if (st != HX_RESOURCE_EXHAUSTED && rq->skip_invalid && b->windows_received > 0) {
		if (hx_violations_add(&c->viol, "replace",
		                      "cannot be combined with skip_invalid "
		                      "(a skipped record would delete its stored row)") != HX_OK)
			st = HX_RESOURCE_EXHAUSTED;
		else
			st = HX_INVALID_ARGUMENT;
	}
	if (st == HX_RESOURCE_EXHAUSTED)
		hx_call_fail(c, HX_RESOURCE_EXHAUSTED, "out of memory");
	return st;
}

/* ---- validation outcome ---------------------------------------------------------- */

/* The first violation about the request as a whole ("$", "cost_data",
 * "currency", "records", "source") rather than one record, or NULL. */
static const hx_violation *
ingest_doc_violation(const hx_call *c, const char *array)
{
	size_t alen = strlen(array);

	for (size_t i = 0; i < c->viol.len; i++) {
		const char *f = c->viol.items[i].field;
		if (strncmp(f, array, alen) != 0 || f[alen] != '[')
			return &c->viol.items[i];
	}
	return NULL;
}

/* Decides after validation: true when the valid records may go on (all
 * were valid, or skip_invalid and only records were at fault); otherwise
 * answers INVALID_ARGUMENT. */
static bool
ingest_accept(hx_call *c, const IngestRequest *rq, const hx_batch *b)
{
	const char *array = rq->source_case == HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS
	    ? "records"
	    : "cost_data";
	const hx_violation *doc = ingest_doc_violation(c, array);
	size_t              bad = b->received - b->len;
	char                capped[48] = "";

	if (c->viol.total == 0)
		return true;
	/* Every record valid, yet violations: the document is at fault, even
	 * if its own violation fell past the cap. */
	if (doc == NULL && bad == 0 && c->viol.len > 0)
		doc = &c->viol.items[0];
	if (doc == NULL && rq->skip_invalid)
		return true;
	if (c->viol.total > c->viol.len)
		snprintf(capped, sizeof(capped), " (first %zu listed)", c->viol.len);
	if (doc != NULL)
		hx_call_fail(c, HX_INVALID_ARGUMENT, "ingest request is invalid: %s %s%s",
		             doc->field, doc->description, capped);
	else
		hx_call_fail(c, HX_INVALID_ARGUMENT, "%zu of %zu records are invalid%s", bad,
		             b->received, capped);
	return false;
}

/* ---- the store ------------------------------------------------------------------- */

static void
ingest_log_records(const hx_call *c, const hx_batch *b)
{
	char cost[HX_MONEY_TEXT_MAX];

	if (!hx_log_enabled(HX_LOG_DEBUG))
		return;
	for (size_t i = 0; i < b->len; i++) {
		const hx_record *r = &b->recs[i];
		hx_money_format(r->cost, cost);
		hx_debug(c->rid, "record %zu/%zu: %s | %s | %s | %s", b->src[i] + 1, b->received,
		         r->date, r->provider, r->gpu_type, cost);
	}
}

/* Writes (or, dry run, counts) the valid records in one transaction. */
static void
ingest_run(hx_call *c, hx_ingest_job *job)
{
	hx_ingest_counts n = { 0 };
	char             err[512] = "";

	if (c->store == NULL) {
		hx_call_fail(c, HX_UNAVAILABLE, "database unavailable");
		return;
	}
	if (!hx_call_remaining_ms(c, &job->timeout_ms))
		return;
	hx_status st = hx_store_ingest(c->store, job, &n, err, sizeof(err));
	if (st == HX_INVALID_ARGUMENT) {
		hx_violations_add(&c->viol, "request_id",
		                  "was already used for a different request");
		hx_call_fail(c, HX_INVALID_ARGUMENT,
		             "request_id was already used for a different request");
		return;
	}
	if (st != HX_OK) {
		hx_call_store_failed(c, "ingest", st, err);
		return;
	}
	c->ingest.received = n.received;
	c->ingest.inserted = n.inserted;
	c->ingest.updated = n.updated;
	c->ingest.unchanged = n.unchanged;
	c->ingest.failed = n.failed;
	c->ingest.deleted = n.deleted;
	c->ingest.replayed = n.replayed;
	c->ingest.duration_us = n.duration_us;
}

/* Best effort: the request already failed, and the caller is told why
 * whether or not the audit row could be written. */
static void
ingest_audit(hx_call *c, const hx_ingest_job *job)
{
	char err[512] = "";

	if (c->store == NULL || c->code == HX_OK)
		return;
	if (hx_store_audit_failure(c->store, job, c->code, err, sizeof(err)) != HX_OK &&
	    c->code != HX_UNAVAILABLE) /* the database is away: the watch says so, once */
		hx_warn(c->rid, "failed ingest not written to ingestion_runs: %s", err);
}

static uint32_t
u32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t) n;
}

/*
 * Records the client left out as invalid (skip_invalid only) count as
 * received and failed here, so that the reply and the audit row say what
 * the client's user was told.
 */
static bool
ingest_client_failed(hx_call *c, const IngestRequest *rq, hx_ingest_job *job)
{
	if (rq->client_failed == 0)
		return true;
	if (!rq->skip_invalid) {
		hx_violations_add(&c->viol, "client_failed", "is only valid with skip_invalid");
		hx_call_fail(c, HX_INVALID_ARGUMENT, "client_failed without skip_invalid");
		return false;
	}
	if ((uint64_t) job->received + rq->client_failed > UINT32_MAX) {
		hx_violations_add(&c->viol, "client_failed", "too large");
		hx_call_fail(c, HX_INVALID_ARGUMENT, "client_failed too large");
		return false;
	}
	job->received += rq->client_failed;
	job->failed += rq->client_failed;
	return true;
}

/* A failed request wrote nothing, so every record it carried failed: the
 * contract's inserted + updated + unchanged + failed == received holds for
 * failures too. How many were invalid is in the message and violations. */
static void
ingest_failed_counts(hx_call *c, hx_ingest_job *job)
{
	job->failed = job->received;
	heliox__ingest__v1__ingest_result__init(&c->ingest);
	c->ingest.received = job->received;
	c->ingest.failed = job->failed;
}

static hx_ingest_job
ingest_job_for(const hx_call *c, const IngestRequest *rq)
{
	hx_ingest_job job = {
		.request_id = c->rid,
		.source = ingest_source(rq),
		.dry_run = rq->dry_run,
		.started_us = c->started_us,
		.base_request_id = c->base_rid[0] != '\0' ? c->base_rid : c->rid,
		.key_id = c->key_id,
		.peer = c->peer,
	};
	return job;
}

/* The contract's audit rule is for every authenticated ingest, so one
 * refused before it ran leaves its row too (nothing was received). */
void
hx_method_ingest_refused(hx_call *c, const IngestRequest *rq)
{
	hx_ingest_job job = ingest_job_for(c, rq);

	ingest_fingerprint(rq, job.fingerprint);
	ingest_failed_counts(c, &job);
	c->ingest.dry_run = rq->dry_run;
	/* One duration for the reply and the row. */
	c->ingest.duration_us = job.duration_us = hx_call_elapsed_us(c);
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST;
	ingest_audit(c, &job);
}

void
hx_method_ingest(hx_call *c, const IngestRequest *rq)
{
	hx_ingest_job job = ingest_job_for(c, rq);
	hx_batch      b;

	hx_batch_init(&b);
	heliox__ingest__v1__ingest_result__init(&c->ingest);
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST;
	if (!ingest_fingerprint(rq, job.fingerprint)) {
		hx_error(c->rid, "ingest failed: SHA-256 of the request could not be computed");
		hx_call_fail(c, HX_INTERNAL, "internal error");
	} else {
		hx_status st = ingest_load(c, rq, &b);
		job.recs = b.recs;
		job.n = b.len;
		job.received = u32(b.received);
		job.failed = u32(b.received - b.len);
		job.windows = b.windows;
		job.n_windows = b.n_windows;
		job.prov = &b.prov;
		ingest_log_records(c, &b);
		if ((st == HX_OK || st == HX_INVALID_ARGUMENT) &&
		    ingest_client_failed(c, rq, &job) && ingest_accept(c, rq, &b))
			ingest_run(c, &job);
	}
	if (c->code != HX_OK) {
		ingest_failed_counts(c, &job);
		/* One duration for the reply and the row (a run's own comes
		 * from the store, measured in the write statement). */
		c->ingest.duration_us = job.duration_us = hx_call_elapsed_us(c);
	}
	c->ingest.dry_run = rq->dry_run;
	ingest_audit(c, &job);
	snprintf(c->detail, sizeof(c->detail),
	         "source=%s received=%" PRIu32 " inserted=%" PRIu32 " updated=%" PRIu32
	         " unchanged=%" PRIu32 " failed=%" PRIu32 " deleted=%" PRIu32 " dry_run=%s%s",
	         job.source, c->ingest.received, c->ingest.inserted, c->ingest.updated,
	         c->ingest.unchanged, c->ingest.failed, c->ingest.deleted,
	         rq->dry_run ? "true" : "false", c->ingest.replayed ? " replayed=true" : "");
	hx_batch_free(&b);
}

/*
 * print_stream.c - the output of `ingest FILE`: readable text, or with
 * --json one object, as print_reply.c does for single calls.
 *
 * Text: totals to stdout on success (with the records --skip-invalid left
 * out); on failure everything to stderr: the reason, the violations, each
 * failed batch with its records' range, and how to resume when some batches
 * were committed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "output.h"
#include "print.h"

static double
records_per_s(const stream_report *r)
{
	return (r->duration_us > 0 ? (double) r->received * 1e6 / (double) r->duration_us : 0);
}

/* Every batch sent was answered from an earlier run with the same id. */
static bool
all_replayed(const stream_report *r)
{
	return (r->batches.committed > 0 && r->batches.replayed == r->batches.committed &&
	        r->batches.n_failures == 0);
}

/* The run stopped part way for a reason that running it again may not meet
 * (a server away, a timeout, an interrupt): the committed batches stay, and
 * the same command with the same id sends only the rest. A request the
 * server refused as invalid would be refused again. */
static bool
resumable(const stream_report *r)
{
	return (r->sent && r->code != HX_OK && r->code != HX_INVALID_ARGUMENT && !r->dry_run);
}

/* ---- text --------------------------------------------------------------- */

static void
print_counts(FILE *f, const stream_report *r)
{
	fprintf(f,
	        "received=%" PRIu64 " inserted=%" PRIu64 " updated=%" PRIu64 " unchanged=%" PRIu64
	        " failed=%" PRIu64 " deleted=%" PRIu64,
	        r->received, r->inserted, r->updated, r->unchanged, r->failed, r->deleted);
}

static void
print_ok(const stream_report *r)
{
	printf("ingest: OK  request_id=%s  ", r->base_id);
	print_counts(stdout, r);
	printf("  batches=%" PRIu64 " (up to %" PRIu64
	       " records each)  (%.2f s, %.0f records/s)%s%s\n",
	       r->batches_total, r->batch_size, (double) r->duration_us / 1e6, records_per_s(r),
	       r->dry_run ? "  [dry run: nothing written]" : "",
	       all_replayed(r) ? "  [replayed: answered from the earlier run]" : "");
	if (r->batches.replayed > 0 && !all_replayed(r)) {
		printf("  %" PRIu64 " of %" PRIu64 " batches were answered from an earlier run\n",
		       r->batches.replayed, r->batches_total);
	}
	cli_text_violations(stdout, r->viol.items, r->viol.len, r->viol.total);
}

static void
print_failed_batches(const stream_report *r)
{
	size_t i;

	for (i = 1; i < r->batches.n_failures; i++) {
		const send_failure *f = &r->batches.failures[i];

		fprintf(stderr,
		        "  batch %" PRIu64 " (cost_data[%" PRIu64 "..%" PRIu64
		        "]) failed too: %s: %s\n",
		        f->batch, f->first, f->last, hx_status_name(f->code), f->message);
	}
}

static void
print_error(const stream_report *r)
{
	fprintf(stderr, "error: %s: %s  [request_id=%s]\n", hx_status_name(r->code), r->message,
	        r->base_id);
	cli_text_violations(stderr, r->viol.items, r->viol.len, r->viol.total);
	print_failed_batches(r);
	if (!r->sent) {
		return;
	}
	fputs("  ", stderr);
	print_counts(stderr, r);
	fputc('\n', stderr);
	if (resumable(r)) {
		fprintf(stderr,
		        "  %" PRIu64 " of %" PRIu64
		        " batches committed; re-run with --request-id %s "
		        "to resume\n",
		        r->batches.committed, r->batches_total, r->base_id);
	}
}

/* ---- JSON --------------------------------------------------------------- */

static void
json_failures(cJSON *arr, const stream_report *r)
{
	char   text[128];
	size_t i;
	cJSON *f;

	for (i = 0; arr != NULL && i < r->batches.n_failures; i++) {
		const send_failure *s = &r->batches.failures[i];

		if ((f = cJSON_CreateObject()) == NULL) {
			return;
		}
		cJSON_AddItemToArray(arr, f);
		cJSON_AddNumberToObject(f, "batch", (double) s->batch);
		snprintf(text, sizeof(text), "%s-b%" PRIu64, r->base_id, s->batch);
		cJSON_AddStringToObject(f, "request_id", text);
		snprintf(text, sizeof(text), "cost_data[%" PRIu64 "..%" PRIu64 "]", s->first,
		         s->last);
		cJSON_AddStringToObject(f, "records", text);
		cJSON_AddStringToObject(f, "code", hx_status_name(s->code));
		cJSON_AddStringToObject(f, "message", s->message);
	}
}

static void
json_batches(cJSON *o, const stream_report *r)
{
	cJSON *b = cJSON_AddObjectToObject(o, "batches");

	if (b == NULL) {
		return;
	}
	cJSON_AddNumberToObject(b, "size", (double) r->batch_size);
	cJSON_AddNumberToObject(b, "total", (double) r->batches_total);
	cJSON_AddNumberToObject(b, "sent", (double) (r->batches.batches - r->batches.not_sent));
	cJSON_AddNumberToObject(b, "committed", (double) r->batches.committed);
	cJSON_AddNumberToObject(b, "replayed", (double) r->batches.replayed);
	json_failures(cJSON_AddArrayToObject(b, "failed"), r);
}

static void
json_violations(cJSON *o, const hx_violations *v)
{
	cli_json_violations(o, v->items, v->len);
	cJSON_AddNumberToObject(o, "violations_total", (double) v->total);
}

/* The --json object of the report; NULL when out of memory. The caller owns it. */
static cJSON *
stream_json(const stream_report *r)
{
	cJSON *o = cli_json_reply(r->code, r->message, r->base_id);

	if (o == NULL) {
		return NULL;
	}
	cJSON_AddNumberToObject(o, "received", (double) r->received);
	cJSON_AddNumberToObject(o, "inserted", (double) r->inserted);
	cJSON_AddNumberToObject(o, "updated", (double) r->updated);
	cJSON_AddNumberToObject(o, "unchanged", (double) r->unchanged);
	cJSON_AddNumberToObject(o, "failed", (double) r->failed);
	cJSON_AddNumberToObject(o, "deleted", (double) r->deleted);
	cJSON_AddNumberToObject(o, "duration_us", (double) r->duration_us);
	cJSON_AddNumberToObject(o, "records_per_s", (double) (uint64_t) records_per_s(r));
	cJSON_AddBoolToObject(o, "dry_run", r->dry_run);
	cJSON_AddBoolToObject(o, "replayed", all_replayed(r));
	cJSON_AddBoolToObject(o, "resumable", resumable(r));
	json_batches(o, r);
	json_violations(o, &r->viol);
	return o;
}

static void
print_json(const stream_report *r)
{
	cJSON *o = stream_json(r);

	if (o != NULL) {
		cli_json_emit(o);
	}
}

void
cli_print_stream(const cli_args *a, const stream_report *r)
{
	if (a->json) {
		print_json(r);
	} else if (r->code == HX_OK) {
		print_ok(r);
	} else {
		print_error(r);
	}
	fflush(stdout);
}

/*
 * ingest_example.c - a small service using libheliox-client: checks the
 * server's health, ingests three cost records and prints a summary.
 *
 *   ADMIN_API_KEY=KEY ./ingest-example [URL]   (default $HELIOX_URL, then
 *                                               tcp://127.0.0.1:7407)
 *
 * Built against an installed prefix only: see Makefile (pkg-config) and
 * CMakeLists.txt (find_package(heliox CONFIG)).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <heliox/client.h>

/* Prints the reply's failure (and the fields it names) and returns 1. */
static int
failed(const char *what, const hx_reply *r)
{
	fprintf(stderr, "%s: %s: %s\n", what, hx_status_name(r->code), r->message);
	for (size_t i = 0; i < r->n_violations; i++) {
		fprintf(stderr, "  %s: %s\n", r->violations[i].field, r->violations[i].description);
	}
	return (1);
}

static int
run(hx_client *c)
{
	/* date, provider, gpu_type, cost_usd, gpu_hours (NULL or "": unknown) */
	static const hx_cost_record recs[] = {
		{ "2026-03-01", "AWS", "A100", "1245.67", "24" },
		{ "2026-03-01", "GCP", "H100", "2210.05", "8" },
		{ "2026-03-02", "AWS", "A100", "1190.10", "24" },
	};
	hx_summary_query q = { .group_by = HX_GROUP_PROVIDER,
		               .from_date = "2026-03-01",
		               .to_date = "2026-03-31" };
	hx_reply         r = { 0 };

	if (hx_client_health(c, NULL, &r) != HX_OK) {
		return (failed("health", &r));
	}
	printf("health: serving=%d database_ok=%d version=%s\n", r.health.serving,
	       r.health.database_ok, r.health.version);
	hx_reply_free(&r);

	if (hx_client_ingest_records(c, recs, sizeof(recs) / sizeof(recs[0]), NULL, &r) != HX_OK) {
		return (failed("ingest", &r));
	}
	printf("ingest: received=%" PRIu32 " inserted=%" PRIu32 " updated=%" PRIu32
	       " unchanged=%" PRIu32 "\n",
	       r.ingest.received, r.ingest.inserted, r.ingest.updated, r.ingest.unchanged);
	hx_reply_free(&r);

	if (hx_client_summary(c, &q, NULL, &r) != HX_OK) {
		return (failed("summary", &r));
	}
	printf("summary by %s:\n", hx_group_by_name(q.group_by));
	for (size_t i = 0; i < r.n_rows; i++) {
		printf("  %-8s records=%" PRIu64 " total_usd=%s gpu_hours=%s usd_per_gpu_hour=%s\n",
		       r.rows[i].provider, r.rows[i].records, r.rows[i].total_usd,
		       r.rows[i].gpu_hours, r.rows[i].usd_per_gpu_hour);
	}
	hx_reply_free(&r);
	return (0);
}

int
main(int argc, char **argv)
{
	const char    *url = argc > 1 ? argv[1] : getenv("HELIOX_URL");
	hx_client_opts opts = { .api_key = getenv("ADMIN_API_KEY") };
	hx_client     *c;
	char           err[256];
	hx_status      st;
	int            rc;

	if (url == NULL || *url == '\0') {
		url = HX_CLIENT_DEFAULT_URL;
	}
	if (opts.api_key == NULL) {
		fputs("ingest-example: set ADMIN_API_KEY\n", stderr);
		return (2);
	}
	if ((st = hx_client_open(&c, &url, 1, &opts, err, sizeof(err))) != HX_OK) {
		fprintf(stderr, "ingest-example: %s: %s\n", hx_status_name(st), err);
		return (1);
	}
	rc = run(c);
	hx_client_close(c);
	return (rc);
}

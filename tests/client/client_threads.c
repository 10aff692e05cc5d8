/*
 * client_threads.c - one hx_client shared by several threads, each calling
 * Summary (1,000 rows, a few rows, one row) and Health in turn, every reply
 * compared field by field with the same call's answer made alone first.
 *
 * The client library keeps its largest reply blocks between calls, shared
 * by every thread of the process (base/spare.h): a block handed to two
 * calls at once, or given back while a reply still used it, shows here as
 * a reply that differs. Run by tests/python/test_client_threads.py against
 * a real server; usage: client_threads URL THREADS CALLS (ADMIN_API_KEY set).
 * Exit 0 when every reply matched, 1 otherwise (the first difference on
 * stderr), 2 on bad usage.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heliox/client.h"

#define PROVIDERS 20
#define GPUS      50
#define DAYS      3

static const hx_group_by groups[] = { HX_GROUP_PROVIDER_GPU_TYPE, HX_GROUP_DATE, HX_GROUP_NONE,
	                              HX_GROUP_PROVIDER };
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

static hx_client *client;
static hx_reply   want[NGROUPS]; /* each group's answer, made alone */
static int        calls_per_thread;

static int
same_rows(const hx_reply *a, const hx_reply *b, const char **why)
{
	if (a->code != HX_OK || b->code != HX_OK) {
		*why = "a call failed";
		return 0;
	}
	if (a->n_rows != b->n_rows) {
		*why = "row counts differ";
		return 0;
	}
	/* Whole rows, padding after each field's NUL included: a reply's rows
	 * are zeroed before they are filled, so a byte left over from another
	 * reply differs too. */
	if (a->n_rows > 0 && memcmp(a->rows, b->rows, a->n_rows * sizeof(hx_summary_row)) != 0) {
		*why = "rows differ";
		return 0;
	}
	return 1;
}

static void *
thread_main(void *arg)
{
	int         t = (int) (size_t) arg;
	const char *why = NULL;

	for (int i = 0; i < calls_per_thread; i++) {
		size_t           g = (size_t) (t + i) % (NGROUPS + 1);
		hx_summary_query q = { 0 };
		hx_reply         r;

		if (g == NGROUPS) { /* a small reply between the large ones */
			if (hx_client_health(client, NULL, &r) != HX_OK || !r.health.serving) {
				fprintf(stderr, "thread %d call %d: health: %s\n", t, i, r.message);
				hx_reply_free(&r);
				return (void *) 1;
			}
			hx_reply_free(&r);
			continue;
		}
		q.group_by = groups[g];
		hx_client_summary(client, &q, NULL, &r);
		if (!same_rows(&want[g], &r, &why)) {
			fprintf(stderr, "thread %d call %d: summary group %d: %s (%s)\n", t, i,
			        (int) groups[g], why, r.message != NULL ? r.message : "");
			hx_reply_free(&r);
			return (void *) 1;
		}
		hx_reply_free(&r);
	}
	return NULL;
}

/* PROVIDERS x GPUS x DAYS records, so that the provider-and-GPU summary
 * has 1,000 rows. */
static int
load(void)
{
	enum { N = PROVIDERS * GPUS * DAYS };
	static char     names[N][2][16], dates[N][11], costs[N][16];
	hx_cost_record *recs = calloc(N, sizeof(*recs));
	hx_ingest_opts  o = { 0 };
	hx_reply        r;
	int             ok;

	if (recs == NULL)
		return 0;
	for (int i = 0; i < N; i++) {
		snprintf(names[i][0], sizeof(names[i][0]), "prov-%02d", i / (GPUS * DAYS));
		snprintf(names[i][1], sizeof(names[i][1]), "gpu-%02d", i / DAYS % GPUS);
		snprintf(dates[i], sizeof(dates[i]), "2026-05-%02d", 1 + i % DAYS);
		snprintf(costs[i], sizeof(costs[i]), "%d.%02d", 10 + i % 997, i % 100);
		recs[i] = (hx_cost_record){ dates[i], names[i][0], names[i][1], costs[i],
			                    i % 3 ? "8" : NULL };
	}
	hx_client_ingest_records(client, recs, N, &o, &r);
	ok = r.code == HX_OK && r.ingest.received == N;
	if (!ok)
		fprintf(stderr, "load: %s %s\n", hx_status_name(r.code), r.message);
	hx_reply_free(&r);
	free(recs);
	return ok;
}

int
main(int argc, char **argv)
{
	hx_client_opts opts = { .api_key = getenv("ADMIN_API_KEY") };
	const char    *urls[1];
	char           err[256];
	pthread_t     *th;
	int            threads, failed = 0;

	if (argc != 4 || opts.api_key == NULL || (threads = atoi(argv[2])) < 1 ||
	    (calls_per_thread = atoi(argv[3])) < 1) {
		fprintf(stderr, "usage: ADMIN_API_KEY=... client_threads URL THREADS CALLS\n");
		return 2;
	}
	urls[0] = argv[1];
	if (hx_client_open(&client, urls, 1, &opts, err, sizeof(err)) != HX_OK) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	if (!load()) {
		hx_client_close(client);
		return 1;
	}
	for (size_t g = 0; g < NGROUPS; g++) {
		hx_summary_query q = { .group_by = groups[g] };

		hx_client_summary(client, &q, NULL, &want[g]);
		if (want[g].code != HX_OK) {
			fprintf(stderr, "summary group %d: %s\n", (int) groups[g], want[g].message);
			failed = 1;
		}
	}
	if (!failed && want[0].n_rows != PROVIDERS * GPUS) {
		fprintf(stderr, "provider x GPU summary: %zu rows, not %d\n", want[0].n_rows,
		        PROVIDERS * GPUS);
		failed = 1;
	}
	if (failed || (th = calloc((size_t) threads, sizeof(*th))) == NULL)
		threads = 0, th = NULL, failed = 1;
	for (int t = 0; t < threads; t++) {
		if (pthread_create(&th[t], NULL, thread_main, (void *) (size_t) t) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			threads = t;
			failed = 1;
		}
	}
	for (int t = 0; t < threads; t++) {
		void *rv = NULL;

		pthread_join(th[t], &rv);
		failed |= rv != NULL;
	}
	free(th);
	for (size_t g = 0; g < NGROUPS; g++)
		hx_reply_free(&want[g]);
	hx_client_close(client);
	if (!failed)
		printf("client_threads: %d threads x %d calls, every reply as made alone\n",
		       threads, calls_per_thread);
	return failed;
}

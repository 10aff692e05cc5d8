/*
 * metrics.c - counting (lock-free, per worker) and the exposition text.
 * See metrics.h.
 */
#include "metrics.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const uint64_t hx_metric_bucket_us[HX_METRIC_BUCKETS] = {
	250,   500,    1000,   2500,   5000,    10000,   25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

static const char *const method_names[HX_METHOD_COUNT] = {
	[HX_METHOD_INGEST] = "ingest",
	[HX_METHOD_HEALTH] = "health",
	[HX_METHOD_SUMMARY] = "summary",
	[HX_METHOD_UNKNOWN] = "unknown",
};

static const char *const outcome_names[HX_OUTCOME_COUNT] = {
	[HX_OUTCOME_INSERTED] = "inserted",   [HX_OUTCOME_UPDATED] = "updated",
	[HX_OUTCOME_UNCHANGED] = "unchanged", [HX_OUTCOME_FAILED] = "failed",
	[HX_OUTCOME_DELETED] = "deleted",
};

hx_status
hx_metrics_init(hx_metrics *m, unsigned n_slots)
{
	struct timespec ts;

	memset(m, 0, sizeof(*m));
	/* aligned_alloc: the slots' alignment is part of the no-sharing point. */
	m->slots = aligned_alloc(_Alignof(hx_metrics_slot),
	                         sizeof(hx_metrics_slot) * (n_slots ? n_slots : 1));
	if (m->slots == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	memset(m->slots, 0, sizeof(hx_metrics_slot) * (n_slots ? n_slots : 1));
	m->n_slots = n_slots;
	atomic_init(&m->db_up, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_time_s = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
	return HX_OK;
}

void
hx_metrics_free(hx_metrics *m)
{
	free(m->slots);
	m->slots = NULL;
	m->n_slots = 0;
}

hx_metric_method
hx_metric_method_of(const char *name)
{
	for (int i = 0; i < HX_METHOD_UNKNOWN; i++) {
		if (name != NULL && strcmp(name, method_names[i]) == 0) {
			return (hx_metric_method) i;
		}
	}
	return HX_METHOD_UNKNOWN;
}

static void
bump(atomic_uint_fast64_t *c, uint64_t by)
{
	/* One writer per slot: a relaxed load and store is enough, and cheaper
	 * than a locked read-modify-write. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
	                      memory_order_relaxed);
}

void
hx_metrics_record(hx_metrics_slot *s, const hx_metric_event *ev)
{
	unsigned code =
	    (unsigned) ev->code < HX_METRIC_CODES ? (unsigned) ev->code : 2u /* UNKNOWN */;
	hx_metric_method m =
	    (unsigned) ev->method < HX_METHOD_COUNT ? ev->method : HX_METHOD_UNKNOWN;
	size_t b = 0;

	while (b < HX_METRIC_BUCKETS && ev->duration_us > hx_metric_bucket_us[b]) {
		b++;
	}
	bump(&s->requests[m][code], 1);
	bump(&s->bucket[m][b], 1);
	bump(&s->dur_sum_us[m], ev->duration_us);
	if (ev->auth_failed) {
		bump(&s->auth_failures, 1);
	}
	if (ev->has_records) {
		for (int i = 0; i < HX_OUTCOME_COUNT; i++) {
			bump(&s->records[i], ev->records[i]);
		}
	}
}

/* ---- rendering ------------------------------------------------------------------ */

typedef struct buf {
	char  *p;
	size_t len, cap;
	bool   oom;
} buf;

static void __attribute__((format(printf, 2, 3))) put(buf *b, const char *fmt, ...)
{
	va_list ap;
	int     n;

	if (b->oom) {
		return;
	}
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t) n < b->cap - b->len) {
			b->len += (size_t) n;
			return;
		}
		size_t ncap = (b->cap + (size_t) n) * 2;
		char  *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* A label value, escaped as the exposition format wants: \\, \" and \n. */
static void
put_label(buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		switch (*v) {
		case '\\':
			put(b, "\\\\");
			break;
		case '"':
			put(b, "\\\"");
			break;
		case '\n':
			put(b, "\\n");
			break;
		default:
			put(b, "%c", *v);
			break;
		}
	}
}

static void
head(buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t
sum(const hx_metrics *m, size_t off)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < m->n_slots; i++) {
		const atomic_uint_fast64_t *c =
		    (const atomic_uint_fast64_t *) ((const char *) &m->slots[i] + off);
		t += atomic_load_explicit(c, memory_order_relaxed);
	}
	return t;
}

#define SUM(m, field) sum((m), offsetof(hx_metrics_slot, field))

static void
render_rpc(buf *b, const hx_metrics *m)
{
	head(b, "heliox_rpc_requests_total", "counter",
	     "RPC requests answered, by method and reply code.");
	for (int me = 0; me < HX_METHOD_COUNT; me++) {
		for (int c = 0; c < HX_METRIC_CODES; c++) {
			uint64_t v = SUM(m, requests[me][c]);
			/* Every method's OK series always, others once they happen:
			 * rate() over a series that appears late still works. */
			if (v == 0 && c != 0) {
				continue;
			}
			put(b, "heliox_rpc_requests_total{method=\"%s\",code=\"", method_names[me]);
			put_label(b, hx_status_name((hx_status) c));
			put(b, "\"} %" PRIu64 "\n", v);
		}
	}
	head(b, "heliox_rpc_duration_seconds", "histogram",
	     "Time from receiving a request to its reply being built.");
	for (int me = 0; me < HX_METHOD_COUNT; me++) {
		uint64_t cum = 0;
		for (int i = 0; i <= HX_METRIC_BUCKETS; i++) {
			cum += SUM(m, bucket[me][i]);
			if (i < HX_METRIC_BUCKETS) {
				put(b,
				    "heliox_rpc_duration_seconds_bucket{method=\"%s\",le=\"%g\"} "
				    "%" PRIu64 "\n",
				    method_names[me], (double) hx_metric_bucket_us[i] / 1e6, cum);
			} else {
				put(b,
				    "heliox_rpc_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} "
				    "%" PRIu64 "\n",
				    method_names[me], cum);
			}
		}
		put(b, "heliox_rpc_duration_seconds_sum{method=\"%s\"} %.6f\n", method_names[me],
		    (double) SUM(m, dur_sum_us[me]) / 1e6);
		put(b, "heliox_rpc_duration_seconds_count{method=\"%s\"} %" PRIu64 "\n",
		    method_names[me], cum);
	}
}

static void
render_process(buf *b)
{
	long               page = sysconf(_SC_PAGESIZE);
	unsigned long long rss = 0;
	FILE              *f = fopen("/proc/self/statm", "r");
	DIR               *d;
	struct dirent     *e;
	long               fds = 0;

	char line[128], *end = NULL;

	if (f != NULL) {
		/* statm: size resident shared ... in pages */
		if (fgets(line, sizeof(line), f) != NULL) {
			(void) strtoull(line, &end, 10); /* size: not wanted */
			rss = end != NULL && end != line ? strtoull(end, NULL, 10) : 0;
		}
		fclose(f);
	}
	head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	put(b, "process_resident_memory_bytes %llu\n",
	    rss * (unsigned long long) (page > 0 ? page : 4096));
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] != '.') {
				fds++;
			}
		}
		closedir(d);
		fds--; /* the directory stream's own descriptor */
	}
	head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
	put(b, "process_open_fds %ld\n", fds < 0 ? 0 : fds);
}

hx_status
hx_metrics_render(const hx_metrics *m, char **out, size_t *len)
{
	buf b = { .p = malloc(8192), .cap = 8192 };

	*out = NULL;
	*len = 0;
	if (b.p == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	b.p[0] = '\0';
	render_rpc(&b, m);
	head(&b, "heliox_ingest_records_total", "counter",
	     "Records of ingests that ran (not dry runs, not replays), by outcome.");
	for (int i = 0; i < HX_OUTCOME_COUNT; i++) {
		put(&b, "heliox_ingest_records_total{outcome=\"%s\"} %" PRIu64 "\n",
		    outcome_names[i], SUM(m, records[i]));
	}
	head(&b, "heliox_auth_failures_total", "counter",
	     "Requests refused for a missing or invalid API key.");
	put(&b, "heliox_auth_failures_total %" PRIu64 "\n", SUM(m, auth_failures));
	head(&b, "heliox_inflight_requests", "gauge", "Requests being served now.");
	{
		unsigned n = 0;
		for (unsigned i = 0; i < m->n_slots; i++) {
			n += atomic_load_explicit(&m->slots[i].inflight, memory_order_relaxed);
		}
		put(&b, "heliox_inflight_requests %u\n", n);
	}
	head(&b, "heliox_db_up", "gauge", "1 when the database answered within the last 1.5 s.");
	put(&b, "heliox_db_up %d\n", atomic_load(&m->db_up) ? 1 : 0);
	head(&b, "heliox_build_info", "gauge", "The server's version, as a label; always 1.");
	put(&b, "heliox_build_info{version=\"");
	put_label(&b, HX_VERSION);
	put(&b, "\"} 1\n");
	render_process(&b);
	head(&b, "process_start_time_seconds", "gauge",
	     "Start time of the process since the Unix epoch in seconds.");
	put(&b, "process_start_time_seconds %.3f\n", m->start_time_s);
	if (b.oom) {
		free(b.p);
		return HX_RESOURCE_EXHAUSTED;
	}
	*out = b.p;
	*len = b.len;
	return HX_OK;
}

/*
 * test_store.c - the store against a real PostgreSQL.
 *
 * HX_TEST_DB holds a libpq connection string (tests/run_with_pg.sh starts a
 * throwaway cluster and sets it). Every test gets a database of its own,
 * created empty, migrated by the fixture (except where the test migrates),
 * and dropped afterwards. The tests read the tables back through a separate
 * libpq connection of their own ("hx-test"), never through the store.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cmocka needs these first. */
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store.h"

#define MICROS(usd) ((hx_micros) (usd) *HX_MICROS_PER_USD)

static PGconn *admin; /* to HX_TEST_DB, creates and drops databases */
static int     db_counter;

typedef struct fx {
	char      db[64];
	char      conninfo[2048];
	PGconn   *q; /* the test's own eyes on the database */
	hx_store *s;
} fx;

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	}
	PQclear(r);
}

/* The first cell of a query, malloc'd ("" for NULL). */
static char *q1(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
q1(PGconn *c, const char *fmt, ...)
{
	char      sql[4096];
	va_list   ap;
	PGresult *r;
	char     *v;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	}
	v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static long long
q_int(PGconn *c, const char *sql)
{
	char     *v = q1(c, "%s", sql);
	long long x = atoll(v);

	free(v);
	return x;
}

static void
assert_q(PGconn *c, const char *expect, const char *sql)
{
	char *v = q1(c, "%s", sql);

	if (strcmp(v, expect) != 0) {
		fprintf(stderr, "query: %s\nwant: %s\ngot:  %s\n", sql, expect, v);
	}
	assert_string_equal(v, expect);
	free(v);
}

/* HX_TEST_DB with dbname replaced, whatever form (key=value or URI) it has. */
static void
conninfo_for(const char *db, char *out, size_t outsz)
{
	const char       *base = getenv("HX_TEST_DB");
	PQconninfoOption *opts, *o;
	char             *errmsg = NULL;
	size_t            len = 0;
	const char       *v;

	opts = PQconninfoParse(base != NULL ? base : "", &errmsg);
	if (opts == NULL) {
		fail_msg("HX_TEST_DB: %s", errmsg ? errmsg : "out of memory");
	}
	out[0] = '\0';
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "dbname") == 0) {
			continue;
		}
		len += (size_t) snprintf(out + len, outsz - len, "%s='", o->keyword);
		for (v = o->val; *v != '\0' && len + 4 < outsz; v++) {
			if (*v == '\'' || *v == '\\') {
				out[len++] = '\\';
			}
			out[len++] = *v;
		}
		len += (size_t) snprintf(out + len, outsz - len, "' ");
	}
	snprintf(out + len, outsz - len, "dbname='%s'", db);
	PQconninfoFree(opts);
}

static int
fx_setup_db(void **state, bool migrate)
{
	fx  *f = calloc(1, sizeof(*f));
	char sql[128], app[2300], err[512] = "";

	assert_non_null(f);
	snprintf(f->db, sizeof(f->db), "hx_store_%d_%d", (int) getpid(), ++db_counter);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
	exec_ok(admin, sql);
	conninfo_for(f->db, f->conninfo, sizeof(f->conninfo));
	snprintf(app, sizeof(app), "%s application_name=hx-test", f->conninfo);
	f->q = PQconnectdb(app);
	assert_int_equal(PQstatus(f->q), CONNECTION_OK);
	if (migrate) {
		hx_status st = hx_store_migrate(f->conninfo, 5000, err, sizeof(err));

		if (st != HX_OK) {
			fail_msg("migrate: %s", err);
		}
		assert_int_equal(hx_store_open(&f->s, f->conninfo), HX_OK);
	}
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return fx_setup_db(state, true);
}

static int
setup_empty(void **state)
{
	return fx_setup_db(state, false);
}

static int
teardown(void **state)
{
	fx  *f = *state;
	char sql[128];

	hx_store_close(f->s);
	PQfinish(f->q);
	snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", f->db);
	exec_ok(admin, sql);
	free(f);
	return 0;
}

static hx_replace_window window(const char *provider, const char *from, const char *to);

/* n records with distinct keys; cost of record i = base + i cents. */
static hx_record *
make_recs(size_t n, hx_micros base)
{
	hx_record *r = calloc(n ? n : 1, sizeof(*r));
	size_t     i, day;

	assert_non_null(r);
	for (i = 0; i < n; i++) {
		day = i % 336; /* 12 months x 28 days: always a real date */
		snprintf(r[i].date, sizeof(r[i].date), "2026-%02zu-%02zu", day / 28 + 1,
		         day % 28 + 1);
		snprintf(r[i].provider, sizeof(r[i].provider), "prov-%zu", (i / 336) % 50);
		snprintf(r[i].gpu_type, sizeof(r[i].gpu_type), "gpu-%zu", i / (336 * 50));
		r[i].cost = base + (hx_micros) i * 10000;
	}
	return r;
}

static hx_record
rec(const char *date, const char *provider, const char *gpu, hx_micros cost)
{
	hx_record r;

	memset(&r, 0, sizeof(r));
	snprintf(r.date, sizeof(r.date), "%s", date);
	snprintf(r.provider, sizeof(r.provider), "%s", provider);
	snprintf(r.gpu_type, sizeof(r.gpu_type), "%s", gpu);
	r.cost = cost;
	return r;
}

static hx_ingest_job
job_for(const char *rid, const hx_record *recs, size_t n, bool dry_run, uint8_t fp)
{
	hx_ingest_job j;

	memset(&j, 0, sizeof(j));
	j.request_id = rid;
	j.source = "records";
	memset(j.fingerprint, fp, sizeof(j.fingerprint));
	j.recs = recs;
	j.n = n;
	j.received = (uint32_t) n;
	j.dry_run = dry_run;
	j.started_us = now_us();
	return j;
}

static hx_ingest_counts
ingest_ok(hx_store *s, const hx_ingest_job *j)
{
	hx_ingest_counts c;
	char             err[512] = "";
	hx_status        st = hx_store_ingest(s, j, &c, err, sizeof(err));

	if (st != HX_OK) {
		fail_msg("ingest %s: %s (%s)", j->request_id, hx_status_name(st), err);
	}
	assert_int_equal(c.inserted + c.updated + c.unchanged + c.failed, c.received);
	return c;
}

static void
assert_counts(hx_ingest_counts c, uint32_t ins, uint32_t upd, uint32_t unch, bool replayed)
{
	assert_int_equal(c.inserted, ins);
	assert_int_equal(c.updated, upd);
	assert_int_equal(c.unchanged, unch);
	assert_int_equal(c.replayed, replayed);
}

/* Every row of cost_snapshots, with its row version (xmin changes on any
 * rewrite, even one that leaves the values as they were). */
#define ALL_ROWS                                                                  \
	"SELECT coalesce(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', id, date, " \
	"provider, gpu_type, cost_usd, created_at, updated_at, xmin), E'\\n' "    \
	"ORDER BY id), '') FROM cost_snapshots"

/* ---- migrations -------------------------------------------------------------- */

static void
test_migrate_idempotent(void **state)
{
	fx  *f = *state;
	char err[512] = "";

	assert_int_equal(hx_store_migrate(f->conninfo, 1000, err, sizeof(err)), HX_OK);
	assert_int_equal(hx_store_migrate(f->conninfo, 1000, err, sizeof(err)), HX_OK);
	assert_q(f->q, "1,2,3,4,5",
	         "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations");
	assert_q(f->q, "t",
	         "SELECT to_regclass('cost_snapshots') IS NOT NULL "
	         "AND to_regclass('ingestion_runs') IS NOT NULL "
	         "AND to_regclass('cost_snapshots_date_idx') IS NULL");
	/* Migration 4: names are CHECKed as the server normalises them. */
	assert_q(f->q, "2",
	         "SELECT count(*) FROM pg_constraint WHERE conrelid = 'cost_snapshots'::regclass "
	         "AND conname IN ('cost_snapshots_provider_normalised', "
	         "'cost_snapshots_gpu_type_normalised')");
	/* Migration 5: the same checks without translate(), whose cost per
	 * row was most of an upsert's (store_migrate.c). */
	assert_q(f->q, "2",
	         "SELECT count(*) FROM pg_constraint WHERE conrelid = 'cost_snapshots'::regclass "
	         "AND conname LIKE 'cost_snapshots_%_normalised' "
	         "AND pg_get_constraintdef(oid) LIKE '%lower(%COLLATE \"C\")%' "
	         "AND pg_get_constraintdef(oid) NOT LIKE '%translate(%'");
	assert_q(f->q, "f",
	         "SELECT obj_description('cost_snapshots'::regclass, 'pg_class') IS NULL");
	/* The idempotency key is unique, and only over successful real runs. */
	assert_q(f->q, "t",
	         "SELECT indisunique AND indpred IS NOT NULL FROM pg_index "
	         "WHERE indexrelid = 'ingestion_runs_idempotency'::regclass");
	assert_q(f->q, "numeric(18,6)",
	         "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
	         "WHERE attrelid = 'cost_snapshots'::regclass AND attname = 'cost_usd'");
}

static void *
migrate_thread(void *arg)
{
	fx       *f = arg;
	char      err[512] = "";
	hx_status st = hx_store_migrate(f->conninfo, 5000, err, sizeof(err));

	if (st != HX_OK) {
		fprintf(stderr, "migrate thread: %s\n", err);
	}
	return (void *) (intptr_t) st;
}

static void
test_migrate_concurrent(void **state)
{
	fx       *f = *state;
	pthread_t t[4];
	void     *rv;
	int       i;

	assert_q(f->q, "f", "SELECT to_regclass('schema_migrations') IS NOT NULL");
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, f), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_int_equal((intptr_t) rv, HX_OK);
	}
	assert_q(f->q, "1,2,3,4,5",
	         "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations");
	assert_q(f->q, "0", "SELECT count(*) FROM cost_snapshots");
}

static void
test_migrate_waits_then_gives_up(void **state)
{
	char     err[512] = "";
	uint64_t t0 = now_us();

	(void) state;
	assert_int_equal(
	    hx_store_migrate("host=/nonexistent/hx port=1 dbname=x", 300, err, sizeof(err)),
	    HX_UNAVAILABLE);
	assert_true(now_us() - t0 >= 300000);
	assert_true(now_us() - t0 < 3000000);
	assert_non_null(strstr(err, "connect"));
}

/* ---- ingest ---------------------------------------------------------------------- */

static void
test_insert_unchanged_update(void **state)
{
	fx              *f = *state;
	const size_t     n = 500;
	hx_record       *r = make_recs(n, MICROS(1000) + 670000);
	hx_ingest_job    j;
	hx_ingest_counts c;
	char            *before, *after;

	j = job_for("first", r, n, false, 1);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 500, 0, 0, false);
	assert_int_equal(c.received, 500);
	assert_q(f->q, "500", "SELECT count(*) FROM cost_snapshots");
	assert_q(f->q, "1000.670000",
	         "SELECT cost_usd FROM cost_snapshots WHERE date = '2026-01-01' "
	         "AND provider = 'prov-0' AND gpu_type = 'gpu-0'");

	/* The same export again: nothing rewritten, not even updated_at. */
	before = q1(f->q, "%s", ALL_ROWS);
	j = job_for("second", r, n, false, 2);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 0, 500, false);
	after = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);
	free(before);
	free(after);

	/* Three costs change: three updates, the rest untouched. */
	r[7].cost += 1;
	r[100].cost = MICROS(5);
	r[499].cost += MICROS(1);
	j = job_for("third", r, n, false, 3);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 3, 497, false);
	assert_q(f->q, "3", "SELECT count(*) FROM cost_snapshots WHERE updated_at > created_at");
	assert_q(f->q, "5.000000",
	         "SELECT cost_usd FROM cost_snapshots WHERE date = '2026-04-17' "
	         "AND provider = 'prov-0' AND gpu_type = 'gpu-0'");
	assert_q(f->q, "1000.740001",
	         "SELECT cost_usd FROM cost_snapshots WHERE date = '2026-01-08' "
	         "AND provider = 'prov-0' AND gpu_type = 'gpu-0'");
	assert_q(f->q, "500", "SELECT count(*) FROM cost_snapshots");
	assert_q(f->q, "first:500/0/0,second:0/0/500,third:0/3/497",
	         "SELECT string_agg(format('%s:%s/%s/%s', request_id, inserted, updated, "
	         "unchanged), ',' ORDER BY id) FROM ingestion_runs");
	free(r);
}

static void
test_dry_run(void **state)
{
	fx              *f = *state;
	hx_record       *r = make_recs(15, MICROS(100));
	hx_ingest_job    j;
	hx_ingest_counts c;
	char            *before, *after;

	j = job_for("seed", r, 10, false, 1);
	ingest_ok(f->s, &j);
	before = q1(f->q, "%s", ALL_ROWS);

	/* 10 known (2 with new costs) + 5 new. */
	r[3].cost += 1;
	r[9].cost = MICROS(7);
	j = job_for("dry", r, 15, true, 2);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 5, 2, 8, false);
	after = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);

	/* A dry run is no idempotency key: it runs again, and a real run may
	 * then use the same request_id. */
	c = ingest_ok(f->s, &j);
	assert_counts(c, 5, 2, 8, false);
	j = job_for("dry", r, 15, false, 3);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 5, 2, 8, false);
	assert_q(f->q, "15", "SELECT count(*) FROM cost_snapshots");
	assert_q(f->q, "t/5/2/8,t/5/2/8,f/5/2/8",
	         "SELECT string_agg(format('%s/%s/%s/%s', dry_run, inserted, updated, unchanged),"
	         " ',' ORDER BY id) FROM ingestion_runs WHERE request_id = 'dry'");
	free(before);
	free(after);
	free(r);
}

static void
test_awkward_names_round_trip(void **state)
{
	static const char *names[] = {
		"a,b",  "{braces}",       "\"quoted\"",  "back\\slash", "\\\"",    "n\\ull",
		"null", "ünïcödé ☃ 日本", "spaced  out", "'single'",    "}{,\"\\", "x",
	};
	const size_t     n = sizeof(names) / sizeof(names[0]);
	fx              *f = *state;
	hx_record        r[sizeof(names) / sizeof(names[0])];
	hx_ingest_job    j;
	hx_ingest_counts c;
	PGresult        *res;
	size_t           i;

	for (i = 0; i < n; i++) {
		r[i] = rec("2026-02-01", names[i], names[n - 1 - i], MICROS(1) + (hx_micros) i);
	}
	j = job_for("awkward", r, n, false, 1);
	c = ingest_ok(f->s, &j);
	assert_counts(c, (uint32_t) n, 0, 0, false);

	res = PQexec(f->q,
	             "SELECT provider, gpu_type, cost_usd, provider IS NULL "
	             "FROM cost_snapshots ORDER BY cost_usd");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), (int) n);
	for (i = 0; i < n; i++) {
		assert_string_equal(PQgetvalue(res, (int) i, 0), names[i]);
		assert_string_equal(PQgetvalue(res, (int) i, 1), names[n - 1 - i]);
		assert_string_equal(PQgetvalue(res, (int) i, 3), "f");
	}
	PQclear(res);

	/* And they compare equal on the way back in. */
	j = job_for("awkward-again", r, n, false, 2);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 0, (uint32_t) n, false);
}

static void
test_replay_by_request_id(void **state)
{
	fx              *f = *state;
	hx_record       *r = make_recs(8, MICROS(42));
	hx_ingest_job    j;
	hx_ingest_counts c;
	char             err[512] = "";
	char            *before, *after;

	j = job_for("req-1", r, 5, false, 0xaa);
	j.received = 6;
	j.failed = 1;
	c = ingest_ok(f->s, &j);
	assert_counts(c, 5, 0, 0, false);
	before = q1(f->q, "%s", ALL_ROWS);

	/* Same id and fingerprint: the earlier answer, even though (by test
	 * construction) the records now differ; nothing is written. */
	j = job_for("req-1", r + 5, 3, false, 0xaa);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 5, 0, 0, true);
	assert_int_equal(c.received, 6);
	assert_int_equal(c.failed, 1);
	after = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);

	/* Same id, another request. */
	j = job_for("req-1", r, 5, false, 0xbb);
	memset(&c, 0x55, sizeof(c));
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INVALID_ARGUMENT);
	assert_int_equal(c.inserted, 0);
	assert_true(err[0] != '\0');
	free(after);
	after = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);

	assert_q(f->q, "f/0/5/aaaa,t/0/5/aaaa",
	         "SELECT string_agg(format('%s/%s/%s/%s', replayed, code, inserted, "
	         "left(encode(fingerprint, 'hex'), 4)), ',' ORDER BY id) "
	         "FROM ingestion_runs WHERE request_id = 'req-1'");
	free(before);
	free(after);
	free(r);
}

struct racer {
	fx              *f;
	hx_ingest_job    job;
	hx_ingest_counts c;
	hx_status        st;
	char             err[512];
};

static void *
racer_thread(void *arg)
{
	struct racer *rc = arg;
	hx_store     *s;

	rc->st = hx_store_open(&s, rc->f->conninfo);
	if (rc->st == HX_OK) {
		rc->st = hx_store_ingest(s, &rc->job, &rc->c, rc->err, sizeof(rc->err));
		hx_store_close(s);
	}
	return NULL;
}

static pthread_t racers[8];

static void
race_start(fx *f, struct racer *rc, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		rc[i].f = f;
		assert_int_equal(pthread_create(&racers[i], NULL, racer_thread, &rc[i]), 0);
	}
}

static void
race_join(struct racer *rc, int n)
{
	int i;

	/* Every thread joined before any check. */
	for (i = 0; i < n; i++) {
		if (pthread_join(racers[i], NULL) != 0) {
			abort();
		}
	}
	for (i = 0; i < n; i++) {
		if (rc[i].st != HX_OK) {
			fail_msg("racer %d: %s (%s)", i, hx_status_name(rc[i].st), rc[i].err);
		}
	}
}

static void
race(fx *f, struct racer *rc, int n)
{
	race_start(f, rc, n);
	race_join(rc, n);
}

/* Waits until n sessions of the store wait for a lock of the given type.
 * Asked on the admin connection: pg_stat_activity is a snapshot per
 * transaction, and f->q is inside the one that holds the lock. */
static void
wait_for_waiters(fx *f, const char *locktype, int n)
{
	char sql[320];
	int  i;

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
	         "WHERE l.locktype = '%s' AND NOT l.granted "
	         "AND a.application_name = 'heliox-ingestd' AND a.datname = '%s'",
	         locktype, f->db);
	for (i = 0; i < 500 && q_int(admin, sql) < n; i++) {
		usleep(10000);
	}
	assert_int_equal(q_int(admin, sql), n);
}

/* A resent request arriving while the first copy still runs waits for it and
 * replays its answer instead of running twice. */
static void
test_concurrent_same_request(void **state)
{
	fx                 *f = *state;
	hx_record          *r = make_recs(3000, MICROS(9));
	static struct racer rc[2]; /* static: threads outlive a failed check */

	/* A database default stronger than READ COMMITTED must not stop the
	 * second copy from seeing what the first committed while it waited. */
	exec_ok(f->q,
	        "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET "
	        "default_transaction_isolation = serializable', current_database()); END$$");
	memset(rc, 0, sizeof(rc));
	rc[0].job = rc[1].job = job_for("dup", r, 3000, false, 7);
	/* Hold the request's lock so that both copies are queued behind it,
	 * whatever the threads' timing. */
	exec_ok(f->q, "BEGIN");
	exec_ok(f->q, "SELECT pg_advisory_xact_lock(hashtextextended('dup', 0))");
	race_start(f, rc, 2);
	wait_for_waiters(f, "advisory", 2);
	exec_ok(f->q, "COMMIT");
	race_join(rc, 2);
	assert_int_equal(rc[0].c.replayed + rc[1].c.replayed, 1);
	assert_counts(rc[0].c, 3000, 0, 0, rc[0].c.replayed);
	assert_counts(rc[1].c, 3000, 0, 0, rc[1].c.replayed);
	assert_q(f->q, "false,true",
	         "SELECT string_agg(replayed::text, ',' ORDER BY replayed) FROM ingestion_runs "
	         "WHERE request_id = 'dup' AND code = 0");
	free(r);
}

/* Overlapping batches in different orders: sorted input keeps row locks in
 * one order, so none deadlocks or fails. */
static void
test_concurrent_overlapping_batches(void **state)
{
	enum { N = 4000, T = 4 };
	fx                 *f = *state;
	hx_record          *r[T];
	static struct racer rc[T]; /* static: threads outlive a failed check */
	char                rid[T][16];
	int                 k;
	size_t              i;

	memset(rc, 0, sizeof(rc));
	for (k = 0; k < T; k++) {
		r[k] = make_recs(N, MICROS(10 + k));
		for (i = 0; i < N / 2; i++) { /* reverse some, keep others */
			if (k % 2 == 1) {
				hx_record t = r[k][i];
				r[k][i] = r[k][N - 1 - i];
				r[k][N - 1 - i] = t;
			}
		}
		snprintf(rid[k], sizeof(rid[k]), "overlap-%d", k);
		rc[k].job = job_for(rid[k], r[k], N, false, (uint8_t) (k + 1));
	}
	race(f, rc, T);
	for (k = 0; k < T; k++) {
		assert_int_equal(rc[k].c.inserted + rc[k].c.updated + rc[k].c.unchanged, N);
		free(r[k]);
	}
	assert_int_equal(q_int(f->q, "SELECT count(*) FROM cost_snapshots"), N);
	assert_int_equal(q_int(f->q, "SELECT sum(inserted) FROM ingestion_runs"), N);
}

static void
test_timeout_writes_nothing(void **state)
{
	fx          *f = *state;
	const size_t n = 200000;
	hx_record   *r = make_recs(n, MICROS(1));
	hx_record    small[3] = {
		   rec("2026-03-01", "aws", "a100", MICROS(1)),
		   rec("2026-03-01", "aws", "h100", MICROS(2)),
		   rec("2026-03-02", "aws", "a100", MICROS(3)),
	};
	hx_ingest_job    j = job_for("slow", r, n, false, 1);
	hx_ingest_counts c;
	char             err[512] = "";

	j.timeout_ms = 1;
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_DEADLINE_EXCEEDED);
	assert_non_null(strstr(err, "57014"));
	assert_q(f->q, "0", "SELECT count(*) FROM cost_snapshots");
	assert_q(f->q, "0", "SELECT count(*) FROM ingestion_runs");

	/* Usable afterwards. A short timeout on a call that commits must not
	 * outlive its transaction either: the big batch, with no timeout of its
	 * own, then takes far longer than 50 ms and still succeeds. */
	j = job_for("after", small, 3, false, 2);
	j.timeout_ms = 50;
	c = ingest_ok(f->s, &j);
	assert_counts(c, 3, 0, 0, false);
	j = job_for("big", r, n, false, 3);
	c = ingest_ok(f->s, &j);
	assert_counts(c, (uint32_t) n, 0, 0, false);
	assert_int_equal(hx_store_ping(f->s), HX_OK);
	free(r);
}

static void
test_empty_batch_and_bad_counts(void **state)
{
	fx              *f = *state;
	hx_record        one = rec("2026-01-01", "aws", "a100", MICROS(1));
	hx_ingest_job    j = job_for("all-skipped", NULL, 0, false, 1);
	hx_ingest_counts c;
	char             err[512] = "";

	j.received = 3;
	j.failed = 3;
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 0, 0, false);
	assert_int_equal(c.failed, 3);
	assert_q(f->q, "3/3/0",
	         "SELECT format('%s/%s/%s', received, failed, code) "
	         "FROM ingestion_runs WHERE request_id = 'all-skipped'");

	/* Counts that cannot add up are refused before anything is written. */
	j = job_for("bad-counts", &one, 1, false, 2);
	j.received = 5;
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INTERNAL);
	assert_q(f->q, "0", "SELECT count(*) FROM cost_snapshots");
}

/* ---- connection loss ------------------------------------------------------------ */

static void
test_terminated_backend(void **state)
{
	fx              *f = *state;
	hx_record        one = rec("2026-01-01", "aws", "a100", MICROS(1));
	hx_ingest_job    j = job_for("after-kill", &one, 1, false, 1);
	hx_ingest_counts c;
	char             err[512] = "";
	char             sql[256];
	hx_status        st;
	int              tries;

	assert_int_equal(hx_store_ping(f->s), HX_OK);
	snprintf(sql, sizeof(sql),
	         "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
	         "WHERE application_name = 'heliox-ingestd' AND datname = '%s'",
	         f->db);
	assert_int_equal(q_int(f->q, sql), 1);

	/* The next call may answer UNAVAILABLE; the one after must work. */
	st = hx_store_ingest(f->s, &j, &c, err, sizeof(err));
	if (st != HX_OK) {
		assert_int_equal(st, HX_UNAVAILABLE);
		st = hx_store_ingest(f->s, &j, &c, err, sizeof(err));
	}
	assert_int_equal(st, HX_OK);
	assert_counts(c, 1, 0, 0, false);

	/* Killed again while idle: once the database's last answer is over a
	 * second old, ping asks it again, and reconnects. */
	assert_int_equal(q_int(f->q, sql), 1);
	usleep(1100 * 1000);
	for (tries = 0; tries < 2 && hx_store_ping(f->s) != HX_OK; tries++) {
	}
	assert_true(tries < 2);
	assert_int_equal(q_int(f->q, sql), 1); /* a live backend again */
}

static void
test_unreachable_database(void **state)
{
	hx_store         *s = NULL;
	hx_record         one = rec("2026-01-01", "aws", "a100", MICROS(1));
	hx_ingest_job     j = job_for("nowhere", &one, 1, false, 1);
	hx_ingest_counts  c;
	hx_summary_query  q = { 0 };
	hx_store_sum_row *rows = (hx_store_sum_row *) 1;
	size_t            n = 9;
	char              err[512] = "";

	(void) state;
	assert_int_equal(hx_store_open(&s, "host=/nonexistent/hx port=1 dbname=x"), HX_OK);
	assert_non_null(s);
	assert_int_equal(hx_store_ping(s), HX_UNAVAILABLE);
	assert_int_equal(hx_store_ingest(s, &j, &c, err, sizeof(err)), HX_UNAVAILABLE);
	assert_non_null(strstr(err, "connect"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(hx_store_summary(s, &q, 0, &rows, &n, err, sizeof(err)), HX_UNAVAILABLE);
	assert_null(rows);
	assert_int_equal(n, 0);
	assert_int_equal(hx_store_audit_failure(s, &j, HX_INTERNAL, err, sizeof(err)),
	                 HX_UNAVAILABLE);
	hx_store_close(s);
}

/* ---- audit ---------------------------------------------------------------------- */

static void
test_audit_rows(void **state)
{
	fx              *f = *state;
	hx_record        one = rec("2026-01-01", "aws", "a100", MICROS(1));
	hx_ingest_job    j = job_for("bad-1", NULL, 0, false, 0);
	hx_ingest_counts c;
	char             err[512] = "";

	j.source = "export_json";
	j.received = 5;
	j.failed = 5;
	assert_int_equal(hx_store_audit_failure(f->s, &j, HX_INVALID_ARGUMENT, err, sizeof(err)),
	                 HX_OK);
	assert_q(f->q, "export_json/3/INVALID_ARGUMENT/5/0/0/0/5/f/f/t",
	         "SELECT format('%s/%s/%s/%s/%s/%s/%s/%s/%s/%s/%s', source, code, code_name, "
	         "received, inserted, updated, unchanged, failed, dry_run, replayed, "
	         "fingerprint IS NULL) FROM ingestion_runs WHERE request_id = 'bad-1'");

	/* A code-0 row would become an idempotency key: refused. */
	assert_int_equal(hx_store_audit_failure(f->s, &j, HX_OK, err, sizeof(err)),
	                 HX_INVALID_ARGUMENT);
	assert_q(f->q, "1", "SELECT count(*) FROM ingestion_runs");

	/* A failed run does not block the request from succeeding later. */
	j = job_for("bad-1", &one, 1, false, 0x11);
	j.started_us -= 1500; /* the request began before the store saw it */
	c = ingest_ok(f->s, &j);
	assert_counts(c, 1, 0, 0, false);
	assert_q(
	    f->q,
	    "records/0/OK/1/t/1111111111111111111111111111111111111111111111111111111111111111",
	    "SELECT format('%s/%s/%s/%s/%s/%s', source, code, code_name, inserted, "
	    "duration_us >= 1500, encode(fingerprint, 'hex')) FROM ingestion_runs "
	    "WHERE request_id = 'bad-1' AND code = 0");
}

/* ---- summary -------------------------------------------------------------------- */

static void
seed_summary(fx *f)
{
	hx_record r[] = {
		rec("2026-01-01", "aws", "a100", 1000100000),
		rec("2026-01-01", "aws", "h100", 2000200000),
		rec("2026-01-01", "gcp", "a100", 1500005000),
		rec("2026-01-02", "aws", "a100", 1000300000),
		rec("2026-01-02", "gcp", "h100", 2500000001),
		rec("2026-01-03", "gcp", "a100", 500000),
	};
	hx_ingest_job j = job_for("seed", r, 6, false, 1);

	ingest_ok(f->s, &j);
}

/* Rows as "date|provider|gpu|records|total|avg|min|max;..." */
static void
assert_summary(fx *f, hx_group_by g, const char *from, const char *to, const char *prov,
               const char *gpu, const char *expect)
{
	hx_summary_query  q = { from, to, prov, gpu, g };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0, i, len = 0;
	char              got[2048] = "", err[512] = "";
	hx_status         st = hx_store_summary(f->s, &q, 5000, &rows, &n, err, sizeof(err));

	if (st != HX_OK) {
		fail_msg("summary: %s (%s)", hx_status_name(st), err);
	}
	for (i = 0; i < n; i++) {
		len += (size_t) snprintf(
		    got + len, sizeof(got) - len, "%s%s|%s|%s|%" PRIu64 "|%s|%s|%s|%s",
		    i ? ";" : "", rows[i].date, rows[i].provider, rows[i].gpu_type, rows[i].records,
		    rows[i].total_usd, rows[i].avg_usd, rows[i].min_usd, rows[i].max_usd);
	}
	free(rows);
	if (strcmp(got, expect) != 0) {
		fprintf(stderr, "group %d\nwant: %s\ngot:  %s\n", (int) g, expect, got);
	}
	assert_string_equal(got, expect);
}

static void
test_summary_groups(void **state)
{
	fx *f = *state;

	seed_summary(f);
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL,
	               "|||6|8001.105001|1333.52|0.50|2500.000001");
	assert_summary(f, HX_GROUP_PROVIDER, NULL, NULL, NULL, NULL,
	               "|aws||3|4000.60|1333.53|1000.10|2000.20;"
	               "|gcp||3|4000.505001|1333.50|0.50|2500.000001");
	assert_summary(f, HX_GROUP_GPU_TYPE, NULL, NULL, NULL, NULL,
	               "||a100|4|3500.905|875.23|0.50|1500.005;"
	               "||h100|2|4500.200001|2250.10|2000.20|2500.000001");
	assert_summary(f, HX_GROUP_DATE, NULL, NULL, NULL, NULL,
	               "2026-01-01|||3|4500.305|1500.10|1000.10|2000.20;"
	               "2026-01-02|||2|3500.300001|1750.15|1000.30|2500.000001;"
	               "2026-01-03|||1|0.50|0.50|0.50|0.50");
	assert_summary(f, HX_GROUP_PROVIDER_GPU_TYPE, NULL, NULL, NULL, NULL,
	               "|aws|a100|2|2000.40|1000.20|1000.10|1000.30;"
	               "|aws|h100|1|2000.20|2000.20|2000.20|2000.20;"
	               "|gcp|a100|2|1500.505|750.25|0.50|1500.005;"
	               "|gcp|h100|1|2500.000001|2500.00|2500.000001|2500.000001");
	/* Filters: inclusive dates, names normalised like ingested ones. */
	assert_summary(f, HX_GROUP_NONE, "2026-01-02", "", " GCP\t", NULL,
	               "|||2|2500.500001|1250.25|0.50|2500.000001");
	assert_summary(f, HX_GROUP_PROVIDER, NULL, "2026-01-01", NULL, "A100",
	               "|aws||1|1000.10|1000.10|1000.10|1000.10;"
	               "|gcp||1|1500.005|1500.01|1500.005|1500.005");
	assert_summary(f, HX_GROUP_NONE, "2026-01-04", NULL, NULL, NULL, "|||0|0.00|||");
	assert_summary(f, HX_GROUP_DATE, NULL, NULL, "nobody", NULL, "");
}

static void
test_summary_empty_and_bad_input(void **state)
{
	fx               *f = *state;
	hx_summary_query  q = { "2026-02-30", NULL, NULL, NULL, HX_GROUP_NONE };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0;
	char              err[512] = "";

	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL, "|||0|0.00|||");
	assert_summary(f, HX_GROUP_PROVIDER_GPU_TYPE, NULL, NULL, NULL, NULL, "");
	assert_int_equal(hx_store_summary(f->s, &q, 0, &rows, &n, err, sizeof(err)),
	                 HX_INVALID_ARGUMENT);
	assert_null(rows);
	q.from_date = NULL;
	q.group_by = (hx_group_by) 99;
	assert_int_equal(hx_store_summary(f->s, &q, 0, &rows, &n, err, sizeof(err)),
	                 HX_INVALID_ARGUMENT);
	/* The store still works after a query the server refused. */
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL, "|||0|0.00|||");
}

/* ---- the large (COPY) path ------------------------------------------------------ */

/* Above the store's COPY threshold (10000 records). */
#define BIG 100000

/* A digest of every row version: equal digests mean nothing was rewritten. */
#define ROWS_DIGEST                                                                       \
	"SELECT md5(coalesce(string_agg(format('%s|%s|%s|%s', id, cost_usd, updated_at, " \
	"xmin), ',' ORDER BY id), '')) FROM cost_snapshots"

/* Fresh, unchanged (nothing rewritten), dry run, changed and replayed
 * batches of n records, n/100 of them changed, plus n/10 new ones. */
static void
batch_counts_exact(fx *f, size_t n)
{
	hx_record       *r = make_recs(n + n / 10, MICROS(1000));
	uint32_t         m = (uint32_t) n, k = m / 100, fresh = m / 10;
	hx_ingest_job    j;
	hx_ingest_counts c;
	char            *before, *after;
	size_t           i;

	j = job_for("b-fresh", r, n, false, 1);
	c = ingest_ok(f->s, &j);
	assert_counts(c, m, 0, 0, false);
	assert_int_equal(q_int(f->q, "SELECT count(*) FROM cost_snapshots"), (long long) n);
	before = q1(f->q, "%s", ROWS_DIGEST);
	j = job_for("b-same", r, n, false, 2);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 0, m, false);
	after = q1(f->q, "%s", ROWS_DIGEST);
	assert_string_equal(before, after);
	free(after);

	for (i = 0; i < n; i += 100) {
		r[i].cost += 1;
	}
	j = job_for("b-dry", r, n + fresh, true, 3);
	c = ingest_ok(f->s, &j);
	assert_counts(c, fresh, k, m - k, false);
	after = q1(f->q, "%s", ROWS_DIGEST);
	assert_string_equal(before, after);
	j = job_for("b-changed", r, n + fresh, false, 4);
	c = ingest_ok(f->s, &j);
	assert_counts(c, fresh, k, m - k, false);
	assert_int_equal(
	    q_int(f->q, "SELECT count(*) FROM cost_snapshots WHERE updated_at > created_at"),
	    (long long) k);
	assert_q(f->q, "1000.000001", "SELECT cost_usd FROM cost_snapshots WHERE id = 1");
	/* A resent copy is answered from ingestion_runs, not run again. */
	c = ingest_ok(f->s, &j);
	assert_counts(c, fresh, k, m - k, true);
	free(before);
	free(after);
	free(r);
}

/* Arrays, with the lookup that keeps unchanged rows out of the upsert. */
static void
test_mid_batch_counts_exact(void **state)
{
	batch_counts_exact(*state, 3000);
}

/* COPY, with the same lookup. */
static void
test_large_batch_counts_exact(void **state)
{
	batch_counts_exact(*state, BIG);
}

/* The names that need escaping in any text format, through COPY. */
static void
test_large_batch_awkward_names(void **state)
{
	static const char *names[] = { "a\tb", "back\\slash", "\\n", "new\nline", "c\rr", "é☃" };
	const size_t       k = sizeof(names) / sizeof(names[0]);
	fx                *f = *state;
	hx_record         *r = make_recs(12000, MICROS(3));
	hx_ingest_job      j;
	hx_ingest_counts   c;
	size_t             i;
	char               sql[256];

	for (i = 0; i < k; i++) {
		snprintf(r[i].provider, sizeof(r[i].provider), "%s", names[i]);
	}
	j = job_for("awkward-big", r, 12000, false, 1);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 12000, 0, 0, false);
	for (i = 0; i < k; i++) {
		PGresult   *res;
		const char *v[1] = { names[i] };

		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM cost_snapshots WHERE provider = $1");
		res = PQexecParams(f->q, sql, 1, NULL, v, NULL, NULL, 0);
		assert_string_equal(PQgetvalue(res, 0, 0), "1");
		PQclear(res);
	}
	j = job_for("awkward-big-2", r, 12000, false, 2);
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 0, 12000, false);
	free(r);
}

/* The store's input table, as "oid" (one per store connection). */
static char *
input_table(fx *f)
{
	return q1(f->q,
	          "SELECT coalesce(string_agg(c.oid::text, ','), '') FROM pg_class c "
	          "JOIN pg_namespace n ON n.oid = c.relnamespace "
	          "WHERE c.relname = 'hx_input' AND n.nspname LIKE 'pg_temp%%'");
}

static void
terminate_store_backends(fx *f, int expect)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
	         "WHERE application_name = 'heliox-ingestd' AND datname = '%s'",
	         f->db);
	assert_int_equal(q_int(f->q, sql), expect);
}

/* Ingests n records from r and checks the counts. */
static void
ingest_expect(fx *f, const char *rid, hx_record *r, size_t n, uint32_t ins, uint32_t upd)
{
	hx_ingest_job    j = job_for(rid, r, n, false, 9);
	hx_ingest_counts c = ingest_ok(f->s, &j);

	assert_counts(c, ins, upd, (uint32_t) n - ins - upd, false);
}

/* Created once per connection, reused by every request on it, made anew
 * with the connection. */
static void
test_input_table_per_connection(void **state)
{
	fx        *f = *state;
	hx_record *r = make_recs(30000, MICROS(5));
	char      *first, *again, *after;

	first = input_table(f);
	assert_true(first[0] != '\0' && strchr(first, ',') == NULL);
	ingest_expect(f, "t-1", r, 15000, 15000, 0);
	ingest_expect(f, "t-2", r + 15000, 15000, 15000, 0);
	ingest_expect(f, "t-3", r, 30000, 0, 0);
	again = input_table(f);
	assert_string_equal(first, again);

	terminate_store_backends(f, 1);
	r[0].cost += 1;
	ingest_expect(f, "t-4", r, 30000, 0, 1); /* reconnects, then works */
	after = input_table(f);
	assert_true(after[0] != '\0' && strcmp(after, first) != 0);
	free(first);
	free(again);
	free(after);
	free(r);
}

/* Whatever a failed request put in the input table, the next request on
 * the same connection neither sees nor writes it. */
static void
test_failed_request_leaves_input_empty(void **state)
{
	fx              *f = *state;
	hx_record       *r = make_recs(2 * BIG, MICROS(7));
	hx_ingest_job    j;
	hx_ingest_counts c;
	char             err[512] = "";

	/* Fails in the statement after COPY: statement_timeout. */
	j = job_for("slow", r + BIG, BIG, false, 1);
	j.timeout_ms = 1;
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_DEADLINE_EXCEEDED);
	/* Fails in COPY itself: text the database refuses (not UTF-8). */
	r[BIG + 5].provider[0] = (char) 0xff;
	j = job_for("bad-utf8", r + BIG, 20000, false, 2);
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INTERNAL);
	/* Ends after COPY and commits: request_id of another request. */
	ingest_expect(f, "used", r + BIG + 30000, 10000, 10000, 0);
	j = job_for("used", r + BIG + 40000, 20000, false, 0x77);
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INVALID_ARGUMENT);

	ingest_expect(f, "next", r, 10000, 10000, 0);
	assert_int_equal(q_int(f->q, "SELECT count(*) FROM cost_snapshots"), 20000);
	assert_q(f->q, "1|1",
	         "SELECT count(*) FILTER (WHERE request_id = 'used') || '|' || "
	         "count(*) FILTER (WHERE request_id = 'next') FROM ingestion_runs");
	free(r);
}

/* A role that may not create temporary tables (or a read-only standby)
 * still gets a working store: large batches then go as arrays. */
static void
test_without_temp_privilege(void **state)
{
	fx              *f = *state;
	hx_record       *r = make_recs(12000, MICROS(2));
	hx_store        *s = NULL;
	hx_ingest_job    j;
	hx_ingest_counts c;
	char             role[64], sql[512], conninfo[2200];
	char            *before, *after;

	snprintf(role, sizeof(role), "hx_notemp_%d", (int) getpid());
	snprintf(sql, sizeof(sql),
	         "CREATE ROLE %s LOGIN; REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC; "
	         "GRANT SELECT, INSERT, UPDATE ON cost_snapshots, ingestion_runs TO %s; "
	         "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %s",
	         role, f->db, role, role);
	exec_ok(f->q, sql);
	snprintf(conninfo, sizeof(conninfo), "%s user=%s", f->conninfo, role);
	before = input_table(f); /* the fixture's store's */
	assert_int_equal(hx_store_open(&s, conninfo), HX_OK);
	after = input_table(f);
	assert_string_equal(before, after);
	j = job_for("no-temp", r, 12000, false, 1);
	c = ingest_ok(s, &j);
	assert_counts(c, 12000, 0, 0, false);
	j = job_for("no-temp-2", r, 12000, false, 2);
	c = ingest_ok(s, &j);
	assert_counts(c, 0, 0, 12000, false);
	/* v2: this role has no DELETE either. Requests without windows never
	 * needed it (above); one with windows fails whole, writing nothing. */
	{
		hx_replace_window w = window("prov-0", "2026-01-01", "2026-12-31");
		char              err[512] = "";
		char             *rows0 = q1(f->q, "%s", ALL_ROWS), *rows1;

		j = job_for("no-delete", r + 1, 100, false, 3);
		j.windows = &w;
		j.n_windows = 1;
		assert_int_equal(hx_store_ingest(s, &j, &c, err, sizeof(err)), HX_INTERNAL);
		assert_non_null(strstr(err, "permission denied"));
		rows1 = q1(f->q, "%s", ALL_ROWS);
		assert_string_equal(rows0, rows1);
		assert_q(f->q, "0",
		         "SELECT count(*) FROM ingestion_runs WHERE request_id = 'no-delete'");
		free(rows0);
		free(rows1);
	}
	hx_store_close(s);
	snprintf(sql, sizeof(sql), "DROP OWNED BY %s; DROP ROLE %s", role, role);
	exec_ok(f->q, sql);
	free(before);
	free(after);
	free(r);
}

/* A reconnect while someone holds cost_snapshots locked: nothing on the
 * way (connecting, preparing) waits for that lock outside the call's
 * statement_timeout, and what does not need the table does not wait. */
static void
test_reconnect_under_table_lock(void **state)
{
	fx              *f = *state;
	hx_record        one = rec("2026-01-01", "aws", "a100", MICROS(1));
	hx_ingest_job    j = job_for("locked", &one, 1, false, 1);
	hx_ingest_counts c;
	char             err[512] = "";
	uint64_t         t0;

	ingest_expect(f, "warm", &one, 1, 1, 0);
	terminate_store_backends(f, 1);
	exec_ok(f->q, "BEGIN");
	exec_ok(f->q, "LOCK TABLE cost_snapshots IN ACCESS EXCLUSIVE MODE");
	t0 = now_us();
	/* The first call meets the dead connection (best effort: no retry);
	 * the next reconnects, and writes its row to the unlocked table. */
	if (hx_store_audit_failure(f->s, &j, HX_UNAVAILABLE, err, sizeof(err)) != HX_OK) {
		assert_int_equal(hx_store_audit_failure(f->s, &j, HX_UNAVAILABLE, err, sizeof(err)),
		                 HX_OK);
	}
	one.cost += 1;
	j.timeout_ms = 300;
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_DEADLINE_EXCEEDED);
	assert_true(now_us() - t0 < 3000000);
	exec_ok(f->q, "COMMIT");
	j.timeout_ms = 0;
	c = ingest_ok(f->s, &j);
	assert_counts(c, 0, 1, 0, false);
}

/* ---- the fast form's race --------------------------------------------------------- */

struct late {
	fx              *f;
	hx_record       *r;
	size_t           n;
	hx_ingest_counts c;
	hx_status        st;
	char             err[512];
};

static void *
late_thread(void *arg)
{
	struct late  *l = arg;
	hx_ingest_job j = job_for("late", l->r, l->n, false, 1);

	l->st = hx_store_ingest(l->f->s, &j, &l->c, l->err, sizeof(l->err));
	return NULL;
}

/* A key absent when the request looked, inserted by another transaction
 * before it could: the plain INSERT meets the unique index, and the whole
 * request runs again through ON CONFLICT - one answer, exact counts. */
static void
race_new_key(fx *f, size_t n)
{
	static struct late l; /* static: the thread outlives a failed check */
	hx_record         *r = make_recs(n, MICROS(11));
	pthread_t          t;

	memset(&l, 0, sizeof(l));
	l.f = f;
	l.r = r;
	l.n = n;
	exec_ok(f->q, "BEGIN");
	exec_ok(f->q,
	        "INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd) "
	        "VALUES ('2026-01-05', 'prov-0', 'gpu-0', 1)"); /* key of r[4] */
	assert_int_equal(pthread_create(&t, NULL, late_thread, &l), 0);
	wait_for_waiters(f, "transactionid", 1);
	exec_ok(f->q, "COMMIT");
	if (pthread_join(t, NULL) != 0) {
		abort();
	}
	if (l.st != HX_OK) {
		fail_msg("late: %s (%s)", hx_status_name(l.st), l.err);
	}
	assert_counts(l.c, (uint32_t) n - 1, 1, 0, false);
	assert_q(f->q, "11.040000",
	         "SELECT cost_usd FROM cost_snapshots WHERE date = '2026-01-05' "
	         "AND provider = 'prov-0' AND gpu_type = 'gpu-0'");
	assert_int_equal(q_int(f->q, "SELECT count(*) FROM cost_snapshots"), (long long) n);
	assert_q(f->q, "1", "SELECT count(*) FROM ingestion_runs WHERE request_id = 'late'");
	free(r);
}

static void
test_race_new_key_small(void **state)
{
	race_new_key(*state, 28); /* the plain upsert: ON CONFLICT waits, then updates */
}

static void
test_race_new_key_mid(void **state)
{
	race_new_key(*state, 2000); /* the fast form: 23505, then the plain one */
}

static void
test_race_new_key_large(void **state)
{
	race_new_key(*state, 12000);
}

/* ---- records the store refuses ---------------------------------------------------- */

static void
test_refused_records(void **state)
{
	fx       *f = *state;
	hx_record r[3] = {
		rec("2026-01-01", "aws", "a100", MICROS(1)),
		rec("2026-02-30", "aws", "a100", MICROS(1)), /* no such day */
		rec("2026-01-01", "aws", "a100", MICROS(2)), /* the key of r[0] again */
	};
	hx_ingest_job    j;
	hx_ingest_counts c;
	char             err[512] = "";

	/* Binary input would store Feb 30th as March 2nd without a word. */
	j = job_for("bad-date", r, 2, false, 1);
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INTERNAL);
	assert_non_null(strstr(err, "2026-02-30"));
	/* Validation drops repeated keys upstream; the store says so too. */
	r[1] = r[2];
	j = job_for("dup-key", r, 2, false, 2);
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INTERNAL);
	assert_non_null(strstr(err, "twice"));
	r[1].cost = MICROS(-5); /* below zero: the table's CHECK refuses it */
	snprintf(r[1].gpu_type, sizeof(r[1].gpu_type), "h100");
	j = job_for("negative", r, 2, false, 3);
	assert_int_equal(hx_store_ingest(f->s, &j, &c, err, sizeof(err)), HX_INTERNAL);
	assert_q(f->q, "0", "SELECT count(*) FROM cost_snapshots");
	assert_q(f->q, "0", "SELECT count(*) FROM ingestion_runs");
	assert_int_equal(hx_store_ping(f->s), HX_OK);
}

/* ---- Health ------------------------------------------------------------------------- */

static char *
store_backends(fx *f)
{
	return q1(f->q,
	          "SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') "
	          "FROM pg_stat_activity WHERE application_name = 'heliox-ingestd' "
	          "AND datname = current_database()");
}

/* Ping trusts an answer under a second old, unless some store has lost its
 * connection since: then it asks the database again. */
static void
test_ping_trusts_recent_answers(void **state)
{
	fx       *f = *state;
	hx_store *b = NULL;
	char     *pids, *now;

	assert_int_equal(hx_store_open(&b, f->conninfo), HX_OK);
	assert_int_equal(hx_store_ping(f->s), HX_OK);
	assert_int_equal(hx_store_ping(b), HX_OK);
	terminate_store_backends(f, 2);
	/* Within the second: the documented staleness, no round trip. */
	assert_int_equal(hx_store_ping(b), HX_OK);
	pids = store_backends(f);
	assert_string_equal(pids, "");
	/* A real call on f->s meets the loss (and reconnects); b no longer
	 * trusts its own last answer, asks, finds its connection gone and
	 * makes a new one. */
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL, "|||0|0.00|||");
	assert_int_equal(hx_store_ping(b), HX_OK);
	now = store_backends(f);
	assert_non_null(strchr(now, ','));
	hx_store_close(b);
	free(pids);
	free(now);
}

/* ---- plans that do not depend on statistics ------------------------------------ */

/* The stats of one table, read fresh (not from this session's snapshot). */
static long long
table_stat(fx *f, const char *col, const char *table)
{
	char     *v;
	long long x;

	exec_ok(f->q, "SELECT pg_stat_clear_snapshot()");
	v = q1(f->q, "SELECT coalesce(%s, 0) FROM pg_stat_user_tables WHERE relname = '%s'", col,
	       table);
	x = atoll(v);
	free(v);
	return x;
}

/* Waits (up to 10 s) until cost_snapshots' `col` reaches want, as the
 * counters of backends that have exited arrive, and asserts it did. */
static void
wait_stat(fx *f, const char *col, long long want)
{
	long long got = table_stat(f, col, "cost_snapshots");

	for (int tries = 0; tries < 200 && got != want; tries++) {
		usleep(50 * 1000);
		got = table_stat(f, col, "cost_snapshots");
	}
	assert_int_equal(got, want);
}

/* Gives a batch its own keys: gpu types "TAG-..." no other batch has. */
static void
tag_recs(hx_record *r, size_t n, const char *tag)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char g[HX_NAME_MAX + 1];

		/* Checked, not assumed: also what keeps gcc -O0's
		 * -Wformat-truncation quiet (the sanitizer build). */
		int k = snprintf(g, sizeof(g), "%s-%s", tag, r[i].gpu_type);
		assert_true(k > 0 && (size_t) k < sizeof(g));
		snprintf(r[i].gpu_type, sizeof(r[i].gpu_type), "%s", g);
	}
}

/*
 * Issue 7: on a freshly created, analyzed, empty table the planner costs a
 * sequential scan at nothing, and a lookup planned then runs as one scan
 * per input row over whatever another connection has written meanwhile:
 * quadratic, seconds per request. Every write form (COPY table, arrays, dry
 * run, replays) on two connections at once must touch cost_snapshots and
 * ingestion_runs through their indexes only: zero sequential scans, which
 * the statistics collector counts exactly (no timing involved).
 */
static void
test_writes_never_scan(void **state)
{
	fx              *f = *state;
	hx_store        *s2 = NULL;
	hx_record       *a = make_recs(10000, MICROS(5)), *b = make_recs(10000, MICROS(6));
	hx_record       *c = make_recs(2000, MICROS(7)), *a2 = make_recs(10000, MICROS(8));
	hx_ingest_job    j;
	hx_ingest_counts n;
	long long        scans0, rscans0, read0;

	tag_recs(a, 10000, "a");
	tag_recs(a2, 10000, "a");
	tag_recs(b, 10000, "b");
	tag_recs(c, 2000, "c");
	assert_int_equal(hx_store_open(&s2, f->conninfo), HX_OK);
	exec_ok(f->q, "VACUUM ANALYZE cost_snapshots");
	exec_ok(f->q, "VACUUM ANALYZE ingestion_runs");
	assert_q(f->q, "0",
	         "SELECT reltuples::bigint FROM pg_class WHERE relname = 'cost_snapshots'");
	scans0 = table_stat(f, "seq_scan", "cost_snapshots");
	read0 = table_stat(f, "seq_tup_read", "cost_snapshots");
	rscans0 = table_stat(f, "seq_scan", "ingestion_runs");

	/* Both connections plan while the table is empty, then fill it. */
	j = job_for("scan-dry-1", c, 2000, true, 1);
	assert_counts(ingest_ok(f->s, &j), 2000, 0, 0, false);
	j = job_for("scan-dry-2", c, 2000, true, 2);
	assert_counts(ingest_ok(s2, &j), 2000, 0, 0, false);
	j = job_for("scan-a", a, 10000, false, 3);
	assert_counts(ingest_ok(f->s, &j), 10000, 0, 0, false);
	j = job_for("scan-b", b, 10000, false, 4);
	assert_counts(ingest_ok(s2, &j), 10000, 0, 0, false);
	j = job_for("scan-c", c, 2000, false, 5);
	assert_counts(ingest_ok(f->s, &j), 2000, 0, 0, false);
	j = job_for("scan-a2", a2, 10000, false, 6); /* every cost changed */
	assert_counts(ingest_ok(s2, &j), 0, 10000, 0, false);
	j = job_for("scan-b-dry", b, 10000, true, 7);
	assert_counts(ingest_ok(f->s, &j), 0, 0, 10000, false);
	j = job_for("scan-a", a, 10000, false, 3); /* a replay */
	n = ingest_ok(s2, &j);
	assert_counts(n, 10000, 0, 0, true);
	/* v2: replace windows, dry (arrays) and real (COPY); the window deletes
	 * the other batches' rows of prov-0, through the unique index too */
	{
		hx_replace_window w = window("prov-0", "2026-01-01", "2026-12-31");

		j = job_for("scan-c-win-dry", c, 2000, true, 8);
		j.windows = &w;
		j.n_windows = 1;
		n = ingest_ok(f->s, &j);
		assert_true(n.deleted > 0);
		j = job_for("scan-b-win", b, 10000, false, 9);
		j.windows = &w;
		j.n_windows = 1;
		n = ingest_ok(s2, &j);
		assert_counts(n, 0, 0, 10000, false);
		assert_true(n.deleted > 0);
	}

	/* A backend flushes its counters when it exits. */
	hx_store_close(s2);
	hx_store_close(f->s);
	f->s = NULL;
	wait_stat(f, "n_tup_ins", 22000);
	if (table_stat(f, "seq_scan", "cost_snapshots") != scans0 ||
	    table_stat(f, "seq_scan", "ingestion_runs") != rscans0) {
		fprintf(stderr,
		        "sequential scans: cost_snapshots %lld (%lld rows), ingestion_runs %lld\n",
		        table_stat(f, "seq_scan", "cost_snapshots") - scans0,
		        table_stat(f, "seq_tup_read", "cost_snapshots") - read0,
		        table_stat(f, "seq_scan", "ingestion_runs") - rscans0);
	}
	assert_int_equal(table_stat(f, "seq_scan", "cost_snapshots"), scans0);
	assert_int_equal(table_stat(f, "seq_tup_read", "cost_snapshots"), read0);
	assert_int_equal(table_stat(f, "seq_scan", "ingestion_runs"), rscans0);
	free(a);
	free(a2);
	free(b);
	free(c);
}

/* Ingests j on a connection of its own and closes it, so that its
 * statistics are flushed; waits until cost_snapshots' `col` reaches want. */
static hx_ingest_counts
ingest_flushed(fx *f, const hx_ingest_job *j, const char *col, long long want)
{
	hx_store        *s = NULL;
	hx_ingest_counts n;

	assert_int_equal(hx_store_open(&s, f->conninfo), HX_OK);
	n = ingest_ok(s, j);
	hx_store_close(s); /* a backend flushes its counters when it exits */
	wait_stat(f, col, want);
	return n;
}

/* Index entries read from cost_snapshots' indexes so far. */
static long long
index_tup_read(fx *f)
{
	char     *v;
	long long x;

	exec_ok(f->q, "SELECT pg_stat_clear_snapshot()");
	v = q1(f->q,
	       "SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes "
	       "WHERE relname = 'cost_snapshots'");
	x = atoll(v);
	free(v);
	return x;
}

static void
set_year(hx_record *r, size_t n, char digit)
{
	for (size_t i = 0; i < n; i++) {
		r[i].date[3] = digit; /* "2026-..." -> "202X-..." */
	}
}

/*
 * A row whose date has no stored row is new without a lookup of its key:
 * a batch on new days costs one index probe per distinct date (make_recs
 * spreads any batch over 336), not one per row, in both input forms (arrays
 * below COPY_MIN_RECORDS, COPY at and above). Rows on days that do have
 * stored rows are still looked up one by one, and counted right.
 */
static void
test_new_days_skip_key_lookups(void **state)
{
	fx              *f = *state;
	hx_record       *a = make_recs(3000, MICROS(5)), *a2 = make_recs(3000, MICROS(6));
	hx_record       *b = make_recs(10000, MICROS(7)), *m = make_recs(3000, MICROS(8));
	hx_record       *c = make_recs(3000, MICROS(9));
	hx_ingest_job    j;
	hx_ingest_counts n;
	long long        scans, read;

	exec_ok(f->q, "VACUUM ANALYZE cost_snapshots");
	set_year(b, 10000, '7');
	set_year(c, 3000, '9');
	for (size_t i = 0; i < 3000; i += 2) {
		m[i].date[3] = '8'; /* every other row on a new day; the rest as a2 */
	}

	scans = table_stat(f, "idx_scan", "cost_snapshots");
	j = job_for("days-a", a, 3000, false, 1); /* arrays, all new */
	assert_counts(ingest_flushed(f, &j, "n_tup_ins", 3000), 3000, 0, 0, false);
	assert_in_range(table_stat(f, "idx_scan", "cost_snapshots") - scans, 1, 336);

	scans = table_stat(f, "idx_scan", "cost_snapshots");
	j = job_for("days-b", b, 10000, false, 2); /* COPY, all new */
	assert_counts(ingest_flushed(f, &j, "n_tup_ins", 13000), 10000, 0, 0, false);
	assert_in_range(table_stat(f, "idx_scan", "cost_snapshots") - scans, 1, 336);

	/* New days again, now beside 13,000 stored rows: still a probe a day,
	 * and none of them reads the stored rows (an index scan of them all,
	 * as a join would plan it, reads 13,000 entries). */
	scans = table_stat(f, "idx_scan", "cost_snapshots");
	read = index_tup_read(f);
	j = job_for("days-c", c, 3000, false, 5);
	assert_counts(ingest_flushed(f, &j, "n_tup_ins", 16000), 3000, 0, 0, false);
	assert_in_range(table_stat(f, "idx_scan", "cost_snapshots") - scans, 1, 336);
	assert_in_range(index_tup_read(f) - read, 0, 336);

	scans = table_stat(f, "idx_scan", "cost_snapshots");
	j = job_for("days-a2", a2, 3000, false, 3); /* the same keys, every cost changed */
	assert_counts(ingest_flushed(f, &j, "n_tup_upd", 3000), 0, 3000, 0, false);
	assert_true(table_stat(f, "idx_scan", "cost_snapshots") - scans >= 3000);

	/* Every other row on a new day (inserted); the rest on a's days with
	 * a2's costs (unchanged). */
	for (size_t i = 1; i < 3000; i += 2) {
		m[i].cost = a2[i].cost;
	}
	j = job_for("days-mixed", m, 3000, false, 4);
	n = ingest_flushed(f, &j, "n_tup_ins", 17500);
	assert_counts(n, 1500, 0, 1500, false);
	free(a);
	free(a2);
	free(b);
	free(c);
	free(m);
}

/* Summaries' filters are optional, which a cached generic plan cannot use:
 * after a run of unfiltered summaries, a one-day summary must still take
 * the index on date, not scan the table. */
static void
test_summary_plans_per_call(void **state)
{
	fx               *f = *state;
	hx_record        *r = make_recs(20000, MICROS(3));
	hx_ingest_job     j = job_for("plans", r, 20000, false, 1);
	hx_summary_query  all = { .group_by = HX_GROUP_NONE };
	hx_summary_query  day = { .from_date = "2026-03-05",
		                  .to_date = "2026-03-05",
		                  .group_by = HX_GROUP_NONE };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0;
	long long         seq0, idx0, got = 0;
	int               k, tries;
	char              err[256];

	assert_counts(ingest_ok(f->s, &j), 20000, 0, 0, false);
	exec_ok(f->q, "VACUUM ANALYZE cost_snapshots");
	hx_store_close(f->s); /* a new backend: its plan cache is empty */
	assert_int_equal(hx_store_open(&f->s, f->conninfo), HX_OK);
	seq0 = table_stat(f, "seq_scan", "cost_snapshots");
	idx0 = table_stat(f, "idx_scan", "cost_snapshots");
	for (k = 0; k < 8; k++) {
		assert_int_equal(hx_store_summary(f->s, &all, 5000, &rows, &n, err, sizeof(err)),
		                 HX_OK);
		assert_int_equal(rows[0].records, 20000);
		free(rows);
	}
	assert_int_equal(hx_store_summary(f->s, &day, 5000, &rows, &n, err, sizeof(err)), HX_OK);
	assert_int_equal(rows[0].records, 20000 / 336 + 1); /* (i % 336) == 63 */
	free(rows);
	hx_store_close(f->s);
	f->s = NULL;
	for (tries = 0; tries < 200 && got < seq0 + 8; tries++) {
		usleep(50 * 1000);
		got = table_stat(f, "seq_scan", "cost_snapshots");
	}
	assert_int_equal(got, seq0 + 8); /* the 8 unfiltered ones, not the ninth */
	assert_true(table_stat(f, "idx_scan", "cost_snapshots") > idx0);
	free(r);
}

/* The store's backend: its state and its last statement's first words. The
 * newest one: a backend closed just before may still be listed for a moment
 * after its client went (its last statement a COMMIT). */
#define STORE_LAST_QUERY                                                              \
	"SELECT state || '|' || left(query, 10) FROM pg_stat_activity "               \
	"WHERE application_name = 'heliox-ingestd' AND datname = current_database() " \
	"ORDER BY backend_start DESC LIMIT 1"

/*
 * Issue 7: a summary is one round trip - its settings and its query (and,
 * on a connection's first use, their preparations) in one pipeline with
 * one Sync: no BEGIN, no COMMIT. Before, it took four (BEGIN, settings,
 * query, COMMIT), and the backend's last statement was the COMMIT. The
 * settings still hold for the query: a summary that waits for a lock ends
 * at its own statement_timeout.
 */
static void
test_summary_one_round_trip(void **state)
{
	fx               *f = *state;
	hx_summary_query  q = { .group_by = HX_GROUP_NONE };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0;
	uint64_t          t0, rt;
	char              err[512] = "";
	int               g;

	seed_summary(f);
	hx_store_close(f->s); /* a new connection: nothing prepared on it */
	assert_int_equal(hx_store_open(&f->s, f->conninfo), HX_OK);
	for (g = 0; g <= (int) HX_GROUP_PROVIDER_GPU_TYPE; g++) {
		for (int filtered = 0; filtered < 2; filtered++) {
			q.group_by = (hx_group_by) g;
			q.from_date = filtered ? "2026-01-02" : NULL;
			q.provider = filtered ? "gcp" : NULL;
			rt = hx_store_round_trips(f->s);
			assert_int_equal(
			    hx_store_summary(f->s, &q, 5000, &rows, &n, err, sizeof(err)), HX_OK);
			assert_int_equal(hx_store_round_trips(f->s) - rt, 1);
			assert_true(n >= 1);
			free(rows);
		}
	}
	/* The backend's last statement is the summary, not a COMMIT. */
	assert_q(f->q, "idle|SELECT s.p", STORE_LAST_QUERY);

	/* A refused filter: still one round trip, and the store goes on. */
	q.from_date = "2026-02-30";
	rt = hx_store_round_trips(f->s);
	assert_int_equal(hx_store_summary(f->s, &q, 0, &rows, &n, err, sizeof(err)),
	                 HX_INVALID_ARGUMENT);
	assert_int_equal(hx_store_round_trips(f->s) - rt, 1);
	q.from_date = NULL;
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL,
	               "|||6|8001.105001|1333.52|0.50|2500.000001");

	/* A backend killed while idle: the retry on a new connection. */
	terminate_store_backends(f, 1);
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, "aws", NULL,
	               "|||3|4000.60|1333.53|1000.10|2000.20");

	/* statement_timeout holds for the query after it in the pipeline. */
	exec_ok(f->q, "BEGIN");
	exec_ok(f->q, "LOCK TABLE cost_snapshots IN ACCESS EXCLUSIVE MODE");
	t0 = now_us();
	assert_int_equal(hx_store_summary(f->s, &q, 300, &rows, &n, err, sizeof(err)),
	                 HX_DEADLINE_EXCEEDED);
	assert_true(now_us() - t0 < 3000000);
	exec_ok(f->q, "COMMIT");
	assert_summary(f, HX_GROUP_NONE, NULL, NULL, NULL, NULL,
	               "|||6|8001.105001|1333.52|0.50|2500.000001");
	/* Read-only and the timeout ended with the summary's Sync: the same
	 * connection writes, unhurried, right after. */
	{
		hx_record     r = rec("2026-01-04", "aws", "a100", MICROS(1));
		hx_ingest_job j = job_for("after-summary", &r, 1, false, 2);

		assert_counts(ingest_ok(f->s, &j), 1, 0, 0, false);
	}
}

/* ---- v2: gpu_hours, replace windows, summary per GPU-hour -------------------------- */

static hx_replace_window
window(const char *provider, const char *from, const char *to)
{
	hx_replace_window w;

	memset(&w, 0, sizeof(w));
	snprintf(w.provider, sizeof(w.provider), "%s", provider);
	snprintf(w.from_date, sizeof(w.from_date), "%s", from);
	snprintf(w.to_date, sizeof(w.to_date), "%s", to);
	return w;
}

/*
 * "Unchanged" is cost AND gpu_hours (unknown equals only unknown), in every
 * write form: the plain upsert (< 1,000 records), the fast form (arrays),
 * and COPY (>= 10,000).
 */
static void
test_gpu_hours_unchanged_semantics(void **state)
{
	static const size_t sizes[] = { 8, 1200, 10000 };
	fx                 *f = *state;
	size_t              k, i, n;
	char                rid[32], want[64];

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		hx_record       *r;
		hx_ingest_job    j;
		hx_ingest_counts c;

		n = sizes[k];
		exec_ok(f->q, "TRUNCATE cost_snapshots");
		r = make_recs(n, MICROS(10));
		/* even records: hours known (i hours + 0.5); odd: unknown */
		for (i = 0; i < n; i++) {
			r[i].has_gpu_hours = i % 2 == 0;
			r[i].gpu_hours = r[i].has_gpu_hours ? (hx_micros) i * 1000000 + 500000 : 0;
		}
		snprintf(rid, sizeof(rid), "gh-%zu-1", n);
		j = job_for(rid, r, n, false, (uint8_t) (10 + k));
		assert_counts(ingest_ok(f->s, &j), (uint32_t) n, 0, 0, false);
		snprintf(want, sizeof(want), "%zu", n / 2);
		assert_q(f->q, want, "SELECT count(*) FROM cost_snapshots WHERE gpu_hours IS NULL");
		assert_q(f->q, "0.500000",
		         "SELECT gpu_hours::text FROM cost_snapshots WHERE date = '2026-01-01' "
		         "AND provider = 'prov-0' AND gpu_type = 'gpu-0'");

		/* the same again: all unchanged */
		snprintf(rid, sizeof(rid), "gh-%zu-2", n);
		j = job_for(rid, r, n, false, (uint8_t) (20 + k));
		assert_counts(ingest_ok(f->s, &j), 0, 0, (uint32_t) n, false);

		/* record 0: hours changed; 1: unknown -> known; 2: known ->
		 * unknown; 3: cost changed, hours still unknown */
		r[0].gpu_hours += 1;
		r[1].has_gpu_hours = true;
		r[1].gpu_hours = 0;
		r[2].has_gpu_hours = false;
		r[3].cost += 1;
		snprintf(rid, sizeof(rid), "gh-%zu-dry", n);
		j = job_for(rid, r, n, true, (uint8_t) (30 + k));
		c = ingest_ok(f->s, &j);
		assert_counts(c, 0, 4, (uint32_t) n - 4, false);
		snprintf(rid, sizeof(rid), "gh-%zu-3", n);
		j = job_for(rid, r, n, false, (uint8_t) (40 + k));
		assert_counts(ingest_ok(f->s, &j), 0, 4, (uint32_t) n - 4, false);
		assert_q(
		    f->q, "0.500001|0.000000||10.030001",
		    "SELECT string_agg(coalesce(gpu_hours::text, '') || '', '|' ORDER BY gpu_type) "
		    "|| '|' || (SELECT cost_usd::text FROM cost_snapshots WHERE date = "
		    "'2026-01-04' "
		    "AND provider = 'prov-0') FROM (SELECT * FROM cost_snapshots WHERE provider = "
		    "'prov-0' AND date <= '2026-01-03' ORDER BY date) x");
		free(r);
	}
}

static hx_ingest_counts
ingest_windows(fx *f, const char *rid, const hx_record *r, size_t n, const hx_replace_window *w,
               size_t nw, bool dry, uint8_t fp)
{
	hx_ingest_job j = job_for(rid, r, n, dry, fp);

	j.windows = w;
	j.n_windows = nw;
	return ingest_ok(f->s, &j);
}

static void
test_replace_windows(void **state)
{
	fx       *f = *state;
	hx_record seed[] = {
		rec("2024-08-31", "aws", "h100", MICROS(1)), /* before the window */
		rec("2024-09-01", "aws", "h100", MICROS(2)),
		rec("2024-09-01", "aws", "a100", MICROS(3)),
		rec("2024-09-15", "aws", "h100", MICROS(4)),
		rec("2024-09-30", "aws", "h100", MICROS(5)),
		rec("2024-10-01", "aws", "h100", MICROS(6)),    /* after it */
		rec("2024-09-15", "azure", "h100", MICROS(7)),  /* another provider */
		rec("2024-09-15", "aws-eu", "h100", MICROS(8)), /* a name it prefixes */
	};
	hx_record final[] = {
		rec("2024-09-01", "aws", "h100", MICROS(2)),  /* unchanged */
		rec("2024-09-30", "aws", "h100", MICROS(9)),  /* updated */
		rec("2024-09-20", "aws", "h100", MICROS(10)), /* new */
	};
	hx_replace_window w[] = { window("aws", "2024-09-01", "2024-09-30") };
	hx_ingest_job     j = job_for("seed", seed, 8, false, 1);
	hx_ingest_counts  c;
	char             *before, *after;

	ingest_ok(f->s, &j);
	before = q1(f->q, "%s", ALL_ROWS);
	/* dry run: counts, deletes nothing */
	c = ingest_windows(f, "dry", final, 3, w, 1, true, 2);
	assert_counts(c, 1, 1, 1, false);
	assert_int_equal(c.deleted, 2); /* 09-01 a100, 09-15 h100 */
	after = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);
	free(after);

	c = ingest_windows(f, "final", final, 3, w, 1, false, 3);
	assert_counts(c, 1, 1, 1, false);
	assert_int_equal(c.deleted, 2);
	assert_q(
	    f->q,
	    "2024-08-31 aws h100,2024-09-01 aws h100,2024-09-15 aws-eu h100,"
	    "2024-09-15 azure h100,2024-09-20 aws h100,2024-09-30 aws h100,2024-10-01 aws h100",
	    "SELECT string_agg(concat_ws(' ', date, provider, gpu_type), ',' ORDER BY date, "
	    "provider) FROM cost_snapshots");
	assert_q(f->q, "2/3/1/1/1",
	         "SELECT concat_ws('/', deleted, received, inserted, updated, "
	         "unchanged) FROM ingestion_runs WHERE request_id = 'final'");
	assert_q(f->q, "2", "SELECT deleted FROM ingestion_runs WHERE request_id = 'dry'");

	/* a replay deletes nothing more and reports the first run's count */
	after = q1(f->q, "%s", ALL_ROWS);
	c = ingest_windows(f, "final", final, 3, w, 1, false, 3);
	assert_true(c.replayed);
	assert_int_equal(c.deleted, 2);
	free(before);
	before = q1(f->q, "%s", ALL_ROWS);
	assert_string_equal(before, after);

	/* a window and no records: empties it */
	c = ingest_windows(f, "empty", NULL, 0, w, 1, false, 4);
	assert_counts(c, 0, 0, 0, false);
	assert_int_equal(c.deleted, 3);
	assert_q(f->q, "0",
	         "SELECT count(*) FROM cost_snapshots WHERE provider = 'aws' AND "
	         "date BETWEEN '2024-09-01' AND '2024-09-30'");
	assert_q(f->q, "4", "SELECT count(*) FROM cost_snapshots");
	free(before);
	free(after);
}

/* Windows through the COPY form (>= 10,000 records) and the fast form. */
static void
test_replace_windows_large(void **state)
{
	fx               *f = *state;
	hx_record        *r = make_recs(12000, MICROS(10));
	hx_replace_window w[] = { window("prov-0", "2026-01-01", "2026-12-31"),
		                  window("prov-1", "2026-03-01", "2026-03-31") };
	hx_ingest_job     j = job_for("big", r, 12000, false, 1);
	hx_ingest_counts  c;

	ingest_ok(f->s, &j);
	/* prov-0 has 336 days x gpu-0 (i < 336) and 336 x gpu-1 (i in
	 * 16800..; not made: 12000 < 16800), so 336 rows; prov-1 has 28 in
	 * March. Send everything but prov-0's first 10 and prov-1's March. */
	{
		hx_record *keep = calloc(12000, sizeof(*keep));
		size_t     i, n = 0;

		assert_non_null(keep);
		for (i = 0; i < 12000; i++) {
			if ((strcmp(r[i].provider, "prov-0") == 0 && i < 10) ||
			    (strcmp(r[i].provider, "prov-1") == 0 &&
			     strncmp(r[i].date, "2026-03", 7) == 0)) {
				continue;
			}
			keep[n++] = r[i];
		}
		assert_int_equal(n, 12000 - 10 - 28);
		c = ingest_windows(f, "big-dry", keep, n, w, 2, true, 2);
		assert_counts(c, 0, 0, (uint32_t) n, false);
		assert_int_equal(c.deleted, 38);
		c = ingest_windows(f, "big-final", keep, n, w, 2, false, 3);
		assert_counts(c, 0, 0, (uint32_t) n, false);
		assert_int_equal(c.deleted, 38);
		assert_q(f->q, "11962", "SELECT count(*) FROM cost_snapshots");
		/* the fast form (1,000..9,999 records): a slice that ends inside
		 * prov-7, whose window is the whole year, deletes the rest of it */
		{
			hx_replace_window w7 = window("prov-7", "2026-01-01", "2026-12-31");
			size_t            in7 = 0;

			for (i = 326; i < 326 + 2000; i++) {
				in7 += strcmp(keep[i].provider, "prov-7") == 0;
			}
			assert_true(in7 > 0 && in7 < 336);
			c = ingest_windows(f, "mid", keep + 326, 2000, &w7, 1, false, 4);
			assert_counts(c, 0, 0, 2000, false);
			assert_int_equal(c.deleted, 336 - in7);
			assert_int_equal(q_int(f->q,
			                       "SELECT count(*) FROM cost_snapshots WHERE "
			                       "provider = 'prov-7'"),
			                 (long long) in7);
		}
		free(keep);
	}
	free(r);
}

static void
test_summary_gpu_hours(void **state)
{
	fx       *f = *state;
	hx_record r[] = {
		rec("2024-09-01", "aws", "h100", 98320000),
		rec("2024-09-02", "aws", "h100", MICROS(100)),
		rec("2024-09-01", "aws", "a100", MICROS(40)),
		rec("2024-09-01", "gcp", "l4", MICROS(10)),
	};
	hx_ingest_job j;

	r[0].has_gpu_hours = true, r[0].gpu_hours = MICROS(24);
	r[1].has_gpu_hours = true, r[1].gpu_hours = 23500000;
	r[3].has_gpu_hours = true, r[3].gpu_hours = 0;
	j = job_for("sum", r, 4, false, 1);
	ingest_ok(f->s, &j);
	/* all: hours 24 + 23.5 + 0 = 47.5; cost with hours 98.32 + 100 + 10
	 * = 208.32; 208.32 / 47.5 = 4.38568421... -> 4.3857 */
	{
		hx_summary_query  q = { NULL, NULL, NULL, NULL, HX_GROUP_PROVIDER_GPU_TYPE };
		hx_store_sum_row *rows = NULL;
		size_t            n = 0;
		char              err[512] = "";

		assert_int_equal(hx_store_summary(f->s, &q, 5000, &rows, &n, err, sizeof(err)),
		                 HX_OK);
		assert_int_equal(n, 3);
		/* aws|a100: no hours known */
		assert_string_equal(rows[0].gpu_hours, "");
		assert_string_equal(rows[0].usd_per_gpu_hour, "");
		/* aws|h100: 198.32 / 47.5 = 4.17515789... */
		assert_string_equal(rows[1].gpu_hours, "47.50");
		assert_string_equal(rows[1].usd_per_gpu_hour, "4.1752");
		/* gcp|l4: hours sum to 0 */
		assert_string_equal(rows[2].gpu_hours, "0.00");
		assert_string_equal(rows[2].usd_per_gpu_hour, "");
		free(rows);
		q.group_by = HX_GROUP_NONE;
		assert_int_equal(hx_store_summary(f->s, &q, 5000, &rows, &n, err, sizeof(err)),
		                 HX_OK);
		assert_string_equal(rows[0].gpu_hours, "47.50");
		assert_string_equal(rows[0].usd_per_gpu_hour, "4.3857");
		free(rows);
	}
}

/*
 * usd_per_gpu_hour is worked out in C from the two sums; it must equal, for
 * every group, the exact quotient Postgres gives with integer division,
 * div(2c * 10^4 + h, 2h) * 0.0001, over costs and hours with all 6 places
 * used, so that quotients land on and beside the half.
 */
static void
test_summary_quotient_matches_postgres(void **state)
{
	fx               *f = *state;
	hx_summary_query  q = { NULL, NULL, NULL, NULL, HX_GROUP_PROVIDER_GPU_TYPE };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0;
	char              err[512] = "", want[HX_MONEY_TEXT_MAX];
	PGresult         *r;

	exec_ok(f->q,
	        "INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd, gpu_hours) "
	        "SELECT '2024-01-01'::date + i / 400, 'p' || (i % 20), 'g' || (i / 20 % 20), "
	        "(i * 7919 % 99991 + 1) * 0.000037, "
	        "CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 104729 % 8191) * 0.000011 END "
	        "FROM generate_series(0, 3999) i");
	assert_int_equal(hx_store_summary(f->s, &q, 5000, &rows, &n, err, sizeof(err)), HX_OK);
	r = PQexec(f->q,
	           "SELECT coalesce((div(sum(cost_usd) FILTER (WHERE gpu_hours IS NOT NULL) "
	           "* 20000 + sum(gpu_hours), nullif(sum(gpu_hours), 0) * 2) * 0.0001)::text, "
	           "'') FROM cost_snapshots GROUP BY provider, gpu_type "
	           "ORDER BY provider, gpu_type");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_int_equal((size_t) PQntuples(r), n);
	assert_int_equal(n, 400);
	for (size_t i = 0; i < n; i++) {
		const char *pg = PQgetvalue(r, (int) i, 0);

		if (*pg == '\0') {
			want[0] = '\0';
		} else {
			assert_int_equal(hx_money_normalize_text(pg, want, sizeof(want)), 0);
		}
		if (strcmp(rows[i].usd_per_gpu_hour, want) != 0) {
			fail_msg("%s|%s: %s, Postgres %s", rows[i].provider, rows[i].gpu_type,
			         rows[i].usd_per_gpu_hour, pg);
		}
	}
	PQclear(r);
	free(rows);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_concurrent, setup_empty, teardown),
		cmocka_unit_test(test_migrate_waits_then_gives_up),
		cmocka_unit_test_setup_teardown(test_insert_unchanged_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_awkward_names_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_by_request_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_same_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_overlapping_batches, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_timeout_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_batch_and_bad_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_terminated_backend, setup, teardown),
		cmocka_unit_test(test_unreachable_database),
		cmocka_unit_test_setup_teardown(test_audit_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_empty_and_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mid_batch_counts_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_batch_counts_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_batch_awkward_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_table_per_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_request_leaves_input_empty, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_without_temp_privilege, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_under_table_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_new_key_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_new_key_mid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_new_key_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_trusts_recent_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes_never_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_days_skip_key_lookups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_plans_per_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_one_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpu_hours_unchanged_semantics, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_replace_windows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_windows_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_gpu_hours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_quotient_matches_postgres, setup,
		                                teardown),
	};
	const char *db = getenv("HX_TEST_DB");
	int         rc;

	if (db == NULL || db[0] == '\0') {
		fprintf(stderr, "HX_TEST_DB is not set; run through tests/run_with_pg.sh\n");
		return 1;
	}
	admin = PQconnectdb(db);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "HX_TEST_DB: %s", PQerrorMessage(admin));
		PQfinish(admin);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	PQfinish(admin);
	return rc;
}

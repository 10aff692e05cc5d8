/*
 * store_migrate.c - the schema (migrations[]) and what runs before the
 * server takes calls: hx_store_migrate, hx_store_schema_check (for
 * --no-migrate) and hx_store_session_check (connection poolers). Each runs
 * on a connection of its own, through the base layer (store_conn.c).
 */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/errf.h"

/* Serialises migrations of all servers sharing a database: 0x48656c696f780001,
 * "Heliox" then 0x0001. Ingest locks live in the same bigint space but are
 * hashes of request ids; a collision would only make one wait for the other. */
#define MIGRATE_LOCK_KEY "5216694943476088833"

/* ---- migrations ------------------------------------------------------------ */

static const char *const migration_1[] = {
	"CREATE TABLE cost_snapshots ("
	" id bigserial PRIMARY KEY,"
	" date date NOT NULL,"
	" provider text NOT NULL,"
	" gpu_type text NOT NULL,"
	" cost_usd numeric(18,6) NOT NULL CHECK (cost_usd > 0),"
	" created_at timestamptz NOT NULL DEFAULT now(),"
	" updated_at timestamptz NOT NULL DEFAULT now(),"
	" UNIQUE (date, provider, gpu_type))",
	"CREATE INDEX cost_snapshots_date_idx ON cost_snapshots (date)",
	"CREATE TABLE ingestion_runs ("
	" id bigserial PRIMARY KEY,"
	" request_id text NOT NULL,"
	" source text NOT NULL,"
	" fingerprint bytea,"
	" dry_run bool NOT NULL,"
	" replayed bool NOT NULL,"
	" code int NOT NULL,"
	" code_name text NOT NULL,"
	" received int NOT NULL,"
	" inserted int NOT NULL,"
	" updated int NOT NULL,"
	" unchanged int NOT NULL,"
	" failed int NOT NULL,"
	" duration_us bigint NOT NULL,"
	" created_at timestamptz NOT NULL DEFAULT now())",
	/* The idempotency key: one successful real run per request_id. */
	"CREATE UNIQUE INDEX ingestion_runs_idempotency ON ingestion_runs (request_id)"
	" WHERE code = 0 AND NOT dry_run AND NOT replayed",
	"CREATE INDEX ingestion_runs_created_at_idx ON ingestion_runs (created_at)",
	NULL,
};

/*
 * v2: GPU-hours beside each cost, and what ingestion_runs learns of a
 * request (rows its replace windows deleted, where its records came from).
 * Upgrades a v1 database in place: every new column is NULL or has a
 * constant default, so Postgres adds it without rewriting the table, and
 * existing rows read as "GPU-hours unknown", "nothing deleted".
 */
static const char *const migration_2[] = {
	"ALTER TABLE cost_snapshots ADD COLUMN gpu_hours numeric(18,6) NULL"
	" CONSTRAINT cost_snapshots_gpu_hours_check CHECK (gpu_hours >= 0)",
	"ALTER TABLE ingestion_runs"
	" ADD COLUMN deleted int NOT NULL DEFAULT 0,"
	" ADD COLUMN source_format text,"
	" ADD COLUMN source_name text,"
	" ADD COLUMN mapping_version text",
	NULL,
};

/*
 * Who did what, and as part of what (issue 11): the id the user saw (the
 * batches of one CLI import share it), a non-secret name of the key, and
 * the peer. Rows from before have the request id as their base and no key
 * or peer (NULL: unknown).
 */
static const char *const migration_3[] = {
	"ALTER TABLE ingestion_runs ADD COLUMN base_request_id text",
	"ALTER TABLE ingestion_runs ADD COLUMN key_id text",
	"ALTER TABLE ingestion_runs ADD COLUMN peer text",
	"UPDATE ingestion_runs SET base_request_id = request_id",
	"ALTER TABLE ingestion_runs ALTER COLUMN base_request_id SET NOT NULL",
	"CREATE INDEX ingestion_runs_base_request_id_idx ON ingestion_runs (base_request_id)",
	NULL,
};

/*
 * Version 4 (ops): what a DBA reviewing the schema asked for.
 *  - The unique key (date, provider, gpu_type) leads with date and serves
 *    date ranges; the separate date index only cost writes.
 *  - CHECKs that names are stored as the server normalises them, so a
 *    direct SQL writer cannot add "AWS " beside "aws". Normalisation is
 *    ASCII-only (validate.c), so the CHECK uses translate() over A-Z, not
 *    lower(), whose result depends on the database's locale for non-ASCII
 *    letters and would refuse names the server accepts. Trimmed means no
 *    leading or trailing space, tab, CR or LF, as validate.c trims.
 *  - COMMENT ON for what psql's \d+ shows a newcomer.
 */
#define NAME_CHECK(col)                                                   \
	"CHECK (octet_length(" col ") BETWEEN 1 AND 64"                   \
	" AND " col " = btrim(" col ", E' \\t\\r\\n')"                    \
	" AND " col " = translate(" col ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'," \
	" 'abcdefghijklmnopqrstuvwxyz'))"

static const char *const migration_4[] = {
	"DROP INDEX IF EXISTS cost_snapshots_date_idx",
	"ALTER TABLE cost_snapshots ADD CONSTRAINT cost_snapshots_provider_normalised " NAME_CHECK(
	    "provider"),
	"ALTER TABLE cost_snapshots ADD CONSTRAINT cost_snapshots_gpu_type_normalised " NAME_CHECK(
	    "gpu_type"),
	"COMMENT ON TABLE cost_snapshots IS 'Daily GPU cost per provider and GPU type; one row "
	"per (date, provider, gpu_type), written only by heliox-ingestd (upserts)'",
	"COMMENT ON COLUMN cost_snapshots.date IS 'The day the cost was incurred (UTC)'",
	"COMMENT ON COLUMN cost_snapshots.provider IS 'Cloud provider, trimmed and ASCII "
	"lower-cased, 1-64 bytes'",
	"COMMENT ON COLUMN cost_snapshots.gpu_type IS 'GPU model, trimmed and ASCII lower-cased, "
	"1-64 bytes'",
	"COMMENT ON COLUMN cost_snapshots.cost_usd IS 'Cost in US dollars, exact, > 0'",
	"COMMENT ON COLUMN cost_snapshots.created_at IS 'When the row was first ingested'",
	"COMMENT ON COLUMN cost_snapshots.updated_at IS 'When an ingest last changed the row'",
	"COMMENT ON TABLE ingestion_runs IS 'Audit: one row per authenticated ingest call, ok or "
	"not; a successful real run also holds the idempotency key (request_id)'",
	"COMMENT ON COLUMN ingestion_runs.request_id IS 'The request id the caller sent or the "
	"server generated; a retry with it is answered from this row'",
	"COMMENT ON COLUMN ingestion_runs.source IS 'mock, export_json or records'",
	"COMMENT ON COLUMN ingestion_runs.fingerprint IS 'SHA-256 of the request: the same "
	"request_id with another request is refused'",
	"COMMENT ON COLUMN ingestion_runs.dry_run IS 'Nothing was written'",
	"COMMENT ON COLUMN ingestion_runs.replayed IS 'Answered from an earlier run with this "
	"request_id; nothing was written'",
	"COMMENT ON COLUMN ingestion_runs.code IS 'The reply''s status code (0 = OK)'",
	"COMMENT ON COLUMN ingestion_runs.code_name IS 'The reply''s status code by name'",
	"COMMENT ON COLUMN ingestion_runs.received IS 'Records in the request'",
	"COMMENT ON COLUMN ingestion_runs.inserted IS 'Rows inserted'",
	"COMMENT ON COLUMN ingestion_runs.updated IS 'Rows whose cost changed'",
	"COMMENT ON COLUMN ingestion_runs.unchanged IS 'Rows already stored as sent'",
	"COMMENT ON COLUMN ingestion_runs.failed IS 'Records not written (invalid, or all of a "
	"failed request)'",
	"COMMENT ON COLUMN ingestion_runs.duration_us IS 'Server time of the call, microseconds, "
	"as in the reply'",
	"COMMENT ON TABLE schema_migrations IS 'Migrations applied by heliox-ingestd "
	"(--migrate-only or at start)'",
	/* v2's columns (migration 2 runs first) */
	"COMMENT ON COLUMN cost_snapshots.gpu_hours IS 'GPU-hours behind the cost, when the "
	"source said; NULL = unknown'",
	"COMMENT ON COLUMN ingestion_runs.deleted IS 'Rows the request''s replace windows "
	"deleted'",
	"COMMENT ON COLUMN ingestion_runs.source_format IS 'Provenance: the export format the "
	"records were converted from'",
	"COMMENT ON COLUMN ingestion_runs.source_name IS 'Provenance: the export''s file or "
	"folder name'",
	"COMMENT ON COLUMN ingestion_runs.mapping_version IS 'Provenance: version of the "
	"conversion mapping'",
	/* the audit's columns (migration 3 runs first) */
	"COMMENT ON COLUMN ingestion_runs.base_request_id IS 'The id the user saw: the batches "
	"of one CLI import share it'",
	"COMMENT ON COLUMN ingestion_runs.key_id IS 'Which API key made the call: its name from "
	"NAME:KEY, else sha256: and 8 hex digits of its hash; never the key'",
	"COMMENT ON COLUMN ingestion_runs.peer IS 'The caller''s address as nng saw it'",
	NULL,
};

/*
 * Version 5 (issue 7): migration 4's name CHECKs, for a fraction of the
 * price. translate() compares every character of a name with each of the
 * 26 it maps (a memcmp each), and Postgres checks a row's constraints on
 * the insert and again on the update of an upsert: profiled on 28-record
 * ingests that change every row, ExecConstraints was 31% of the backend's
 * CPU, translate() and its memcmp most of it. lower() under the "C"
 * collation folds exactly A-Z, byte by byte (what validate.c does and
 * translate() did), whatever the database's locale, so the check means the
 * same. Replaced in one ALTER TABLE: one scan of the table checks the rows
 * already stored, under the lock the statement takes anyway.
 */
#define NAME_CHECK_5(col)                               \
	"CHECK (octet_length(" col ") BETWEEN 1 AND 64" \
	" AND " col " = btrim(" col ", E' \\t\\r\\n')"  \
	" AND " col " = lower(" col " COLLATE \"C\"))"

static const char *const migration_5[] = {
	"ALTER TABLE cost_snapshots"
	" DROP CONSTRAINT cost_snapshots_provider_normalised,"
	" DROP CONSTRAINT cost_snapshots_gpu_type_normalised,"
	" ADD CONSTRAINT cost_snapshots_provider_normalised " NAME_CHECK_5(
	    "provider") ","
	                " ADD CONSTRAINT cost_snapshots_gpu_type_normalised " NAME_CHECK_5(
	                    "gpu_type"),
	NULL,
};

/*
 * No covering index (issue 7): a covering index for provider-filtered summaries,
 * (provider, gpu_type, date) INCLUDE (cost_usd, gpu_hours), was measured
 * and left out. Measured with bench/run.sh --records 200000 (1M summary
 * rows), the same build with and without it, alternating, two rounds each,
 * on the shared 2-core machine (load average 7-9, so rows/s moved a lot;
 * WAL per row did not):
 *
 *                              without        with
 *   summary, one provider      110-217 ms     20-49 ms  (3-6x faster)
 *   WAL per row, fresh         256-258 B      384 B     (+49%)
 *   WAL per row, changed       405-406 B      502-505 B (+24%)
 *   ingest fresh rows/s        53.6k, 66.2k   40.9k, 40.1k
 *   ingest changed rows/s      30.9k, 37.3k   25.4k, 22.6k
 *   ingest unchanged rows/s    156k, 218k     153k, 171k
 *
 * The gain is real but serves one query shape (a provider, no date range),
 * and the same SQL run bare gains just as much, so the service's ratio to
 * it (the target) does not need the index. Its price falls on
 * every write: a third B-tree per fresh row, and changed costs (cost_usd
 * is in it) rewrite it too - half again the WAL of a fresh row. An
 * operator whose users filter by provider over all time can add the index
 * by hand; the store's statements do not depend on which indexes exist
 * beyond the unique key and the idempotency index (PLANS in
 * store_write.c).
 */
static const struct migration {
	int                version;
	const char        *name;
	const char *const *sql; /* one statement each, NULL-terminated */
} migrations[] = {
	{ 1, "cost_snapshots and ingestion_runs", migration_1 },
	{ 2, "gpu_hours, replace windows and provenance", migration_2 },
	{ 3, "ingestion_runs: base_request_id, key_id, peer", migration_3 },
	{ 4, "drop the date index, normalised-name CHECKs, comments", migration_4 },
	{ 5, "normalised-name CHECKs without translate()", migration_5 },
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

/* ---- connecting at start ------------------------------------------------------ */

static hx_store_retry_fn retry_hook;

void
hx_store_set_retry_hook(hx_store_retry_fn fn)
{
	retry_hook = fn;
}

/*
 * Only a database that is not there yet, or is starting, stopping or full,
 * can heal by waiting. A wrong password, an SSL mismatch, an unknown role
 * or database are retried by nobody: each retry is one more failed login
 * in the server's log (fail2ban counts them). libpq gives no SQLSTATE for a
 * failed connection, hence its (English) messages; anything unknown is
 * treated as permanent, which costs an operator a restart, never a lockout.
 */
static bool
connect_error_heals(const char *msg)
{
	static const char *const heal[] = {
		"Connection refused",
		"No such file or directory", /* the socket file: server not started */
		"the database system is starting up",
		"the database system is shutting down",
		"the database system is in recovery mode",
		"the database system is not yet accepting connections",
		"timeout expired",
		"Connection timed out",
		"Network is unreachable",
		"No route to host",
		"too many clients",
		"remaining connection slots are reserved",
		"server closed the connection unexpectedly",
		"Temporary failure in name resolution",
	};

	for (size_t i = 0; i < sizeof(heal) / sizeof(heal[0]); i++) {
		if (strstr(msg, heal[i]) != NULL) {
			return true;
		}
	}
	return false;
}

/* A conninfo libpq cannot parse will not parse better later. */
static hx_status
conninfo_syntax(const char *conninfo, char *err, size_t errsz)
{
	char             *perr = NULL;
	PQconninfoOption *opts;

	if (conninfo == NULL ||
	    (strchr(conninfo, '=') == NULL && strncmp(conninfo, "postgres://", 11) != 0 &&
	     strncmp(conninfo, "postgresql://", 13) != 0)) {
		return HX_OK; /* empty (environment) or a bare database name */
	}
	opts = PQconninfoParse(conninfo, &perr);
	if (opts == NULL) {
		hx_errf_line(err, errsz, "invalid connection string: %s",
		             perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		return HX_FAILED_PRECONDITION;
	}
	PQconninfoFree(opts);
	return HX_OK;
}

static void
sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Connects, retrying until wait_ms have passed: the database may be starting
 * alongside us. */
static hx_status
migrate_connect(hx_store *s, uint32_t wait_ms, char *err, size_t errsz)
{
	uint64_t  deadline = hx_clock_us() + (uint64_t) wait_ms * 1000u, now, pause_ms = 100;
	unsigned  attempt = 0;
	hx_status st = conninfo_syntax(s->conninfo, err, errsz);

	if (st != HX_OK) {
		return st;
	}
	for (;;) {
		st = hx_store_connect_bare(s, err, errsz);
		if (st != HX_UNAVAILABLE) {
			return st;
		}
		if (!connect_error_heals(err != NULL ? err : "")) {
			return HX_FAILED_PRECONDITION; /* see connect_error_heals */
		}
		now = hx_clock_us();
		if (now >= deadline) {
			return st;
		}
		if (pause_ms * 1000u > deadline - now) {
			pause_ms = (deadline - now) / 1000u + 1;
		}
		if (retry_hook != NULL) {
			retry_hook(err != NULL ? err : "", ++attempt, (unsigned) pause_ms);
		}
		sleep_ms(pause_ms);
		pause_ms = pause_ms * 2 > 2000 ? 2000 : pause_ms * 2;
	}
}

/* The pending migrations, in order, in the caller's transaction. */
static hx_status
migrate_apply(hx_store *s, char *err, size_t errsz)
{
	char        ver[16];
	const char *vals[2];
	hx_status   st;
	PGresult   *applied;
	size_t      m;
	int         i, j;
	bool        have;

	applied = hx_store_sql(s, "SELECT version FROM schema_migrations", 0, NULL, "migrations",
	                       &st, err, errsz);
	for (m = 0; applied != NULL && st == HX_OK && m < N_MIGRATIONS; m++) {
		snprintf(ver, sizeof(ver), "%d", migrations[m].version);
		for (have = false, i = 0; i < PQntuples(applied) && !have; i++) {
			have = strcmp(PQgetvalue(applied, i, 0), ver) == 0;
		}
		for (j = 0; !have && st == HX_OK && migrations[m].sql[j] != NULL; j++) {
			PQclear(hx_store_sql(s, migrations[m].sql[j], 0, NULL, "migration", &st,
			                     err, errsz));
		}
		if (!have && st == HX_OK) {
			vals[0] = ver;
			vals[1] = migrations[m].name;
			PQclear(hx_store_sql(s,
			                     "INSERT INTO schema_migrations (version, name) "
			                     "VALUES ($1::int, $2)",
			                     2, vals, "migration", &st, err, errsz));
		}
	}
	PQclear(applied);
	return st;
}

/*
 * All servers take the same transaction-scoped advisory lock first, so on a
 * fresh database one creates the schema while the others wait, then find
 * every migration recorded and do nothing.
 */
static hx_status
migrate_tx(hx_store *s, char *err, size_t errsz)
{
	const char *key[1] = { MIGRATE_LOCK_KEY };
	hx_status   st;

	st = hx_store_cmd(s, "BEGIN ISOLATION LEVEL READ COMMITTED", "begin", err, errsz);
	if (st == HX_OK) {
		PQclear(hx_store_sql(s, "SELECT pg_advisory_xact_lock($1::bigint)", 1, key,
		                     "migrate lock", &st, err, errsz));
	}
	if (st == HX_OK) {
		st = hx_store_cmd(s,
		                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
		                  " version int PRIMARY KEY,"
		                  " name text NOT NULL,"
		                  " applied_at timestamptz NOT NULL DEFAULT now())",
		                  "schema_migrations", err, errsz);
	}
	if (st == HX_OK) {
		st = migrate_apply(s, err, errsz);
	}
	if (st == HX_OK) {
		st = hx_store_cmd(s, "COMMIT", "commit", err, errsz);
	}
	return st;
}

hx_status
hx_store_migrate(const char *conninfo, uint32_t wait_ms, char *err, size_t errsz)
{
	/* A store of its own, never prepared, for this one transaction. */
	hx_store  s = { .conninfo = (char *) conninfo, .conn = NULL };
	hx_status st;

	st = migrate_connect(&s, wait_ms, err, errsz);
	if (st == HX_OK) {
		st = migrate_tx(&s, err, errsz);
	}
	hx_store_drop(&s); /* closing also rolls back a failed transaction */
	if (st != HX_OK && err != NULL && strstr(err, "statement pooling mode") != NULL) {
		/* PgBouncer in statement mode refuses BEGIN: no waiting fixes that. */
		char orig[256];

		snprintf(orig, sizeof(orig), "%s", err);
		hx_errf_line(err, errsz,
		             "the connection pooler refuses transactions (PgBouncer "
		             "pool_mode=statement); heliox-ingestd needs pool_mode=session: %s",
		             orig);
		st = HX_FAILED_PRECONDITION;
	}
	return st;
}

/* ---- --no-migrate: the schema must be at least this binary's ------------------ */

static hx_status
schema_current(hx_store *s, char *err, size_t errsz)
{
	char      missing[128] = "";
	size_t    used = 0;
	hx_status st;
	PGresult *r;

	r = hx_store_sql(s, "SELECT version FROM schema_migrations", 0, NULL, "schema check", &st,
	                 err, errsz);
	if (r == NULL && st != HX_INTERNAL) {
		return st;
	}
	if (r == NULL) {
		hx_errf_line(err, errsz,
		             "no schema_migrations table: the database has no Heliox "
		             "schema; run heliox-ingestd --migrate-only as the owner role first");
		return HX_FAILED_PRECONDITION;
	}
	for (size_t m = 0; m < N_MIGRATIONS; m++) {
		char ver[16];
		bool have = false;

		snprintf(ver, sizeof(ver), "%d", migrations[m].version);
		for (int i = 0; i < PQntuples(r) && !have; i++) {
			have = strcmp(PQgetvalue(r, i, 0), ver) == 0;
		}
		if (!have && used < sizeof(missing)) {
			int n = snprintf(missing + used, sizeof(missing) - used, "%s%s",
			                 used > 0 ? ", " : "", ver);
			used += n > 0 ? (size_t) n : 0;
		}
	}
	PQclear(r);
	if (used > 0) {
		hx_errf_line(
		    err, errsz,
		    "the database schema is older than this binary (missing "
		    "migration %s); run heliox-ingestd --migrate-only as the owner role first",
		    missing);
		return HX_FAILED_PRECONDITION;
	}
	return HX_OK;
}

hx_status
hx_store_schema_check(const char *conninfo, uint32_t wait_ms, char *err, size_t errsz)
{
	hx_store  s = { .conninfo = (char *) conninfo, .conn = NULL };
	hx_status st = migrate_connect(&s, wait_ms, err, errsz);

	if (st == HX_OK) {
		st = schema_current(&s, err, errsz);
	}
	hx_store_drop(&s);
	return st;
}

/* ---- connection poolers ------------------------------------------------------------ */

static bool
backend_pid(PGconn *c, char *pid, size_t sz)
{
	PGresult *r = PQexec(c, "SELECT pg_backend_pid()");
	bool      ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok) {
		snprintf(pid, sz, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return ok;
}

/*
 * Each connection keeps prepared statements and a temporary table between
 * transactions (store_write.c), so it needs a server session of its own: a
 * pooler in transaction (or statement) mode hands the next transaction to
 * whichever server is free, and the second call fails on a statement that
 * "already exists". Detected thus: A learns its backend pid p between
 * transactions; then up to PROBES other connections each open a
 * transaction (holding a server). Under session pooling (or none) p stays
 * A's, so none of them can get it; under transaction pooling p went back to
 * the pool when A's statement ended, and one of them gets it (PgBouncer
 * hands out its most recently used server first).
 */
#define POOL_PROBES 4

hx_status
hx_store_session_check(const char *conninfo, char *err, size_t errsz)
{
	hx_store  a = { .conninfo = (char *) conninfo, .conn = NULL };
	PGconn   *b[POOL_PROBES] = { NULL };
	char      pa[32], pb[32];
	hx_status st = hx_store_connect_bare(&a, err, errsz);
	int       i;

	if (st != HX_OK) {
		return st;
	}
	if (!backend_pid(a.conn, pa, sizeof(pa))) {
		hx_store_drop(&a);
		return HX_OK; /* cannot tell; the calls will say */
	}
	for (i = 0; i < POOL_PROBES && st == HX_OK; i++) {
		PGresult *r;

		b[i] = hx_store_pg_connect(conninfo);
		if (b[i] == NULL || PQstatus(b[i]) != CONNECTION_OK) {
			break;
		}
		r = PQexec(b[i], "BEGIN");
		PQclear(r);
		if (backend_pid(b[i], pb, sizeof(pb)) && strcmp(pa, pb) == 0) {
			hx_errf_line(
			    err, errsz,
			    "the database connection is pooled per transaction (PgBouncer "
			    "pool_mode=transaction or statement?): backend %s served two "
			    "clients between one client's transactions. heliox-ingestd keeps "
			    "prepared statements and a temporary table per connection and "
			    "needs pool_mode=session",
			    pa);
			st = HX_FAILED_PRECONDITION;
		}
	}
	for (i = 0; i < POOL_PROBES; i++) {
		PQfinish(b[i]);
	}
	hx_store_drop(&a);
	return st;
}

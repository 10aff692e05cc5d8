/*
 * store.c - everything Heliox keeps in PostgreSQL (contract in store.h):
 * connections, errors, Health, the audit row of a failed request, summaries
 * and migrations. The ingest write path is store_write.c.
 *
 * One hx_store wraps one libpq connection. Right after connecting, the
 * write path's input table is created; each statement is prepared on its
 * first use, once per connection. Every call that finds the connection missing or broken
 * reconnects first; a call that loses it answers HX_UNAVAILABLE and the next
 * one reconnects.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heliox/money.h"

#define APP_NAME "heliox-ingestd"

/* Serialises migrations of all servers sharing a database: 0x48656c696f780001,
 * "Heliox" then 0x0001. Ingest locks live in the same bigint space but are
 * hashes of request ids; a collision would only make one wait for the other. */
#define MIGRATE_LOCK_KEY "5216694943476088833"

/* ---- error text ----------------------------------------------------------- */

/* err goes to one log line: libpq's multi-line messages are flattened. */
void
hx_store_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	size_t  i, len;

	if (err == NULL || errsz == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++) {
		if (err[i] == '\n' || err[i] == '\r' || err[i] == '\t') {
			err[i] = ' ';
		}
	}
	len = i;
	while (len > 0 && err[len - 1] == ' ') {
		err[--len] = '\0';
	}
}

uint64_t
hx_store_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- statements ------------------------------------------------------------ */

/* The write path's statements are store_write.c's; these are the rest. */
enum stmt {
	ST_TIMEOUT,
	ST_READ_SETUP,
	ST_RUN,
	ST_SUM_NONE, /* ST_SUM_NONE + hx_group_by, in the enum's order */
	ST_SUM_PROVIDER,
	ST_SUM_GPU_TYPE,
	ST_SUM_DATE,
	ST_SUM_PROVIDER_GPU_TYPE,
	ST_COUNT
};
_Static_assert(ST_SUM_PROVIDER_GPU_TYPE - ST_SUM_NONE == (int) HX_GROUP_PROVIDER_GPU_TYPE,
               "summary statements follow hx_group_by");

/*
 * usd_per_gpu_hour: the cost of the rows whose gpu_hours is known over
 * their GPU-hours, rounded half away from zero to 4 places - exactly.
 * round(c / h, 4) would round twice (numeric division stops at ~16
 * significant digits first, and 0.12344999..., cut there, becomes 0.12345);
 * div() is exact integer division, and both sums are >= 0, so
 * floor((2c * 10^4 + h) / 2h) is c / h * 10^4 rounded half up. NULL
 * (shown empty) when no row has gpu_hours or they sum to 0.
 */
#define USD_PER_GPU_HOUR                                                            \
	"round(div(sum(s.cost_usd) FILTER (WHERE s.gpu_hours IS NOT NULL) * 20000 " \
	"+ sum(s.gpu_hours), nullif(sum(s.gpu_hours), 0) * 2) / 10000, 4)"

/* Shared by the five summaries. A filter is NULL when absent; the texts are
 * fixed, so user input never reaches SQL text. */
#define SUM_COLS                                                                         \
	"count(*), sum(s.cost_usd), round(avg(s.cost_usd), 2), min(s.cost_usd), "        \
	"max(s.cost_usd), sum(s.gpu_hours), " USD_PER_GPU_HOUR " FROM cost_snapshots s " \
	"WHERE ($1::date IS NULL OR s.date >= $1::date) "                                \
	"AND ($2::date IS NULL OR s.date <= $2::date) "                                  \
	"AND ($3::text IS NULL OR s.provider = $3::text) "                               \
	"AND ($4::text IS NULL OR s.gpu_type = $4::text)"

static const struct {
	const char *name;
	const char *sql;
} stmts[ST_COUNT] = {
	[ST_TIMEOUT] = { "hx_timeout", "SELECT set_config('statement_timeout', $1, true)" },
	/*
	 * A read transaction plans every statement for its own arguments. The
	 * summaries' filters are optional ("$3 IS NULL OR provider = $3"),
	 * which a generic plan cannot turn into an index range: once the plan
	 * cache has seen five unfiltered summaries it may settle on a generic
	 * plan and scan the whole table for every filtered one after that.
	 * Planning anew costs tens of microseconds; a wrong plan costs the
	 * table. NULL keeps the server's statement_timeout.
	 */
	[ST_READ_SETUP] = { "hx_read_setup",
	                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
	                    "set_config('statement_timeout', coalesce($1, "
	                    "current_setting('statement_timeout')), true)" },
	[ST_RUN] = { "hx_run",
	             "INSERT INTO ingestion_runs (request_id, source, fingerprint, dry_run, "
	             "replayed, code, code_name, received, inserted, updated, unchanged, failed, "
	             "duration_us, source_format, source_name, mapping_version, base_request_id, "
	             "key_id, peer) VALUES ($1, $2, $3::bytea, $4::bool, $5::bool, $6::int, $7, "
	             "$8::int, $9::int, $10::int, $11::int, $12::int, $13::bigint, nullif($14, "
	             "''), "
	             "nullif($15, ''), nullif($16, ''), $17, $18, $19)" },
	/* Without GROUP BY an aggregate returns its one row even over no rows. */
	[ST_SUM_NONE] = { "hx_sum_none", "SELECT '', '', '', " SUM_COLS },
	[ST_SUM_PROVIDER] = { "hx_sum_provider",
	                      "SELECT '', s.provider, '', " SUM_COLS
	                      " GROUP BY s.provider ORDER BY s.provider" },
	[ST_SUM_GPU_TYPE] = { "hx_sum_gpu_type",
	                      "SELECT '', '', s.gpu_type, " SUM_COLS
	                      " GROUP BY s.gpu_type ORDER BY s.gpu_type" },
	/* to_char, not ::text: the latter follows the server's DateStyle. */
	[ST_SUM_DATE] = { "hx_sum_date",
	                  "SELECT to_char(s.date, 'YYYY-MM-DD'), '', '', " SUM_COLS
	                  " GROUP BY s.date ORDER BY s.date" },
	[ST_SUM_PROVIDER_GPU_TYPE] = { "hx_sum_provider_gpu_type",
	                               "SELECT '', s.provider, s.gpu_type, " SUM_COLS
	                               " GROUP BY s.provider, s.gpu_type "
	                               "ORDER BY s.provider, s.gpu_type" },
};

/* ---- health -------------------------------------------------------------------- */

/*
 * Health asks hx_store_ping on every call; a database round trip each time
 * made Health cost as much as a query (0.41x a bare nng echo). So ping
 * trusts the database for PING_TRUST_US after it last answered on this
 * connection - any statement counts, not only pings - and only then asks
 * again. The price is staleness: a database that dies quietly is reported
 * up for at most PING_TRUST_US more (then the real query fails), i.e.
 * "database lost -> database_ok false" holds within about a second.
 *
 * It is shorter in practice: any store that loses its connection (or fails
 * to make one) bumps loss_epoch, which voids what every store trusts. So
 * once one worker's call has met the outage, every worker's Health reports
 * it on its next call, not a second later. Failures are never cached: while
 * the database is away each ping tries to reconnect, as before.
 */
#define PING_TRUST_US 1000000u

static atomic_uint_fast64_t loss_epoch;

void
hx_store_alive(hx_store *s)
{
	s->alive_us = hx_store_now_us();
	s->alive_epoch = (uint64_t) atomic_load_explicit(&loss_epoch, memory_order_acquire);
}

static bool
store_trusted(const hx_store *s)
{
	return s->conn != NULL && s->alive_us != 0 &&
	    hx_store_now_us() - s->alive_us < PING_TRUST_US &&
	    s->alive_epoch == (uint64_t) atomic_load_explicit(&loss_epoch, memory_order_acquire);
}

/* ---- connection ------------------------------------------------------------ */

/* Our notices come from fixed SQL ("already exists, skipping"); libpq would
 * print them on stderr, outside the log format. */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

/*
 * Our settings come first and the caller's conninfo last (as dbname with
 * expand_dbname), so the caller's own values win. Returns NULL only when out
 * of memory; otherwise check PQstatus().
 */
static PGconn *
pg_connect(const char *conninfo)
{
	const char *keys[5], *vals[5];
	int         i = 0;
	PGconn     *conn;

	keys[i] = "connect_timeout", vals[i++] = "5";
	keys[i] = "application_name", vals[i++] = APP_NAME;
	keys[i] = "client_encoding", vals[i++] = "UTF8"; /* names are UTF-8 */
	if (conninfo != NULL && conninfo[0] != '\0') {
		keys[i] = "dbname", vals[i++] = conninfo;
	}
	keys[i] = NULL, vals[i] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn != NULL) {
		PQsetNoticeProcessor(conn, ignore_notice, NULL);
	}
	return conn;
}

static void
store_drop(hx_store *s)
{
	PQfinish(s->conn); /* NULL-safe */
	s->conn = NULL;
	s->alive_us = 0;
}

/* The connection is gone (or could not be made): nobody's Health should
 * vouch for the database on old news any more. */
static void
store_lost(hx_store *s)
{
	atomic_fetch_add_explicit(&loss_epoch, 1, memory_order_acq_rel);
	store_drop(s);
}

static hx_status
classify(const char *state, bool conn_bad)
{
	if (conn_bad) {
		return HX_UNAVAILABLE;
	}
	if (state == NULL || strlen(state) != 5) {
		return HX_INTERNAL;
	}
	/* 08: connection exceptions; 57P0x: shutdown, crash, starting up;
	 * 25006: a read-only standby, as right after a failover. */
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	    strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
	    strcmp(state, "25006") == 0) {
		return HX_UNAVAILABLE;
	}
	if (strcmp(state, "57014") == 0) { /* query_canceled: statement_timeout */
		return HX_DEADLINE_EXCEEDED;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
		return HX_ABORTED; /* serialization failure, deadlock: retryable */
	}
	return HX_INTERNAL;
}

hx_status
hx_store_fail(hx_store *s, PGresult *r, const char *what, char *err, size_t errsz)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	bool        bad = s->conn == NULL || PQstatus(s->conn) == CONNECTION_BAD;
	hx_status   st = classify(state, bad);

	if (msg == NULL && r != NULL && PQresultStatus(r) != PGRES_FATAL_ERROR) {
		msg = PQresStatus(PQresultStatus(r)); /* e.g. an unexpected COPY */
	}
	if (msg == NULL) {
		msg = s->conn != NULL ? PQerrorMessage(s->conn) : "not connected";
	}
	hx_store_err(err, errsz, "%s: %s%s%s", what, state != NULL ? state : "",
	             state != NULL ? " " : "", msg);
	PQclear(r);
	if (st == HX_UNAVAILABLE) {
		store_lost(s);
	}
	return st;
}

/* Takes ownership of r: returns it when it succeeded, else NULL and *st. */
static PGresult *
pg_check(hx_store *s, PGresult *r, const char *what, hx_status *st, char *err, size_t errsz)
{
	ExecStatusType rs = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
		hx_store_alive(s);
		*st = HX_OK;
		return r;
	}
	*st = hx_store_fail(s, r, what, err, errsz);
	return NULL;
}

/*
 * Prepares a statement on first use on this connection. Not at connect:
 * parsing a statement takes its tables' locks, and a reconnect that waited
 * there (behind a LOCK TABLE, say) would do so outside any call's
 * statement_timeout; here it runs inside the calling transaction, after
 * its timeout is set.
 */
static hx_status
stmt_ready(hx_store *s, enum stmt id, char *err, size_t errsz)
{
	hx_status st;

	if (s->conn == NULL) {
		return hx_store_fail(s, NULL, stmts[id].name, err, errsz);
	}
	if ((s->prepared & (1u << id)) != 0) {
		return HX_OK;
	}
	PQclear(pg_check(s, PQprepare(s->conn, stmts[id].name, stmts[id].sql, 0, NULL),
	                 stmts[id].name, &st, err, errsz));
	if (st == HX_OK) {
		s->prepared |= 1u << id;
	}
	return st;
}

/* Runs a prepared statement; text parameters unless fmts says otherwise. */
static PGresult *
pg_prepared(hx_store *s, enum stmt id, int nparams, const char *const *vals, const int *lens,
            const int *fmts, hx_status *st, char *err, size_t errsz)
{
	*st = stmt_ready(s, id, err, errsz);
	if (*st != HX_OK) {
		return NULL;
	}
	return pg_check(s, PQexecPrepared(s->conn, stmts[id].name, nparams, vals, lens, fmts, 0),
	                stmts[id].name, st, err, errsz);
}

/* Runs fixed SQL text with text parameters (extended protocol throughout). */
static PGresult *
pg_sql(hx_store *s, const char *sql, int nparams, const char *const *vals, const char *what,
       hx_status *st, char *err, size_t errsz)
{
	if (s->conn == NULL) {
		*st = hx_store_fail(s, NULL, what, err, errsz);
		return NULL;
	}
	return pg_check(s, PQexecParams(s->conn, sql, nparams, NULL, vals, NULL, NULL, 0), what, st,
	                err, errsz);
}

static hx_status
pg_cmd(hx_store *s, const char *sql, const char *what, char *err, size_t errsz)
{
	hx_status st;

	PQclear(pg_sql(s, sql, 0, NULL, what, &st, err, errsz));
	return st;
}

void
hx_store_rollback(hx_store *s)
{
	PGresult *r;

	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		store_lost(s);
		return;
	}
	if (PQtransactionStatus(s->conn) == PQTRANS_IDLE) {
		return;
	}
	r = PQexecParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		store_lost(s);
	}
	PQclear(r);
}

/* Connects without preparing anything (migrations run before the tables
 * the statements name exist). */
static hx_status
store_connect_bare(hx_store *s, char *err, size_t errsz)
{
	s->conn = pg_connect(s->conninfo);
	if (s->conn == NULL) {
		hx_store_err(err, errsz, "connect: out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		hx_store_err(err, errsz, "connect: %s", PQerrorMessage(s->conn));
		store_lost(s);
		return HX_UNAVAILABLE;
	}
	return HX_OK;
}

/* A new connection: nothing prepared on it yet (see stmt_ready). */
static hx_status
store_connect(hx_store *s, char *err, size_t errsz)
{
	hx_status st = store_connect_bare(s, err, errsz);

	s->prepared = 0;
	s->wprepared = 0;
	if (st == HX_OK) {
		st = hx_store_write_setup(s, err, errsz);
	}
	if (st != HX_OK) {
		store_drop(s); /* half set up is useless: try again next call */
	}
	return st;
}

hx_status
hx_store_ensure(hx_store *s, bool *fresh, char *err, size_t errsz)
{
	*fresh = false;
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
		hx_store_rollback(s); /* never inherit a transaction an earlier call left open */
	} else if (s->conn != NULL) {
		store_lost(s);
	}
	if (s->conn != NULL) {
		return HX_OK;
	}
	*fresh = true;
	return store_connect(s, err, errsz);
}

/*
 * Runs the first statement of a call, which must have no effect of its own
 * (BEGIN, SELECT 1). A connection the server dropped while we were idle
 * (restart, terminated backend, failover) is only found out here; since
 * nothing has run yet, reconnecting and trying once more is safe and spares
 * the caller an UNAVAILABLE.
 */
static hx_status
exec_first(hx_store *s, const char *sql, const char *what, char *err, size_t errsz)
{
	bool      fresh;
	hx_status st;
	int       attempt;

	for (attempt = 0;; attempt++) {
		st = hx_store_ensure(s, &fresh, err, errsz);
		if (st != HX_OK) {
			return st;
		}
		st = pg_cmd(s, sql, what, err, errsz);
		if (st != HX_UNAVAILABLE || fresh || attempt > 0) {
			return st;
		}
	}
}

/*
 * BEGIN, then statement_timeout for this transaction only (0 leaves the
 * server's). READ COMMITTED is explicit, as in the write path.
 */
static hx_status
tx_begin(hx_store *s, bool read_only, uint32_t timeout_ms, char *err, size_t errsz)
{
	char        ms[16];
	const char *vals[1];
	hx_status   st;

	st = exec_first(s,
	                read_only ? "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
	                          : "BEGIN ISOLATION LEVEL READ COMMITTED",
	                "begin", err, errsz);
	if (st != HX_OK || (timeout_ms == 0 && !read_only)) {
		return st;
	}
	snprintf(ms, sizeof(ms), "%" PRIu32, timeout_ms);
	vals[0] = timeout_ms != 0 ? ms : NULL;
	PQclear(pg_prepared(s, read_only ? ST_READ_SETUP : ST_TIMEOUT, 1, vals, NULL, NULL, &st,
	                    err, errsz));
	return st;
}

hx_status
hx_store_open(hx_store **out, const char *conninfo)
{
	hx_store *s;
	bool      fresh;

	if (out == NULL) {
		return HX_INVALID_ARGUMENT;
	}
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return HX_RESOURCE_EXHAUSTED;
	}
	if (conninfo != NULL && conninfo[0] != '\0') {
		s->conninfo = strdup(conninfo);
		if (s->conninfo == NULL) {
			free(s);
			return HX_RESOURCE_EXHAUSTED;
		}
	}
	/* A database that is down now is the next call's business. */
	(void) hx_store_ensure(s, &fresh, NULL, 0);
	*out = s;
	return HX_OK;
}

void
hx_store_close(hx_store *s)
{
	if (s == NULL) {
		return;
	}
	store_drop(s);
	hx_store_write_free(s);
	free(s->conninfo);
	free(s);
}

/* See "health" above: a round trip only when the database has not answered
 * on this connection for a second, or some store has lost its own since. */
hx_status
hx_store_ping(hx_store *s)
{
	if (s == NULL) {
		return HX_UNAVAILABLE;
	}
	if (store_trusted(s)) {
		return HX_OK;
	}
	return exec_first(s, "SELECT 1", "ping", NULL, 0) == HX_OK ? HX_OK : HX_UNAVAILABLE;
}

hx_status
hx_store_check(hx_store *s, char *err, size_t errsz)
{
	if (s == NULL) {
		return HX_UNAVAILABLE;
	}
	/* Also bounds this session's statements: a database that accepts the
	 * connection but never answers must not hold the watch (or the
	 * shutdown that joins it) for longer than a second. */
	return exec_first(s, "SELECT set_config('statement_timeout', '1000', false)", "check", err,
	                  errsz);
}

/* ---- result cells -------------------------------------------------------- */

static bool
cell_u64(const PGresult *r, int row, int col, uint64_t *out)
{
	const char        *v = PQgetvalue(r, row, col);
	char              *end;
	unsigned long long x;

	if (PQgetisnull(r, row, col) || v[0] < '0' || v[0] > '9') {
		return false;
	}
	x = strtoull(v, &end, 10);
	*out = x;
	return *end == '\0';
}

bool
hx_store_cell_u64(const PGresult *r, int row, int col, uint64_t *out)
{
	return cell_u64(r, row, col, out);
}

bool
hx_store_cell_u32(const PGresult *r, int row, int col, uint32_t *out)
{
	uint64_t x;

	if (!cell_u64(r, row, col, &x) || x > UINT32_MAX) {
		return false;
	}
	*out = (uint32_t) x;
	return true;
}

/* Copies a text cell (NULL as ""); false when it does not fit. */
static bool
cell_text(const PGresult *r, int row, int col, char *dst, size_t dstsz)
{
	int len = PQgetlength(r, row, col);

	if ((size_t) len >= dstsz) {
		return false;
	}
	memcpy(dst, PQgetvalue(r, row, col), (size_t) len);
	dst[len] = '\0';
	return true;
}

/* A numeric cell as money text ("51185.190000" -> "51185.19"); NULL as
 * if_null. */
static bool
cell_money(const PGresult *r, int row, int col, const char *if_null, char *dst)
{
	if (PQgetisnull(r, row, col)) {
		snprintf(dst, HX_MONEY_TEXT_MAX, "%s", if_null);
		return true;
	}
	return hx_money_normalize_text(PQgetvalue(r, row, col), dst, HX_MONEY_TEXT_MAX) == 0;
}

/* ---- the audit row of a failed ingest ---------------------------------------- */

const char *
hx_store_base_id(const hx_ingest_job *job)
{
	return job->base_request_id != NULL && job->base_request_id[0] != '\0'
	    ? job->base_request_id
	    : job->request_id;
}

bool
hx_store_fingerprint_set(const hx_ingest_job *job)
{
	size_t i;

	for (i = 0; i < sizeof(job->fingerprint); i++) {
		if (job->fingerprint[i] != 0) {
			return true;
		}
	}
	return false;
}

static hx_status
write_run(hx_store *s, const hx_ingest_job *job, hx_status code, const hx_ingest_counts *c,
          char *err, size_t errsz)
{
	char        num[6][24], dur[24];
	const char *vals[19];
	int         lens[19] = { 0 }, fmts[19] = { 0 };
	uint64_t    now = hx_store_now_us();
	hx_status   st;

	snprintf(num[0], sizeof(num[0]), "%d", (int) code);
	snprintf(num[1], sizeof(num[1]), "%" PRIu32, c->received);
	snprintf(num[2], sizeof(num[2]), "%" PRIu32, c->inserted);
	snprintf(num[3], sizeof(num[3]), "%" PRIu32, c->updated);
	snprintf(num[4], sizeof(num[4]), "%" PRIu32, c->unchanged);
	snprintf(num[5], sizeof(num[5]), "%" PRIu32, c->failed);
	snprintf(dur, sizeof(dur), "%" PRIu64,
	         job->duration_us != 0 ? job->duration_us
	                               : (now > job->started_us ? now - job->started_us : 0));
	vals[0] = job->request_id != NULL ? job->request_id : "";
	vals[1] = job->source != NULL ? job->source : "";
	vals[2] = hx_store_fingerprint_set(job) ? (const char *) job->fingerprint : NULL;
	lens[2] = (int) sizeof(job->fingerprint);
	fmts[2] = 1; /* binary: the raw 32 bytes */
	vals[3] = job->dry_run ? "t" : "f";
	vals[4] = c->replayed ? "t" : "f";
	vals[5] = num[0];
	vals[6] = hx_status_name(code);
	vals[7] = num[1];
	vals[8] = num[2];
	vals[9] = num[3];
	vals[10] = num[4];
	vals[11] = num[5];
	vals[12] = dur;
	vals[13] = job->prov != NULL ? job->prov->format : "";
	vals[14] = job->prov != NULL ? job->prov->name : "";
	vals[15] = job->prov != NULL ? job->prov->mapping_version : "";
	vals[16] = hx_store_base_id(job);
	vals[17] = job->key_id;
	vals[18] = job->peer;
	PQclear(pg_prepared(s, ST_RUN, 19, vals, lens, fmts, &st, err, errsz));
	return st;
}

hx_status
hx_store_audit_failure(hx_store *s, const hx_ingest_job *job, hx_status code, char *err,
                       size_t errsz)
{
	hx_ingest_counts c = { 0 };
	hx_status        st;
	bool             fresh;

	if (s == NULL || job == NULL || code == HX_OK) {
		/* A code-0 row would count as a successful run for replays. */
		hx_store_err(err, errsz, "audit: bad arguments");
		return HX_INVALID_ARGUMENT;
	}
	c.received = job->received;
	c.failed = job->failed;
	st = hx_store_ensure(s, &fresh, err, errsz);
	if (st == HX_OK) {
		/* A single INSERT is its own transaction. */
		st = write_run(s, job, code, &c, err, errsz);
	}
	return st;
}

/* ---- summary --------------------------------------------------------------- */

/* Filters are compared like ingested names: trimmed, ASCII lower-cased.
 * Returns NULL (no filter) for NULL or blank text. */
static const char *
norm_filter(const char *in, char *buf, size_t bufsz, bool lower)
{
	size_t len, i;

	if (in == NULL) {
		return NULL;
	}
	while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n') {
		in++;
	}
	len = strlen(in);
	while (len > 0 &&
	       (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '\r' ||
	        in[len - 1] == '\n')) {
		len--;
	}
	if (len == 0) {
		return NULL;
	}
	if (len >= bufsz) {
		len = bufsz - 1; /* longer than any stored name: still matches none */
	}
	memcpy(buf, in, len);
	for (i = 0; lower && i < len; i++) {
		if (buf[i] >= 'A' && buf[i] <= 'Z') {
			buf[i] = (char) (buf[i] - 'A' + 'a');
		}
	}
	buf[len] = '\0';
	return buf;
}

static hx_status
summary_rows(const PGresult *r, hx_summary_row **rows, size_t *n, char *err, size_t errsz)
{
	int             nt = PQntuples(r), i;
	hx_summary_row *out = calloc(nt > 0 ? (size_t) nt : 1, sizeof(*out));

	if (out == NULL) {
		hx_store_err(err, errsz, "summary: out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	for (i = 0; i < nt; i++) {
		hx_summary_row *row = &out[i];

		if (!cell_text(r, i, 0, row->date, sizeof(row->date)) ||
		    !cell_text(r, i, 1, row->provider, sizeof(row->provider)) ||
		    !cell_text(r, i, 2, row->gpu_type, sizeof(row->gpu_type)) ||
		    !cell_u64(r, i, 3, &row->records) ||
		    !cell_money(r, i, 4, "0.00", row->total_usd) ||
		    !cell_money(r, i, 5, "", row->avg_usd) ||
		    !cell_money(r, i, 6, "", row->min_usd) ||
		    !cell_money(r, i, 7, "", row->max_usd) ||
		    !cell_money(r, i, 8, "", row->gpu_hours) ||
		    !cell_money(r, i, 9, "", row->usd_per_gpu_hour)) {
			free(out);
			hx_store_err(err, errsz, "summary: malformed row %d", i);
			return HX_INTERNAL;
		}
	}
	*rows = out;
	*n = (size_t) nt;
	return HX_OK;
}

/* A filter the database cannot read as a date is the caller's mistake. */
static bool
is_data_error(const PGresult *r)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return state != NULL && strncmp(state, "22", 2) == 0;
}

static hx_status
summary_query(hx_store *s, const hx_summary_query *q, hx_summary_row **rows, size_t *n, char *err,
              size_t errsz)
{
	char        from[HX_DATE_LEN + 8], to[HX_DATE_LEN + 8];
	char        prov[HX_NAME_MAX + 2], gpu[HX_NAME_MAX + 2];
	const char *vals[4];
	enum stmt   id = (enum stmt)(ST_SUM_NONE + (int) q->group_by);
	PGresult   *r;
	hx_status   st;

	vals[0] = norm_filter(q->from_date, from, sizeof(from), false);
	vals[1] = norm_filter(q->to_date, to, sizeof(to), false);
	vals[2] = norm_filter(q->provider, prov, sizeof(prov), true);
	vals[3] = norm_filter(q->gpu_type, gpu, sizeof(gpu), true);
	st = stmt_ready(s, id, err, errsz);
	if (st != HX_OK) {
		return st;
	}
	r = PQexecPrepared(s->conn, stmts[id].name, 4, vals, NULL, NULL, 0);
	if (r != NULL && PQresultStatus(r) == PGRES_FATAL_ERROR && is_data_error(r)) {
		hx_store_err(err, errsz, "summary: %s",
		             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		PQclear(r);
		return HX_INVALID_ARGUMENT;
	}
	r = pg_check(s, r, stmts[id].name, &st, err, errsz);
	if (r == NULL) {
		return st;
	}
	st = summary_rows(r, rows, n, err, errsz);
	PQclear(r);
	return st;
}

hx_status
hx_store_summary(hx_store *s, const hx_summary_query *q, uint32_t timeout_ms, hx_summary_row **rows,
                 size_t *n, char *err, size_t errsz)
{
	hx_status st;

	if (rows != NULL) {
		*rows = NULL;
	}
	if (n != NULL) {
		*n = 0;
	}
	if (s == NULL || q == NULL || rows == NULL || n == NULL ||
	    (unsigned) q->group_by > (unsigned) HX_GROUP_PROVIDER_GPU_TYPE) {
		hx_store_err(err, errsz, "summary: bad arguments");
		return HX_INVALID_ARGUMENT;
	}
	/* A transaction only to scope statement_timeout to this query. */
	st = tx_begin(s, true, timeout_ms, err, errsz);
	if (st == HX_OK) {
		st = summary_query(s, q, rows, n, err, errsz);
	}
	if (st == HX_OK) {
		st = pg_cmd(s, "COMMIT", "commit", err, errsz);
	}
	if (st != HX_OK) {
		hx_store_rollback(s);
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return st;
}

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

static const struct migration {
	int                version;
	const char        *name;
	const char *const *sql; /* one statement each, NULL-terminated */
} migrations[] = {
	{ 1, "cost_snapshots and ingestion_runs", migration_1 },
	{ 2, "gpu_hours, replace windows and provenance", migration_2 },
	{ 3, "ingestion_runs: base_request_id, key_id, peer", migration_3 },
	{ 4, "drop the date index, normalised-name CHECKs, comments", migration_4 },
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
		hx_store_err(err, errsz, "invalid connection string: %s",
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
	uint64_t  deadline = hx_store_now_us() + (uint64_t) wait_ms * 1000u, now, pause_ms = 100;
	unsigned  attempt = 0;
	hx_status st = conninfo_syntax(s->conninfo, err, errsz);

	if (st != HX_OK) {
		return st;
	}
	for (;;) {
		st = store_connect_bare(s, err, errsz);
		if (st != HX_UNAVAILABLE) {
			return st;
		}
		if (!connect_error_heals(err != NULL ? err : "")) {
			return HX_FAILED_PRECONDITION; /* see connect_error_heals */
		}
		now = hx_store_now_us();
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

	applied = pg_sql(s, "SELECT version FROM schema_migrations", 0, NULL, "migrations", &st,
	                 err, errsz);
	for (m = 0; applied != NULL && st == HX_OK && m < N_MIGRATIONS; m++) {
		snprintf(ver, sizeof(ver), "%d", migrations[m].version);
		for (have = false, i = 0; i < PQntuples(applied) && !have; i++) {
			have = strcmp(PQgetvalue(applied, i, 0), ver) == 0;
		}
		for (j = 0; !have && st == HX_OK && migrations[m].sql[j] != NULL; j++) {
			PQclear(
			    pg_sql(s, migrations[m].sql[j], 0, NULL, "migration", &st, err, errsz));
		}
		if (!have && st == HX_OK) {
			vals[0] = ver;
			vals[1] = migrations[m].name;
			PQclear(pg_sql(s,
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

	st = pg_cmd(s, "BEGIN ISOLATION LEVEL READ COMMITTED", "begin", err, errsz);
	if (st == HX_OK) {
		PQclear(pg_sql(s, "SELECT pg_advisory_xact_lock($1::bigint)", 1, key,
		               "migrate lock", &st, err, errsz));
	}
	if (st == HX_OK) {
		st = pg_cmd(s,
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
		st = pg_cmd(s, "COMMIT", "commit", err, errsz);
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
	store_drop(&s); /* closing also rolls back a failed transaction */
	if (st != HX_OK && err != NULL && strstr(err, "statement pooling mode") != NULL) {
		/* PgBouncer in statement mode refuses BEGIN: no waiting fixes that. */
		char orig[256];

		snprintf(orig, sizeof(orig), "%s", err);
		hx_store_err(err, errsz,
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

	r = pg_sql(s, "SELECT version FROM schema_migrations", 0, NULL, "schema check", &st, err,
	           errsz);
	if (r == NULL && st != HX_INTERNAL) {
		return st;
	}
	if (r == NULL) {
		hx_store_err(err, errsz,
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
		hx_store_err(
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
	store_drop(&s);
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
	hx_status st = store_connect_bare(&a, err, errsz);
	int       i;

	if (st != HX_OK) {
		return st;
	}
	if (!backend_pid(a.conn, pa, sizeof(pa))) {
		store_drop(&a);
		return HX_OK; /* cannot tell; the calls will say */
	}
	for (i = 0; i < POOL_PROBES && st == HX_OK; i++) {
		PGresult *r;

		b[i] = pg_connect(conninfo);
		if (b[i] == NULL || PQstatus(b[i]) != CONNECTION_OK) {
			break;
		}
		r = PQexec(b[i], "BEGIN");
		PQclear(r);
		if (backend_pid(b[i], pb, sizeof(pb)) && strcmp(pa, pb) == 0) {
			hx_store_err(
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
	store_drop(&a);
	return st;
}

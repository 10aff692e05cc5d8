/*
 * store_conn.c - the store's base layer (store_internal.h): one libpq
 * connection per hx_store, errors as hx_status values, statements prepared
 * on first use, pipelines, and the scratch buffers the write path borrows.
 * store_read.c, store_write.c and store_migrate.c sit on it; it calls none
 * of them.
 *
 * Right after connecting, the session's COPY target is created; each
 * statement is prepared on its first use, once per connection. Every call
 * that finds the connection missing or broken reconnects first; a call
 * that loses it answers HX_UNAVAILABLE and the next one reconnects.
 */
#include "store_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errf.h"

#define APP_NAME "heliox-ingestd"

/* COPY data goes out in messages of this size. */
#define COPY_CHUNK ((size_t) 64 << 10)

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
	s->alive_us = hx_clock_us();
	s->alive_epoch = (uint64_t) atomic_load_explicit(&loss_epoch, memory_order_acquire);
}

bool
hx_store_trusted(const hx_store *s)
{
	return s->conn != NULL && s->alive_us != 0 && hx_clock_us() - s->alive_us < PING_TRUST_US &&
	    s->alive_epoch == (uint64_t) atomic_load_explicit(&loss_epoch, memory_order_acquire);
}

uint64_t
hx_store_round_trips(const hx_store *s)
{
	return s != NULL ? s->round_trips : 0;
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
PGconn *
hx_store_pg_connect(const char *conninfo)
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

void
hx_store_drop(hx_store *s)
{
	PQfinish(s->conn); /* NULL-safe */
	s->conn = NULL;
	s->alive_us = 0;
	s->n_prepared = 0;
	s->has_input = false;
}

/* The connection is gone (or could not be made): nobody's Health should
 * vouch for the database on old news any more. */
static void
store_lost(hx_store *s)
{
	atomic_fetch_add_explicit(&loss_epoch, 1, memory_order_acq_rel);
	hx_store_drop(s);
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
	hx_errf_line(err, errsz, "%s: %s%s%s", what, state != NULL ? state : "",
	             state != NULL ? " " : "", msg);
	PQclear(r);
	if (st == HX_UNAVAILABLE) {
		store_lost(s);
	}
	return st;
}

/* Takes ownership of r: returns it when it succeeded, else NULL and *st. */
static PGresult *
result_ok(hx_store *s, PGresult *r, const char *what, hx_status *st, char *err, size_t errsz)
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

/* ---- statements ------------------------------------------------------------ */

static bool
stmt_prepared(const hx_store *s, const hx_store_stmt *stmt)
{
	for (size_t i = 0; i < s->n_prepared; i++) {
		if (s->prepared[i] == stmt) {
			return true;
		}
	}
	return false;
}

/* A registry that is full forgets nothing already in it; the statement is
 * then prepared again next time, which fails ("already exists") - loudly,
 * in the first test that runs it, which is the point of HX_STORE_MAX_STMTS
 * being a hard limit. */
static void
stmt_mark(hx_store *s, const hx_store_stmt *stmt)
{
	if (!stmt_prepared(s, stmt) && s->n_prepared < HX_STORE_MAX_STMTS) {
		s->prepared[s->n_prepared++] = stmt;
	}
}

/*
 * Prepares a statement on first use on this connection. Not at connect:
 * parsing a statement takes its tables' locks, and a reconnect that waited
 * there (behind a LOCK TABLE, say) would do so outside any call's
 * statement_timeout; here it runs inside the calling transaction, after
 * its timeout is set.
 */
static hx_status
stmt_ready(hx_store *s, const hx_store_stmt *stmt, char *err, size_t errsz)
{
	hx_status st;

	if (s->conn == NULL) {
		return hx_store_fail(s, NULL, stmt->name, err, errsz);
	}
	if (stmt_prepared(s, stmt)) {
		return HX_OK;
	}
	s->round_trips++;
	PQclear(result_ok(s, PQprepare(s->conn, stmt->name, stmt->sql, 0, NULL), stmt->name, &st,
	                  err, errsz));
	if (st == HX_OK) {
		stmt_mark(s, stmt);
	}
	return st;
}

PGresult *
hx_store_exec(hx_store *s, const hx_store_stmt *stmt, int nparams, const char *const *vals,
              const int *lens, const int *fmts, hx_status *st, char *err, size_t errsz)
{
	*st = stmt_ready(s, stmt, err, errsz);
	if (*st != HX_OK) {
		return NULL;
	}
	s->round_trips++;
	return result_ok(s, PQexecPrepared(s->conn, stmt->name, nparams, vals, lens, fmts, 0),
	                 stmt->name, st, err, errsz);
}

PGresult *
hx_store_sql(hx_store *s, const char *sql, int nparams, const char *const *vals, const char *what,
             hx_status *st, char *err, size_t errsz)
{
	if (s->conn == NULL) {
		*st = hx_store_fail(s, NULL, what, err, errsz);
		return NULL;
	}
	s->round_trips++;
	return result_ok(s, PQexecParams(s->conn, sql, nparams, NULL, vals, NULL, NULL, 0), what,
	                 st, err, errsz);
}

hx_status
hx_store_cmd(hx_store *s, const char *sql, const char *what, char *err, size_t errsz)
{
	hx_status st;

	PQclear(hx_store_sql(s, sql, 0, NULL, what, &st, err, errsz));
	return st;
}

hx_status
hx_store_copy_in(hx_store *s, const char *copy_sql, const uint8_t *data, size_t len, char *err,
                 size_t errsz)
{
	PGresult *r;
	size_t    off, n;
	bool      ok;

	s->round_trips += 2;
	r = PQexec(s->conn, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		return hx_store_fail(s, r, "copy", err, errsz);
	}
	PQclear(r);
	for (ok = true, off = 0; ok && off < len; off += n) {
		n = len - off < COPY_CHUNK ? len - off : COPY_CHUNK;
		ok = PQputCopyData(s->conn, (const char *) data + off, (int) n) == 1;
	}
	if (PQputCopyEnd(s->conn, ok ? NULL : "send failed") != 1) {
		return hx_store_fail(s, NULL, "copy", err, errsz);
	}
	r = PQgetResult(s->conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		hx_status st = hx_store_fail(s, r, "copy", err, errsz);

		while (s->conn != NULL && (r = PQgetResult(s->conn)) != NULL) {
			PQclear(r);
		}
		return st;
	}
	PQclear(r);
	while ((r = PQgetResult(s->conn)) != NULL) {
		PQclear(r);
	}
	return HX_OK;
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
	s->round_trips++;
	r = PQexecParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		store_lost(s);
	}
	PQclear(r);
}

/* ---- the session ------------------------------------------------------------ */

/* The write path's COPY target (COPY pg_temp.hx_input in store_write.c),
 * once per session. ON COMMIT DELETE ROWS empties it at every commit; rows
 * of a request that failed are dead with their transaction, so the next
 * request never sees them either. A temporary table writes no WAL. It is
 * made with the connection, not on first use, because it is part of what
 * a session is (hx_store_session_check) and takes no lock another session
 * could hold. */
#define CREATE_INPUT                                                               \
	"CREATE TEMP TABLE hx_input (date date NOT NULL, provider text NOT NULL, " \
	"gpu_type text NOT NULL, cost_usd numeric NOT NULL, gpu_hours numeric) "   \
	"ON COMMIT DELETE ROWS"

/*
 * A database that refuses the temporary table (a role without TEMPORARY, a
 * read-only standby) still gets a working store: every batch then goes as
 * arrays, and reads and Health work as before. Only a lost connection
 * fails the setup.
 */
static hx_status
session_setup(hx_store *s, char *err, size_t errsz)
{
	PGresult *r;

	s->round_trips++;
	r = PQexec(s->conn, CREATE_INPUT);
	s->has_input = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		return hx_store_fail(s, NULL, "create hx_input", err, errsz);
	}
	hx_store_alive(s);
	return HX_OK;
}

hx_status
hx_store_connect_bare(hx_store *s, char *err, size_t errsz)
{
	s->n_prepared = 0;
	s->has_input = false;
	s->conn = hx_store_pg_connect(s->conninfo);
	if (s->conn == NULL) {
		hx_errf_line(err, errsz, "connect: out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		hx_errf_line(err, errsz, "connect: %s", PQerrorMessage(s->conn));
		store_lost(s);
		return HX_UNAVAILABLE;
	}
	return HX_OK;
}

/* A new connection: nothing prepared on it yet (see stmt_ready). */
static hx_status
store_connect(hx_store *s, char *err, size_t errsz)
{
	hx_status st = hx_store_connect_bare(s, err, errsz);

	if (st == HX_OK) {
		st = session_setup(s, err, errsz);
	}
	if (st != HX_OK) {
		hx_store_drop(s); /* half set up is useless: try again next call */
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
 * A connection the server dropped while we were idle (restart, terminated
 * backend, failover) is only found out by the first statement; since it has
 * no effect, reconnecting and trying once more is safe and spares the
 * caller an UNAVAILABLE.
 */
hx_status
hx_store_exec_first(hx_store *s, const char *sql, const char *what, char *err, size_t errsz)
{
	bool      fresh;
	hx_status st;
	int       attempt;

	for (attempt = 0;; attempt++) {
		st = hx_store_ensure(s, &fresh, err, errsz);
		if (st != HX_OK) {
			return st;
		}
		st = hx_store_cmd(s, sql, what, err, errsz);
		if (st != HX_UNAVAILABLE || fresh || attempt > 0) {
			return st;
		}
	}
}

/* ---- the store itself ------------------------------------------------------ */

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
	hx_store_scratch *w;

	if (s == NULL) {
		return;
	}
	hx_store_drop(s);
	w = &s->scratch;
	for (int k = 0; k < HX_STORE_NCOL; k++) {
		hx_store_buf_free(&w->col[k]);
	}
	for (int k = 0; k < HX_STORE_NWCOL; k++) {
		hx_store_buf_free(&w->wcol[k]);
	}
	hx_store_buf_free(&w->copy);
	free(w->order);
	free(s->conninfo);
	free(s);
}

/* ---- result cells -------------------------------------------------------- */

bool
hx_store_cell_u64(const PGresult *r, int row, int col, uint64_t *out)
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
hx_store_cell_u32(const PGresult *r, int row, int col, uint32_t *out)
{
	uint64_t x;

	if (!hx_store_cell_u64(r, row, col, &x) || x > UINT32_MAX) {
		return false;
	}
	*out = (uint32_t) x;
	return true;
}

/* ---- pipelines ------------------------------------------------------------------ */

void
hx_store_pl_init(hx_store_pl *pl)
{
	memset(pl, 0, sizeof(*pl));
	pl->keep_at = pl->bad_at = -1;
}

void
hx_store_pl_sql(hx_store_pl *pl, const char *sql)
{
	pl->q[pl->n++] = (hx_store_msg){ .sql = sql };
}

/* Statements are prepared on first use inside the caller's transaction,
 * after its statement_timeout (see stmt_ready). */
int
hx_store_pl_stmt(hx_store_pl *pl, const hx_store *s, const hx_store_stmt *stmt, int nparams,
                 const char *const *vals, const int *lens, const int *fmts)
{
	if (!stmt_prepared(s, stmt)) {
		pl->q[pl->n++] = (hx_store_msg){ .stmt = stmt, .parse = true };
	}
	pl->q[pl->n] = (hx_store_msg){
		.stmt = stmt, .nparams = nparams, .vals = vals, .lens = lens, .fmts = fmts
	};
	return pl->n++;
}

static const char *
msg_name(const hx_store_msg *q)
{
	return q->stmt != NULL ? q->stmt->name : q->sql;
}

static bool
msg_send(PGconn *c, const hx_store_msg *q)
{
	if (q->stmt == NULL) {
		return PQsendQueryParams(c, q->sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
	}
	if (q->parse) {
		return PQsendPrepare(c, q->stmt->name, q->stmt->sql, 0, NULL) == 1;
	}
	return PQsendQueryPrepared(c, q->stmt->name, q->nparams, q->vals, q->lens, q->fmts, 0) == 1;
}

/* Reads the results of message i: notes a preparation that took, keeps the
 * wanted result and the first failure, clears the rest. False when the
 * connection broke or the pipeline went out of step. */
static bool
read_one(hx_store *s, hx_store_pl *pl, int i)
{
	PGresult      *r = PQgetResult(s->conn);
	ExecStatusType rs;

	if (r == NULL) {
		return false;
	}
	rs = PQresultStatus(r);
	if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
		if (pl->q[i].parse) {
			stmt_mark(s, pl->q[i].stmt);
		}
		if (i == pl->keep_at) {
			pl->keep = r;
			r = NULL;
		}
	} else if (pl->bad == NULL) {
		pl->bad = r;
		pl->bad_at = i;
		r = NULL;
	}
	PQclear(r); /* after the first error: PIPELINE_ABORTED, skipped */
	while ((r = PQgetResult(s->conn)) != NULL) { /* NULL ends each message's */
		PQclear(r);
	}
	return PQstatus(s->conn) == CONNECTION_OK;
}

/* Sends every message and one Sync; false when the connection broke.
 * *sent counts what went. */
static bool
send_all(PGconn *c, const hx_store_pl *pl, int *sent)
{
	bool ok = c != NULL && PQenterPipelineMode(c) == 1;

	for (*sent = 0; ok && *sent < pl->n; ++*sent) {
		ok = msg_send(c, &pl->q[*sent]);
	}
	return ok && PQpipelineSync(c) == 1;
}

/* Reads every result, then the Sync's, and leaves pipeline mode. *read
 * counts the messages whose results came. */
static bool
read_all(hx_store *s, hx_store_pl *pl, int *read)
{
	PGresult *r;
	bool      ok = true;

	for (*read = 0; ok && *read < pl->n; ++*read) {
		ok = read_one(s, pl, *read);
	}
	if (ok) {
		r = PQgetResult(s->conn);
		ok = r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
	}
	return ok && PQexitPipelineMode(s->conn) == 1;
}

hx_status
hx_store_pl_run(hx_store *s, hx_store_pl *pl, int *failed_at, char *err, size_t errsz)
{
	int         sent = 0, read = 0, at;
	bool        ok;
	const char *state;
	hx_status   st;

	s->round_trips++;
	ok = send_all(s->conn, pl, &sent) && read_all(s, pl, &read);
	*failed_at = pl->bad != NULL ? pl->bad_at : !ok ? (sent < pl->n ? sent : read) : -1;
	if (*failed_at < 0) {
		hx_store_alive(s);
		return HX_OK;
	}
	PQclear(pl->keep);
	pl->keep = NULL;
	if (!ok && s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
		/* Out of step with the server: only a new connection is safe. */
		hx_store_drop(s);
	}
	state = pl->bad != NULL ? PQresultErrorField(pl->bad, PG_DIAG_SQLSTATE) : NULL;
	snprintf(pl->state, sizeof(pl->state), "%s", state != NULL ? state : "");
	at = *failed_at < pl->n ? *failed_at : pl->n - 1;
	st = hx_store_fail(s, pl->bad, msg_name(&pl->q[at]), err, errsz);
	pl->bad = NULL;
	return st;
}

/* ---- scratch buffers ----------------------------------------------------------- */

void
hx_store_buf_free(hx_store_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

bool
hx_store_buf_reset(hx_store_buf *b, size_t need)
{
	uint8_t *p;

	b->len = 0;
	if (need > INT32_MAX) {
		return false;
	}
	if (b->cap >= need) {
		return true;
	}
	p = realloc(b->p, need);
	if (p == NULL) {
		return false;
	}
	b->p = p;
	b->cap = need;
	return true;
}

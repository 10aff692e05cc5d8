/*
 * store_internal.h - the store's base layer (store_conn.c), the one thing
 * the files above it share. Private to hx_store.
 *
 * Calls go down only:
 *
 *   store_read.c     summaries, Health           \
 *   store_write.c    ingests, the audit row        > each calls only the base
 *   store_migrate.c  migrations, start-up checks  /
 *   store_conn.c     libpq: connections, errors, statements, pipelines
 *
 * Nothing here knows a statement of the files above; they hand it theirs
 * (hx_store_stmt) and the base prepares each on first use per connection.
 */
#ifndef HELIOX_STORE_INTERNAL_H
#define HELIOX_STORE_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A statement prepared by name on first use, once per connection. */
typedef struct hx_store_stmt {
	const char *name;
	const char *sql;
} hx_store_stmt;

/* Statements of all the upper files together, at most (the write path has
 * 14, reads 6, the audit row 1). */
enum { HX_STORE_MAX_STMTS = 32 };

/* A growable byte buffer, kept by the store between requests so that a
 * steady stream of ingests does not go back to malloc for each one. */
typedef struct hx_store_buf {
	uint8_t *p;
	size_t   len, cap;
} hx_store_buf;

enum { HX_STORE_NCOL = 5 };  /* date, provider, gpu_type, cost_usd, gpu_hours */
enum { HX_STORE_NWCOL = 3 }; /* a replace window's provider, from_date, to_date */

/* One record of the batch, as the write path orders them. */
typedef const hx_record *hx_store_rec;

/* The write path's scratch space; the base only frees it with the store. */
typedef struct hx_store_scratch {
	hx_store_buf  col[HX_STORE_NCOL];   /* binary array parameters */
	hx_store_buf  wcol[HX_STORE_NWCOL]; /* the replace windows, likewise */
	hx_store_buf  copy;                 /* a COPY BINARY stream */
	hx_store_rec *order;                /* the batch in key order */
	size_t        order_cap;
} hx_store_scratch;

struct hx_store {
	char   *conninfo; /* NULL = libpq's environment */
	PGconn *conn;     /* NULL while disconnected */

	/* The statements prepared on conn (see hx_store_stmt). */
	const hx_store_stmt *prepared[HX_STORE_MAX_STMTS];
	size_t               n_prepared;

	/* Health: when the database last answered on this connection (0 =
	 * not since the connection was made or lost), and the process-wide
	 * loss epoch at that time (see hx_store_trusted). */
	uint64_t alive_us;
	uint64_t alive_epoch;

	/* Whether this session has its COPY target, pg_temp.hx_input, made
	 * with the connection (see session_setup in store_conn.c). */
	bool has_input;

	uint64_t round_trips; /* see hx_store_round_trips */

	hx_store_scratch scratch;
};

/* ---- connections ------------------------------------------------------------ */

/* A libpq connection with the store's settings under the caller's conninfo;
 * NULL only when out of memory, otherwise check PQstatus(). */
PGconn *hx_store_pg_connect(const char *conninfo);

/* Connects s without the session setup (migrations run before the tables
 * exist). */
hx_status hx_store_connect_bare(hx_store *s, char *err, size_t errsz);

/* Closes the connection (NULL-safe), forgetting what was prepared on it. */
void hx_store_drop(hx_store *s);

/* Makes sure there is a usable connection outside any transaction, with
 * its session set up (statements are prepared on first use). *fresh tells
 * whether it was made just now. */
hx_status hx_store_ensure(hx_store *s, bool *fresh, char *err, size_t errsz);

/* Runs the first statement of a call, one with no effect of its own
 * ("SELECT 1"), reconnecting and trying once more if the connection turns
 * out to have died while idle. */
hx_status hx_store_exec_first(hx_store *s, const char *sql, const char *what, char *err,
                              size_t errsz);

/* Ends a failed transaction; a connection that cannot even do that is
 * dropped, so the next call starts clean. */
void hx_store_rollback(hx_store *s);

/* ---- health ----------------------------------------------------------------- */

/* The database just answered: Health may trust that for a while. */
void hx_store_alive(hx_store *s);

/* Whether the database answered on this connection under a second ago and
 * no store has lost its connection since. */
bool hx_store_trusted(const hx_store *s);

/* ---- errors and results ------------------------------------------------------- */

/* Turns a failed result (or NULL: none came) into a status, with the
 * server's words in err; clears r; forgets a connection that is gone. */
hx_status hx_store_fail(hx_store *s, PGresult *r, const char *what, char *err, size_t errsz);

/* Runs a prepared statement (preparing it first on this connection);
 * text parameters unless fmts says otherwise. The result when it
 * succeeded, else NULL and *st. */
PGresult *hx_store_exec(hx_store *s, const hx_store_stmt *stmt, int nparams,
                        const char *const *vals, const int *lens, const int *fmts, hx_status *st,
                        char *err, size_t errsz);

/* Runs fixed SQL text with text parameters (extended protocol). */
PGresult *hx_store_sql(hx_store *s, const char *sql, int nparams, const char *const *vals,
                       const char *what, hx_status *st, char *err, size_t errsz);
hx_status hx_store_cmd(hx_store *s, const char *sql, const char *what, char *err, size_t errsz);

/* COPY ... FROM STDIN of len bytes (sent in chunks): two round trips. */
hx_status hx_store_copy_in(hx_store *s, const char *copy_sql, const uint8_t *data, size_t len,
                           char *err, size_t errsz);

/* An unsigned decimal cell that fits 32 (64) bits; false otherwise. */
bool hx_store_cell_u32(const PGresult *r, int row, int col, uint32_t *out);
bool hx_store_cell_u64(const PGresult *r, int row, int col, uint64_t *out);

/* ---- pipelines: many statements, one round trip -------------------------------- */

/* One message: fixed SQL (stmt NULL), the execution of a prepared
 * statement, or (parse) its preparation. */
typedef struct hx_store_msg {
	const hx_store_stmt *stmt;
	bool                 parse;
	const char          *sql;
	int                  nparams;
	const char *const   *vals;
	const int           *lens, *fmts;
} hx_store_msg;

enum { HX_STORE_PL_MAX = 10 };

typedef struct hx_store_pl {
	hx_store_msg q[HX_STORE_PL_MAX];
	int          n;
	int          keep_at; /* the message whose result the caller wants, or -1 */
	PGresult    *keep;
	PGresult    *bad; /* the first failure, while reading */
	int          bad_at;
	char         state[6]; /* the first failure's SQLSTATE; "" when none */
} hx_store_pl;

void hx_store_pl_init(hx_store_pl *pl);

/* Appends fixed SQL without parameters. */
void hx_store_pl_sql(hx_store_pl *pl, const char *sql);

/* Appends the execution of stmt, preceded by its preparation when this
 * connection has not got it yet; returns the execution's index. */
int hx_store_pl_stmt(hx_store_pl *pl, const hx_store *s, const hx_store_stmt *stmt, int nparams,
                     const char *const *vals, const int *lens, const int *fmts);

/*
 * Sends the messages and one Sync in a single write, then reads all the
 * results: one round trip. Without an explicit BEGIN the messages up to the
 * Sync form one implicit transaction (set_config(..., true) holds until
 * it). After the first error the server skips the rest up to the Sync.
 * Returns HX_OK or the first failure's status (its SQLSTATE in pl->state).
 * *failed_at is the index of the message that failed, could not be sent or
 * whose result never came; -1 when none. On HX_OK, pl->keep holds the
 * result of message pl->keep_at (the caller clears it).
 */
hx_status hx_store_pl_run(hx_store *s, hx_store_pl *pl, int *failed_at, char *err, size_t errsz);

/* ---- scratch buffers ------------------------------------------------------------- */

/* Empties b with room for `need` bytes (libpq takes lengths as int); false
 * when out of memory or too large. */
bool hx_store_buf_reset(hx_store_buf *b, size_t need);

void hx_store_buf_free(hx_store_buf *b);

#endif /* HELIOX_STORE_INTERNAL_H */

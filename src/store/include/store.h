/*
 * store.h - everything Heliox keeps in PostgreSQL (libpq).
 *
 * One hx_store = one connection, owned by one server worker; it is not
 * shared between threads. The store knows nothing of the wire: it takes
 * validated hx_records and returns hx_status values.
 *
 * Guarantees:
 *  - one request, one transaction: a call that fails wrote nothing;
 *  - counts come from the write statement itself, not a second query;
 *  - unchanged rows are not rewritten;
 *  - parameters are always bound, never spliced into SQL;
 *  - a lost connection is answered HX_UNAVAILABLE and re-established on the
 *    next call.
 */
#ifndef HELIOX_STORE_H
#define HELIOX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/heliox.h"
#include "heliox/record.h"
#include "heliox/summary.h"

typedef struct hx_store hx_store;

/*
 * Applies pending migrations (schema_migrations, cost_snapshots,
 * ingestion_runs) on a connection of its own, under a transaction-scoped
 * advisory lock, so several servers may start at once on one database.
 * Waits up to wait_ms for the database to accept connections.
 */
hx_status hx_store_migrate(const char *conninfo, uint32_t wait_ms, char *err, size_t errsz);

/*
 * At start (migrate, schema check) only a database that can come up by
 * itself is waited for: refused connections, "starting up", a missing
 * socket. Authentication, SSL and conninfo syntax errors return
 * HX_FAILED_PRECONDITION at once. The hook, when set, hears of each retry
 * (for a log line) before its pause.
 */
typedef void (*hx_store_retry_fn)(const char *err, unsigned attempt, unsigned pause_ms);
void hx_store_set_retry_hook(hx_store_retry_fn fn);

/* For --no-migrate: HX_OK when every migration this binary knows is
 * applied; HX_FAILED_PRECONDITION (reason in err) when not. Runs no DDL. */
hx_status hx_store_schema_check(const char *conninfo, uint32_t wait_ms, char *err, size_t errsz);

/* HX_FAILED_PRECONDITION (cause in err) when connections reach the database
 * through a pooler in transaction or statement mode, which the store cannot
 * work with; HX_OK otherwise (or when it cannot tell). */
hx_status hx_store_session_check(const char *conninfo, char *err, size_t errsz);

/*
 * Creates a store (conninfo copied; NULL or "" = libpq's environment). Tries
 * to connect at once, but a database that is down is not an error here: each
 * call reconnects when the connection is missing or broken.
 */
hx_status hx_store_open(hx_store **out, const char *conninfo);
void      hx_store_close(hx_store *s);

/* HX_OK when the database answered within the last second (any statement
 * that succeeded counts; a lost connection in any worker clears that at
 * once) or answers a trivial query now (reconnecting first if needed), else
 * HX_UNAVAILABLE. Health calls this on every request, so it must not cost a
 * round trip each time. */
hx_status hx_store_ping(hx_store *s);

/* A round trip now ("SELECT 1", reconnecting first if needed), whatever
 * was seen before: for the database watch, which must notice a loss even
 * while no request runs. */
hx_status hx_store_check(hx_store *s, char *err, size_t errsz);

typedef struct hx_ingest_job {
	const char      *request_id;      /* never empty: the rpc layer generates one */
	const char      *source;          /* "mock" | "export_json" | "records" */
	uint8_t          fingerprint[32]; /* SHA-256 of the IngestRequest */
	const hx_record *recs;            /* valid records to write (borrowed) */
	size_t           n;
	uint32_t         received; /* records in the request */
	uint32_t         failed;   /* invalid records skipped (skip_invalid) */
	bool             dry_run;
	uint32_t         timeout_ms;      /* statement_timeout for the transaction; 0 = none */
	uint64_t         started_us;      /* monotonic start of the request, for the audit row */
	uint64_t         duration_us;     /* a failed request's duration, as its reply says;
	                                   * 0 = measured when the row is written */
	const char      *base_request_id; /* the id the user saw; NULL or "" = request_id */
	const char      *key_id;          /* non-secret name of the key used; NULL = unknown */
	const char      *peer;            /* the caller's address, as logged; NULL = unknown */
	/* v2: replace windows (validated, at most one per provider; every
	 * record of a windowed provider lies inside its window) and where the
	 * records came from (NULL = not given). */
	const hx_replace_window *windows;
	size_t                   n_windows;
	const hx_provenance     *prov;
} hx_ingest_job;

typedef struct hx_ingest_counts {
	uint32_t received, inserted, updated, unchanged, failed;
	uint32_t deleted;     /* rows removed by replace windows (dry run: would be) */
	bool     replayed;    /* the counts are an earlier run's, nothing was written now */
	uint64_t duration_us; /* the run's, as stored: a replay gets the earlier run's */
} hx_ingest_counts;

/*
 * Runs one ingest in one transaction:
 *   SET LOCAL statement_timeout; advisory lock on request_id;
 *   an earlier successful non-dry-run ingest with this request_id?
 *     same fingerprint -> its counts, replayed = true, nothing written;
 *     other fingerprint -> HX_INVALID_ARGUMENT;
 *   dry_run -> count what would be inserted/updated/unchanged/deleted, write nothing;
 *   else one set-based upsert that skips unchanged rows (same cost_usd and
 *   gpu_hours) and, in the same statement, deletes the rows of each replace
 *   window whose key the batch does not carry; counts from RETURNING;
 *   an ingestion_runs row; COMMIT.
 * Returns HX_OK, HX_INVALID_ARGUMENT (request_id reused), HX_UNAVAILABLE
 * (connection lost), HX_DEADLINE_EXCEEDED (statement_timeout hit) or
 * HX_INTERNAL; on any failure nothing was written and err holds a detail for
 * the log (never for the caller).
 */
hx_status hx_store_ingest(hx_store *s, const hx_ingest_job *job, hx_ingest_counts *out, char *err,
                          size_t errsz);

/* Writes the ingestion_runs row of an ingest that failed (auth excepted: an
 * unauthenticated call is only logged). Best effort, its own transaction. */
hx_status hx_store_audit_failure(hx_store *s, const hx_ingest_job *job, hx_status code, char *err,
                                 size_t errsz);

/* One row of a summary: the fields of hx_summary_row, with the text in the
 * block that holds the rows rather than in 437 fixed bytes a row (for 1,000
 * rows that was 437 KB to clear and copy on every call, issue 7). */
typedef struct hx_store_sum_row {
	const char *date;     /* "" when not grouped by date */
	const char *provider; /* "" when not grouped by provider */
	const char *gpu_type; /* "" when not grouped by gpu_type */
	uint64_t    records;
	const char *total_usd, *avg_usd, *min_usd, *max_usd; /* money text; see hx_summary_row */
	const char *gpu_hours, *usd_per_gpu_hour;
} hx_store_sum_row;

/* Runs a summary query. *rows is one malloc'd block holding the rows and
 * their text (free() it), *n its length; with HX_GROUP_NONE there is always
 * exactly one row. */
hx_status hx_store_summary(hx_store *s, const hx_summary_query *q, uint32_t timeout_ms,
                           hx_store_sum_row **rows, size_t *n, char *err, size_t errsz);

/* How many times this store has waited for the database (a statement run
 * alone, a pipeline, a preparation; a COPY counts two; connecting does
 * not): for tests that pin a call's round trips. */
uint64_t hx_store_round_trips(const hx_store *s);

#endif /* HELIOX_STORE_H */

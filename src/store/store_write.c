/*
 * store_write.c - the ingest write path: one request, one transaction; and
 * the audit row of a request that failed. On the base layer (store_conn.c)
 * only.
 *
 * The request goes out as one pipeline - BEGIN, statement_timeout, the
 * advisory lock on its request_id, one statement that looks up an earlier
 * run, writes the batch, counts from RETURNING and writes the audit row,
 * COMMIT - so a request costs one round trip, not seven. The batch travels
 * in binary (no text formatting here, no text parsing in Postgres), sorted
 * by key here rather than by ORDER BY in the database:
 *
 *   < COPY_MIN_RECORDS  four binary array parameters, unnested
 *   >= COPY_MIN_RECORDS COPY BINARY into a temporary table made once per
 *                       connection (ON COMMIT DELETE ROWS), then the same
 *                       statement over it (two more round trips)
 *
 * Why, as measured on the 2-core bench machine (PostgreSQL 15, fsync on;
 * other work ran at the same time, so rows/s moved +-30% between runs
 * while CPU per row and WAL per row held):
 *
 *  - Postgres CPU per row, arrays vs COPY, by records per request
 *    (fresh / unchanged, us):  500: 5.9/4.7 vs 7.0/6.0;  5000: 5.4/2.5 vs
 *    5.9/2.9;  20000: 6.5/2.5 vs 5.4/2.4;  100000: 10.8/6.4 vs 5.5/2.5.
 *    Arrays win small (and save the round trips a 28-record request
 *    feels), COPY wins large (the unnested arrays spill past work_mem).
 *  - Unchanged rows filtered out before the upsert (OLD_COST below): WAL
 *    for an unchanged re-ingest 59 -> 0 B/row, Postgres CPU ~4.9 -> ~2.5
 *    us/row. ON CONFLICT DO UPDATE ... WHERE had locked every row first.
 *    Below PLAIN_MAX_RECORDS the lookup costs more than it saves, and the
 *    plain upsert is used (see PLAIN_CTE).
 *  - Fresh rows by plain INSERT (FAST_CTE): WAL 373 -> 324 B/row in the
 *    bench (COPY into the table itself: 267) and ~20% less time than
 *    through ON CONFLICT, whose pre-check probe and speculative insertion
 *    it skips.
 *  - Changed rows still go through ON CONFLICT (~474 B/row, as before): a
 *    join-based UPDATE saved 12% WAL but only by forcing the planner.
 *  - End to end (bench/run.sh --records 200000: batch 5000, inflight 2,
 *    8 workers; medians of 6 runs, ratio to COPY in the same run), before
 *    -> after: fresh 0.78 -> 0.88x, unchanged 1.28 -> 1.90x, changed 0.57
 *    -> 0.49x (one more index probe per changed row), 28-record p50 1.31 ->
 *    1.10 ms (0.95 ms with the server's default 4 workers).
 *  - Rows on days with no stored row skip that lookup (CLASSIFY_CTE: a
 *    probe per day instead of per row, issue 7's sixth round): index scans
 *    of a fresh 200,000-record ingest ~200,000 -> 7,813; fresh 0.77-0.93 ->
 *    0.91-1.08x of COPY, the two builds alternating.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/errf.h"
#include "heliox/money.h"

/* Built-in type OIDs, fixed in Postgres's catalog (pg_type.dat). */
#define OID_DATE    1082u
#define OID_TEXT    25u
#define OID_NUMERIC 1700u

/* ---- statements ------------------------------------------------------------ */

/*
 * One statement does the whole request once the advisory lock is held, so
 * that its snapshot is taken after the wait and sees what the request we
 * waited for committed:
 *
 *   prior  the earlier successful real run with this request_id, if any
 *   input  the batch - nothing when there is a prior run
 *   up     the upsert (w counts what it returned)
 *   res    this run's counts, or the prior run's (replayed)
 *   run    the ingestion_runs row, unless the request_id belongs to another
 *          request (same = false: the caller answers INVALID_ARGUMENT and
 *          nothing at all was written)
 *
 *   win    the request's replace windows (v2)
 *   del    the rows of those windows whose key the batch does not carry,
 *          deleted (dry run: only found) in the same statement, so under
 *          the same snapshot and in the same transaction as the upsert. A
 *          deleted key is never in the batch and an upserted one always is,
 *          so the two never touch the same row.
 *
 * $1 request_id, $2 fingerprint (binary), $3 source, $4 received,
 * $5 failed, $6 records in the batch, $7 microseconds spent before this
 * statement, $8..$10 the windows' providers, first and last dates (binary
 * arrays, empty when none), $11..$13 the provenance (format, name,
 * mapping_version; '' = not given), $14 base_request_id, $15 key_id,
 * $16 peer; the array form adds $17..$21, the batch's columns.
 */
#define PRIOR_CTE                                                                    \
	"WITH prior AS (SELECT fingerprint IS NOT DISTINCT FROM $2::bytea AS same, " \
	"received, inserted, updated, unchanged, failed, deleted, duration_us "      \
	"FROM ingestion_runs "                                                       \
	"WHERE request_id = $1 AND code = 0 AND NOT dry_run AND NOT replayed), "

#define INPUT_ARRAYS                                                                      \
	"input AS (SELECT unnest($17::date[]) AS date, unnest($18::text[]) AS provider, " \
	"unnest($19::text[]) AS gpu_type, unnest($20::numeric[]) AS cost_usd, "           \
	"unnest($21::numeric[]) AS gpu_hours WHERE NOT EXISTS (SELECT FROM prior)), "

#define INPUT_TABLE \
	"input AS (SELECT * FROM pg_temp.hx_input WHERE NOT EXISTS (SELECT FROM prior)), "

/*
 * PLANS. A write statement's cost must not depend on how fresh the
 * planner's statistics are. On a new, analyzed, empty table (every new
 * install) a sequential scan costs nothing, so a lookup planned then scans
 * the table once per input row - over whatever another connection wrote
 * meanwhile: 10,000 rows into a table another writer was filling took up
 * to 35 s instead of 0.1 s. Stale statistics after a bulk load or a large
 * delete mislead it the same way. Every lookup the write path makes has an
 * index that answers it in O(log M): the unique key for a row's stored
 * cost (and for replace windows' date ranges), the idempotency index for a
 * request_id. So the write transaction turns sequential scans off
 * (enable_seqscan = off, set locally by the lock statement): the planner then
 * takes the index whatever it believes about the table's size, and the
 * only tables still scanned in full are the batch's own (input, hx_input),
 * which have no alternative path. Hints and pinned statistics do not
 * exist in stock Postgres; the setting is the one lever that holds for
 * every statement the transaction runs, including generic plans cached
 * while it was in force. tests/unit/test_store.c (test_writes_never_scan)
 * counts sequential scans of both tables across every write form.
 *
 * The same setting adds its penalty (1e10) to the cost of a plan that must
 * still scan a table, the COPY path's pg_temp.hx_input, and a plan that
 * costly is JIT-compiled: 0.5 s of LLVM per statement, which made 10,000-
 * record requests 7x slower than 5,000-record ones. A write statement never
 * runs long enough to repay JIT, so the lock statement turns it off too
 * (test_ingest_modes.py: test_no_write_statement_is_jit_compiled).
 *
 * Whether the row stored under an input row's key holds the same cost and
 * GPU-hours (an unknown gpu_hours equals only an unknown one): NULL when
 * there is no such row. A scalar subquery, one index probe per row. The
 * same test written as a join was planned as a hash join over the whole
 * table whenever its statistics were stale.
 */
#define OLD_SAME                                                                \
	"(SELECT o.cost_usd = i.cost_usd AND o.gpu_hours IS NOT DISTINCT FROM " \
	"i.gpu_hours FROM cost_snapshots o WHERE o.date = i.date "              \
	"AND o.provider = i.provider AND o.gpu_type = i.gpu_type)"

/*
 * Each row of the batch with the verdict on its key (NULL: new, true:
 * unchanged, false: changed), looked up once. Unchanged rows go no
 * further: ON CONFLICT DO UPDATE ... WHERE would lock each of them, and
 * write WAL for the lock, only to leave it alone.
 *
 * A row whose date has no stored row at all is new without a lookup: one
 * probe of the unique index's leading column per distinct date of the
 * batch (old_days) stands in for a probe of the whole key per row. That is
 * every row of a first import, and of each new day's bill; the per-row
 * probes were 15% of a fresh ingest's database time (perf, 200,000
 * records). Written so that no plan can make it cost more than the batch:
 *  - the day test is a scalar subquery with LIMIT, which Postgres never
 *    turns into a join, so it stays one probe per day (as EXISTS it was
 *    planned as a merge semi join over the whole index - the same trap as
 *    the third round's one-range check, README);
 *  - old_days is MATERIALIZED, so those probes run once per statement
 *    whichever way the IN below is planned;
 *  - IN over old_days is a hashed subplan when the batch is estimated at
 *    more than a couple of rows, else a scan of old_days in memory: no
 *    join, so the batch keeps its key order.
 */
#define CLASSIFY_CTE                                                                         \
	"old_days AS MATERIALIZED (SELECT d.date FROM (SELECT DISTINCT date FROM input) d "  \
	"WHERE (SELECT true FROM cost_snapshots o WHERE o.date = d.date LIMIT 1)), "         \
	"cls AS (SELECT i.*, CASE WHEN i.date IN (SELECT date FROM old_days) THEN " OLD_SAME \
	" END AS unch FROM input i), "

/* The replace windows (v2), none when this request_id already ran. */
#define WIN_CTE                                                                    \
	"win AS (SELECT unnest($8::text[]) AS provider, unnest($9::date[]) AS f, " \
	"unnest($10::date[]) AS t WHERE NOT EXISTS (SELECT FROM prior)), "

/* The stored rows of a window whose key the batch does not carry. Without
 * windows `win` is empty and the join has nothing to do. */
#define WIN_ROWS                                                                  \
	"d.provider = w.provider AND d.date BETWEEN w.f AND w.t AND NOT EXISTS "  \
	"(SELECT FROM input i WHERE i.date = d.date AND i.provider = d.provider " \
	"AND i.gpu_type = d.gpu_type)"

#define DELETE_CTE                                                                               \
	WIN_CTE "del AS (DELETE FROM cost_snapshots d USING win w WHERE " WIN_ROWS " RETURNING " \
	        "1), "

#define DELETE_DRY_CTE \
	WIN_CTE "del AS (SELECT 1 FROM cost_snapshots d JOIN win w ON " WIN_ROWS "), "

/* A request without windows runs statements without the DELETE: a role
 * that never restates data needs no DELETE privilege, and the common case
 * pays nothing for the feature. */
#define NO_DELETE_CTE                                                                 \
	"del AS (SELECT 1 WHERE false AND $8::text[] IS NULL AND $9::date[] IS NULL " \
	"AND $10::date[] IS NULL), "

/* The upsert proper, with the RETURNING it counts from: of the rows it
 * returns, xmax = 0 marks a fresh insert. The batch arrives in key order,
 * so every request takes its row locks in the same order and two
 * overlapping batches cannot deadlock each other. (The fast form's plain
 * INSERT and this upsert run in no fixed order between them; a deadlock
 * there is retried in the plain form.) */
#define UPSERT_FROM(src)                                                                \
	"up AS (INSERT INTO cost_snapshots AS c (date, provider, gpu_type, cost_usd, "  \
	"gpu_hours) SELECT date, provider, gpu_type, cost_usd, gpu_hours FROM " src " " \
	"ON CONFLICT (date, provider, gpu_type) DO UPDATE "                             \
	"SET cost_usd = EXCLUDED.cost_usd, gpu_hours = EXCLUDED.gpu_hours, "            \
	"updated_at = now() WHERE (c.cost_usd, c.gpu_hours) IS DISTINCT FROM "          \
	"(EXCLUDED.cost_usd, EXCLUDED.gpu_hours) "                                      \
	"RETURNING (c.xmax = 0) AS ins), "

/*
 * The fast form. Keys absent at the statement's snapshot are inserted by a
 * plain INSERT: ON CONFLICT's extra index probe and its speculative
 * insertion (a second WAL record per row) made fresh rows cost 20% more
 * time and 48 more WAL bytes each. Should another transaction insert one of
 * those keys meanwhile, the unique index says so (23505) and the request
 * runs again in the plain form.
 */
#define FAST_CTE                                                                    \
	CLASSIFY_CTE                                                                \
	"fr AS (INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd, "   \
	"gpu_hours) SELECT date, provider, gpu_type, cost_usd, gpu_hours FROM cls " \
	"WHERE unch IS NULL RETURNING 1), " UPSERT_FROM(                            \
	    "cls WHERE NOT unch") "w AS (SELECT (SELECT count(*) FROM fr)::int + "  \
	                          "count(*) FILTER (WHERE ins)::int AS ins, "       \
	                          "count(*) FILTER (WHERE NOT ins)::int AS upd FROM up), "

/*
 * The plain form: every row through ON CONFLICT, whatever other
 * transactions insert meanwhile - the form a request runs again in after a
 * race. It is also the cheaper one below PLAIN_MAX_RECORDS: the fast form's
 * lookup is a second index probe for every existing row (a walk down its
 * version chain when the row is updated often), which for 28 changed rows
 * made the statement 0.28 -> 0.41 ms; the locks the plain form takes on
 * unchanged rows cost less than that at this size.
 */
#define PLAIN_CTE                                                \
	UPSERT_FROM("input")                                     \
	"w AS (SELECT count(*) FILTER (WHERE ins)::int AS ins, " \
	"count(*) FILTER (WHERE NOT ins)::int AS upd FROM up), "

#define DRY_CTE                                                                        \
	CLASSIFY_CTE "w AS (SELECT count(*) FILTER (WHERE unch IS NULL)::int AS ins, " \
	             "count(*) FILTER (WHERE NOT unch)::int AS upd FROM cls), "

/* duration_us is the request's time up to the end of this statement, and
 * the one figure the row, the reply and every replay report: a replay
 * returns (and its own row repeats) the stored run's. */
#define RESULT_CTE(dry)                                                                 \
	"res AS (SELECT false AS replayed, true AS same, $4::int AS received, "         \
	"w.ins AS inserted, w.upd AS updated, $6::int - w.ins - w.upd AS unchanged, "   \
	"$5::int AS failed, (SELECT count(*) FROM del)::int AS deleted, $7::bigint + "  \
	"(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000000)"     \
	"::bigint AS duration_us FROM w WHERE NOT EXISTS (SELECT FROM prior) "          \
	"UNION ALL SELECT true, same, received, inserted, updated, unchanged, failed, " \
	"deleted, duration_us FROM prior), "                                            \
	"run AS (INSERT INTO ingestion_runs (request_id, source, fingerprint, "         \
	"dry_run, replayed, code, code_name, received, inserted, updated, unchanged, "  \
	"failed, deleted, source_format, source_name, mapping_version, duration_us, "   \
	"base_request_id, key_id, peer) "                                               \
	"SELECT $1, $3, $2::bytea, " dry ", replayed, 0, 'OK', received, inserted, "    \
	"updated, unchanged, failed, deleted, nullif($11, ''), nullif($12, ''), "       \
	"nullif($13, ''), duration_us, $14, $15, $16 FROM res WHERE same) "             \
	"SELECT same, replayed, received, inserted, updated, unchanged, failed, "       \
	"deleted, duration_us FROM res"

/* Per input form, three statements in the order of enum form. */
enum form { FORM_FAST, FORM_PLAIN, FORM_DRY };

enum wstmt {
	WS_TIMEOUT,
	WS_LOCK,
	WS_ARRAYS, /* WS_ARRAYS + enum form */
	WS_ARRAYS_PLAIN,
	WS_ARRAYS_DRY,
	WS_TABLE, /* WS_TABLE + enum form */
	WS_TABLE_PLAIN,
	WS_TABLE_DRY,
	WS_R_ARRAYS, /* the same six with replace windows: + WS_REPLACE */
	WS_R_ARRAYS_PLAIN,
	WS_R_ARRAYS_DRY,
	WS_R_TABLE,
	WS_R_TABLE_PLAIN,
	WS_R_TABLE_DRY,
	WS_COUNT
};
enum { WS_REPLACE = WS_R_ARRAYS - WS_ARRAYS };

static const hx_store_stmt wstmts[WS_COUNT] = {
	[WS_TIMEOUT] = { "hx_w_timeout", "SELECT set_config('statement_timeout', $1, true)" },
	/* A second copy of a request (an nng resend, a client retry) waits here
	 * for the first to finish, then finds its result and replays it. Every
	 * request sends it, so it also carries the transaction's plan setting
	 * (PLANS above) at no extra cost. */
	[WS_LOCK] = { "hx_w_lock",
	              "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), "
	              "set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)" },
	[WS_ARRAYS] = { "hx_w_arrays",
	                PRIOR_CTE INPUT_ARRAYS NO_DELETE_CTE FAST_CTE RESULT_CTE("false") },
	[WS_ARRAYS_PLAIN] = { "hx_w_arrays_plain",
	                      PRIOR_CTE INPUT_ARRAYS NO_DELETE_CTE PLAIN_CTE RESULT_CTE("false") },
	[WS_ARRAYS_DRY] = { "hx_w_arrays_dry",
	                    PRIOR_CTE INPUT_ARRAYS NO_DELETE_CTE DRY_CTE RESULT_CTE("true") },
	[WS_TABLE] = { "hx_w_table",
	               PRIOR_CTE INPUT_TABLE NO_DELETE_CTE FAST_CTE RESULT_CTE("false") },
	[WS_TABLE_PLAIN] = { "hx_w_table_plain",
	                     PRIOR_CTE INPUT_TABLE NO_DELETE_CTE PLAIN_CTE RESULT_CTE("false") },
	[WS_TABLE_DRY] = { "hx_w_table_dry",
	                   PRIOR_CTE INPUT_TABLE NO_DELETE_CTE DRY_CTE RESULT_CTE("true") },
	[WS_R_ARRAYS] = { "hx_w_r_arrays",
	                  PRIOR_CTE INPUT_ARRAYS DELETE_CTE FAST_CTE RESULT_CTE("false") },
	[WS_R_ARRAYS_PLAIN] = { "hx_w_r_arrays_plain",
	                        PRIOR_CTE INPUT_ARRAYS DELETE_CTE PLAIN_CTE RESULT_CTE("false") },
	[WS_R_ARRAYS_DRY] = { "hx_w_r_arrays_dry",
	                      PRIOR_CTE INPUT_ARRAYS DELETE_DRY_CTE DRY_CTE RESULT_CTE("true") },
	[WS_R_TABLE] = { "hx_w_r_table",
	                 PRIOR_CTE INPUT_TABLE DELETE_CTE FAST_CTE RESULT_CTE("false") },
	[WS_R_TABLE_PLAIN] = { "hx_w_r_table_plain",
	                       PRIOR_CTE INPUT_TABLE DELETE_CTE PLAIN_CTE RESULT_CTE("false") },
	[WS_R_TABLE_DRY] = { "hx_w_r_table_dry",
	                     PRIOR_CTE INPUT_TABLE DELETE_DRY_CTE DRY_CTE RESULT_CTE("true") },
};

/* The COPY target, made with each connection (store_conn.c). */
#define COPY_INPUT "COPY pg_temp.hx_input FROM STDIN (FORMAT binary)"

/* ---- scratch buffers ----------------------------------------------------------- */

/* Scratch buffers above this size are freed after the request: one huge
 * batch must not pin its memory in every worker for good. */
#define KEEP_BYTES ((size_t) 1 << 20)

static void
buf_trim(hx_store_buf *b)
{
	if (b->cap > KEEP_BYTES) {
		hx_store_buf_free(b);
	}
}

static void
scratch_trim(hx_store_scratch *w)
{
	int k;

	for (k = 0; k < HX_STORE_NCOL; k++) {
		buf_trim(&w->col[k]);
	}
	buf_trim(&w->copy);
	if (w->order_cap * sizeof(hx_store_rec) > KEEP_BYTES) {
		free(w->order);
		w->order = NULL;
		w->order_cap = 0;
	}
}

/* ---- the batch in key order ------------------------------------------------------ */

static int
key_cmp(const void *a, const void *b)
{
	const hx_record *x = *(const hx_store_rec *) a;
	const hx_record *y = *(const hx_store_rec *) b;
	int              c = memcmp(x->date, y->date, HX_DATE_LEN);

	if (c == 0) {
		c = strcmp(x->provider, y->provider);
	}
	return c != 0 ? c : strcmp(x->gpu_type, y->gpu_type);
}

/*
 * Sorts the batch by key (bytewise) into s->scratch.order. Sorting here rather than
 * with ORDER BY keeps the work off the database, which is the bottleneck;
 * any fixed order serves to take row locks in one order. A repeated key
 * (validation rejects them upstream) would make ON CONFLICT fail, so it is
 * refused here with a clear message.
 */
static hx_status
order_batch(hx_store *s, const hx_ingest_job *job, char *err, size_t errsz)
{
	size_t i;

	if (job->n > s->scratch.order_cap) {
		hx_store_rec *p = realloc(s->scratch.order, job->n * sizeof(hx_store_rec));

		if (p == NULL) {
			hx_errf_line(err, errsz, "ingest: out of memory");
			return HX_RESOURCE_EXHAUSTED;
		}
		s->scratch.order = p;
		s->scratch.order_cap = job->n;
	}
	for (i = 0; i < job->n; i++) {
		s->scratch.order[i] = &job->recs[i];
	}
	if (job->n > 1) { /* qsort() of an empty (NULL) array is undefined */
		qsort(s->scratch.order, job->n, sizeof(hx_store_rec), key_cmp);
	}
	for (i = 1; i < job->n; i++) {
		if (key_cmp(&s->scratch.order[i - 1], &s->scratch.order[i]) == 0) {
			hx_errf_line(err, errsz, "ingest: key %s|%s|%s twice in one batch",
			             s->scratch.order[i]->date, s->scratch.order[i]->provider,
			             s->scratch.order[i]->gpu_type);
			return HX_INTERNAL;
		}
	}
	return HX_OK;
}

/* ---- binary encodings (network byte order throughout) ---------------------------- */

static uint8_t *
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
	return p + 2;
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
	return p + 4;
}

/* Encoded sizes at most: a date, a numeric (three integer and two
 * fractional base-10000 digits), a name beyond its bytes - each with its
 * length word - and a COPY tuple's field count. */
#define DATE_BYTES    (4 + 4)
#define NUMERIC_BYTES (4 + 8 + 5 * 2)
#define NAME_BYTES    4
#define TUPLE_BYTES   (2 + DATE_BYTES + 2 * NAME_BYTES + 2 * NUMERIC_BYTES)
#define HEAD_BYTES    32 /* an array's or a COPY stream's header, and more */

/* "YYYY-MM-DD" as days since 2000-01-01, Postgres's date epoch; false when
 * it is not a calendar date, by the check validation makes (base/date.h):
 * binary input, unlike text, would take 2026-02-30 as March 2nd without a
 * word. */
static bool
pg_date(const char *t, int32_t *out)
{
	int32_t days;

	if (!hx_date_parse(t, strnlen(t, HX_DATE_LEN + 1), &days)) {
		return false;
	}
	*out = days - HX_DATE_PG_EPOCH_DAYS;
	return true;
}

static uint8_t *
put_date(uint8_t *p, int32_t days)
{
	return put32(put32(p, 4), (uint32_t) days);
}

static uint8_t *
put_text(uint8_t *p, const char *s)
{
	size_t len = strlen(s);

	p = put32(p, (uint32_t) len);
	memcpy(p, s, len); /* NOLINT(bugprone-not-null-terminated-result): length-prefixed */
	return p + len;
}

/*
 * numeric's binary form of v micro-dollars: base-10000 digits without
 * leading or trailing zero groups, the weight of the first, the sign and a
 * display scale of 6. |v| < 10^18, so three integer groups and two
 * fractional ones hold it.
 */
static uint8_t *
put_numeric(uint8_t *p, hx_micros v)
{
	uint64_t a = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
	uint64_t ip = a / 1000000u, fr = a % 1000000u;
	uint16_t g[5] = { (uint16_t) (ip / 100000000u), (uint16_t) (ip / 10000u % 10000u),
		          (uint16_t) (ip % 10000u), (uint16_t) (fr / 100u),
		          (uint16_t) (fr % 100u * 100u) };
	int      first = 0, last = 4, i;

	while (first <= last && g[first] == 0) {
		first++;
	}
	while (last >= first && g[last] == 0) {
		last--;
	}
	p = put32(p, (uint32_t) (8 + 2 * (last - first + 1)));
	p = put16(p, (uint16_t) (last - first + 1));
	p = put16(p, (uint16_t) (int16_t) (first <= last ? 2 - first : 0));
	p = put16(p, v < 0 ? 0x4000 : 0x0000);
	p = put16(p, 6);
	for (i = first; i <= last; i++) {
		p = put16(p, g[i]);
	}
	return p;
}

/* A record the encoders can take: a date of the right shape, a cost in the
 * contract's range (validated upstream; checked so that a bad caller gets
 * an error, not a wrong value). */
static hx_status
rec_check(const hx_record *r, int32_t *days, char *err, size_t errsz)
{
	if (!pg_date(r->date, days) || r->cost <= -HX_MONEY_LIMIT_MICROS ||
	    r->cost >= HX_MONEY_LIMIT_MICROS ||
	    (r->has_gpu_hours && (r->gpu_hours < 0 || r->gpu_hours >= HX_MONEY_LIMIT_MICROS))) {
		hx_errf_line(err, errsz, "ingest: record %s|%s|%s cannot be stored", r->date,
		             r->provider, r->gpu_type);
		return HX_INTERNAL;
	}
	return HX_OK;
}

/* The bytes of the batch's providers and GPU types, to size the buffers
 * once. */
static void
names_bytes(const hx_ingest_job *job, size_t *prov, size_t *gpu)
{
	size_t i;

	*prov = *gpu = 0;
	for (i = 0; i < job->n; i++) {
		*prov += strlen(job->recs[i].provider);
		*gpu += strlen(job->recs[i].gpu_type);
	}
}

/* ---- the batch as four binary array parameters ------------------------------------ */

/* gpu_hours, or a NULL (length -1) when unknown. */
static uint8_t *
put_gpu_hours(uint8_t *p, const hx_record *r)
{
	return r->has_gpu_hours ? put_numeric(p, r->gpu_hours) : put32(p, UINT32_MAX);
}

static uint8_t *
put_array_head(uint8_t *p, uint32_t oid, size_t n, bool nulls)
{
	p = put32(p, n > 0 ? 1 : 0); /* dimensions */
	p = put32(p, nulls ? 1 : 0); /* may hold NULLs */
	p = put32(p, oid);
	if (n > 0) {
		p = put32(p, (uint32_t) n);
		p = put32(p, 1); /* lower bound */
	}
	return p;
}

static hx_status
encode_arrays(hx_store *s, const hx_ingest_job *job, char *err, size_t errsz)
{
	static const uint32_t oids[HX_STORE_NCOL] = { OID_DATE, OID_TEXT, OID_TEXT, OID_NUMERIC,
		                                      OID_NUMERIC };
	size_t                size[HX_STORE_NCOL], i;
	uint8_t              *p[HX_STORE_NCOL];
	int32_t               days;
	hx_status             st = HX_OK;
	int                   k;

	names_bytes(job, &size[1], &size[2]);
	size[0] = HEAD_BYTES + job->n * DATE_BYTES;
	size[1] += HEAD_BYTES + job->n * NAME_BYTES;
	size[2] += HEAD_BYTES + job->n * NAME_BYTES;
	size[3] = HEAD_BYTES + job->n * NUMERIC_BYTES;
	size[4] = HEAD_BYTES + job->n * NUMERIC_BYTES;
	for (k = 0; k < HX_STORE_NCOL; k++) {
		if (!hx_store_buf_reset(&s->scratch.col[k], size[k])) {
			hx_errf_line(err, errsz, "ingest: out of memory");
			return HX_RESOURCE_EXHAUSTED;
		}
		p[k] = put_array_head(s->scratch.col[k].p, oids[k], job->n, k == 4);
	}
	for (i = 0; i < job->n; i++) {
		const hx_record *r = s->scratch.order[i];

		if ((st = rec_check(r, &days, err, errsz)) != HX_OK) {
			break;
		}
		p[0] = put_date(p[0], days);
		p[1] = put_text(p[1], r->provider);
		p[2] = put_text(p[2], r->gpu_type);
		p[3] = put_numeric(p[3], r->cost);
		p[4] = put_gpu_hours(p[4], r);
	}
	for (k = 0; k < HX_STORE_NCOL; k++) {
		s->scratch.col[k].len = (size_t) (p[k] - s->scratch.col[k].p);
	}
	return st;
}

/* ---- the replace windows as three binary array parameters ------------------------ */

static hx_status
encode_windows(hx_store *s, const hx_ingest_job *job, char *err, size_t errsz)
{
	static const uint32_t oids[HX_STORE_NWCOL] = { OID_TEXT, OID_DATE, OID_DATE };
	uint8_t              *p[HX_STORE_NWCOL];
	size_t                i, prov = 0;
	int32_t               from, to;
	int                   k;

	for (i = 0; i < job->n_windows; i++) {
		prov += strlen(job->windows[i].provider);
	}
	for (k = 0; k < HX_STORE_NWCOL; k++) {
		if (!hx_store_buf_reset(&s->scratch.wcol[k],
		                        HEAD_BYTES + job->n_windows * (DATE_BYTES + NAME_BYTES) +
		                            (k == 0 ? prov : 0))) {
			hx_errf_line(err, errsz, "ingest: out of memory");
			return HX_RESOURCE_EXHAUSTED;
		}
		p[k] = put_array_head(s->scratch.wcol[k].p, oids[k], job->n_windows, false);
	}
	for (i = 0; i < job->n_windows; i++) {
		const hx_replace_window *w = &job->windows[i];

		if (!pg_date(w->from_date, &from) || !pg_date(w->to_date, &to) || from > to) {
			hx_errf_line(err, errsz, "ingest: replace window %s %s..%s cannot be used",
			             w->provider, w->from_date, w->to_date);
			return HX_INTERNAL;
		}
		p[0] = put_text(p[0], w->provider);
		p[1] = put_date(p[1], from);
		p[2] = put_date(p[2], to);
	}
	for (k = 0; k < HX_STORE_NWCOL; k++) {
		s->scratch.wcol[k].len = (size_t) (p[k] - s->scratch.wcol[k].p);
	}
	return HX_OK;
}

/* ---- the batch as a COPY BINARY stream ----------------------------------------- */

static hx_status
encode_copy(hx_store *s, const hx_ingest_job *job, char *err, size_t errsz)
{
	static const uint8_t sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
	size_t               prov, gpu, i;
	uint8_t             *p;
	int32_t              days;
	hx_status            st = HX_OK;

	names_bytes(job, &prov, &gpu);
	if (!hx_store_buf_reset(&s->scratch.copy, HEAD_BYTES + job->n * TUPLE_BYTES + prov + gpu)) {
		hx_errf_line(err, errsz, "ingest: out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	p = s->scratch.copy.p;
	memcpy(p, sig, sizeof(sig));
	p = put32(put32(p + sizeof(sig), 0), 0); /* flags, header extension */
	for (i = 0; i < job->n; i++) {
		const hx_record *r = s->scratch.order[i];

		if ((st = rec_check(r, &days, err, errsz)) != HX_OK) {
			break;
		}
		p = put16(p, HX_STORE_NCOL);
		p = put_date(p, days);
		p = put_text(p, r->provider);
		p = put_text(p, r->gpu_type);
		p = put_numeric(p, r->cost);
		p = put_gpu_hours(p, r);
	}
	p = put16(p, 0xffff); /* trailer */
	s->scratch.copy.len = (size_t) (p - s->scratch.copy.p);
	return st;
}

/* ---- pipelines ------------------------------------------------------------------ */

/* hx_store_pl_run, with a unique violation told apart: a key inserted
 * meanwhile by another transaction (HX_ALREADY_EXISTS, see FAST_CTE). */
static hx_status
pl_run(hx_store *s, hx_store_pl *pl, int *failed_at, char *err, size_t errsz)
{
	hx_status st = hx_store_pl_run(s, pl, failed_at, err, errsz);

	return st != HX_OK && strcmp(pl->state, "23505") == 0 ? HX_ALREADY_EXISTS : st;
}

/* ---- the request ------------------------------------------------------------------ */

/* The job's base_request_id, or its request_id when it has none. */
static const char *
base_id(const hx_ingest_job *job)
{
	return job->base_request_id != NULL && job->base_request_id[0] != '\0'
	    ? job->base_request_id
	    : job->request_id;
}

/* An all-zero fingerprint means none was computed (stored as NULL). */
static bool
fingerprint_set(const hx_ingest_job *job)
{
	size_t i;

	for (i = 0; i < sizeof(job->fingerprint); i++) {
		if (job->fingerprint[i] != 0) {
			return true;
		}
	}
	return false;
}

/* ---- the transaction ------------------------------------------------------------- */

/* Text forms of the request's scalars, for the statements' parameters. */
/* The write statement's parameters: NPARAM_TABLE in the COPY form, and
 * the batch's columns after them in the array form. */
enum { NPARAM_TABLE = 16, NPARAM_ARRAYS = NPARAM_TABLE + HX_STORE_NCOL };

typedef struct job_params {
	char        timeout[16], received[16], failed[16], n[24], spent[24];
	const char *tvals[1]; /* statement_timeout */
	const char *vals[NPARAM_ARRAYS];
	int         lens[NPARAM_ARRAYS], fmts[NPARAM_ARRAYS];
} job_params;

/* The request's time so far: the audit row adds the write's own. */
static void
params_spent(job_params *jp, const hx_ingest_job *job)
{
	uint64_t now = hx_clock_us();

	snprintf(jp->spent, sizeof(jp->spent), "%" PRIu64,
	         now > job->started_us ? now - job->started_us : 0);
}

static void
params_init(job_params *jp, hx_store *s, const hx_ingest_job *job, bool arrays)
{
	int k;

	memset(jp, 0, sizeof(*jp));
	snprintf(jp->timeout, sizeof(jp->timeout), "%" PRIu32, job->timeout_ms);
	jp->tvals[0] = jp->timeout;
	snprintf(jp->received, sizeof(jp->received), "%" PRIu32, job->received);
	snprintf(jp->failed, sizeof(jp->failed), "%" PRIu32, job->failed);
	snprintf(jp->n, sizeof(jp->n), "%zu", job->n);
	params_spent(jp, job);
	jp->vals[0] = job->request_id;
	jp->vals[1] = fingerprint_set(job) ? (const char *) job->fingerprint : NULL;
	jp->lens[1] = (int) sizeof(job->fingerprint);
	jp->fmts[1] = 1; /* the raw 32 bytes */
	jp->vals[2] = job->source;
	jp->vals[3] = jp->received;
	jp->vals[4] = jp->failed;
	jp->vals[5] = jp->n;
	jp->vals[6] = jp->spent;
	for (k = 0; k < HX_STORE_NWCOL; k++) {
		jp->vals[7 + k] = (const char *) s->scratch.wcol[k].p;
		jp->lens[7 + k] = (int) s->scratch.wcol[k].len;
		jp->fmts[7 + k] = 1;
	}
	jp->vals[10] = job->prov != NULL ? job->prov->format : "";
	jp->vals[11] = job->prov != NULL ? job->prov->name : "";
	jp->vals[12] = job->prov != NULL ? job->prov->mapping_version : "";
	jp->vals[13] = base_id(job);
	jp->vals[14] = job->key_id;
	jp->vals[15] = job->peer;
	for (k = 0; arrays && k < HX_STORE_NCOL; k++) {
		jp->vals[NPARAM_TABLE + k] = (const char *) s->scratch.col[k].p;
		jp->lens[NPARAM_TABLE + k] = (int) s->scratch.col[k].len;
		jp->fmts[NPARAM_TABLE + k] = 1;
	}
}

/* BEGIN and statement_timeout for this transaction only (0 leaves the
 * server's), then the advisory lock on the request_id. READ COMMITTED is
 * explicit: the statement after the lock must see what the request we
 * waited for committed, which a snapshot taken before the wait (REPEATABLE
 * READ as a database default) would not. */
static void
pl_head(hx_store_pl *pl, const hx_store *s, const hx_ingest_job *job, const job_params *jp)
{
	hx_store_pl_sql(pl, "BEGIN ISOLATION LEVEL READ COMMITTED");
	if (job->timeout_ms != 0) {
		hx_store_pl_stmt(pl, s, &wstmts[WS_TIMEOUT], 1, jp->tvals, NULL, NULL);
	}
	hx_store_pl_stmt(pl, s, &wstmts[WS_LOCK], 1, jp->vals, NULL, NULL);
}

/* Reads the one row of the write statement into out. */
static hx_status
read_counts(const PGresult *r, const hx_ingest_job *job, hx_ingest_counts *out, char *err,
            size_t errsz)
{
	if (PQntuples(r) != 1 || PQnfields(r) != 9) {
		hx_errf_line(err, errsz, "write: unexpected result shape");
		return HX_INTERNAL;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		hx_errf_line(err, errsz, "request_id %s was used by another request",
		             job->request_id);
		return HX_INVALID_ARGUMENT;
	}
	out->replayed = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
	if (!hx_store_cell_u32(r, 0, 2, &out->received) ||
	    !hx_store_cell_u32(r, 0, 3, &out->inserted) ||
	    !hx_store_cell_u32(r, 0, 4, &out->updated) ||
	    !hx_store_cell_u32(r, 0, 5, &out->unchanged) ||
	    !hx_store_cell_u32(r, 0, 6, &out->failed) ||
	    !hx_store_cell_u32(r, 0, 7, &out->deleted) ||
	    !hx_store_cell_u64(r, 0, 8, &out->duration_us) ||
	    (!out->replayed && (uint64_t) out->inserted + out->updated > job->n)) {
		hx_errf_line(err, errsz, "write: unexpected counts");
		return HX_INTERNAL;
	}
	return HX_OK;
}

/* Runs the pipeline and reads its kept result, the write's, into out. */
static hx_status
pl_finish(hx_store *s, hx_store_pl *pl, const hx_ingest_job *job, hx_ingest_counts *out,
          int *failed_at, char *err, size_t errsz)
{
	hx_status st = pl_run(s, pl, failed_at, err, errsz);

	if (st == HX_OK) {
		st = read_counts(pl->keep, job, out, err, errsz);
		PQclear(pl->keep);
		pl->keep = NULL;
	}
	return st;
}

/* The write statement for the input form (WS_ARRAYS or WS_TABLE), the
 * statement form and whether the request has windows. */
static enum wstmt
write_stmt(enum wstmt input, enum form form, const hx_ingest_job *job)
{
	return (enum wstmt)((int) input + (int) form + (job->n_windows > 0 ? WS_REPLACE : 0));
}

/* The whole transaction in one round trip, the batch as arrays. */
static hx_status
tx_arrays(hx_store *s, const hx_ingest_job *job, enum form form, hx_ingest_counts *out,
          int *failed_at, char *err, size_t errsz)
{
	job_params  jp;
	hx_store_pl pl;

	params_init(&jp, s, job, true);
	hx_store_pl_init(&pl);
	pl_head(&pl, s, job, &jp);
	pl.keep_at = hx_store_pl_stmt(&pl, s, &wstmts[write_stmt(WS_ARRAYS, form, job)],
	                              NPARAM_ARRAYS, jp.vals, jp.lens, jp.fmts);
	hx_store_pl_sql(&pl, "COMMIT");
	return pl_finish(s, &pl, job, out, failed_at, err, errsz);
}

/* The batch through COPY: BEGIN + lock, COPY, then the write and COMMIT. */
static hx_status
tx_copy(hx_store *s, const hx_ingest_job *job, enum form form, hx_ingest_counts *out,
        int *failed_at, char *err, size_t errsz)
{
	job_params  jp;
	hx_store_pl pl;
	hx_status   st;
	int         later;

	params_init(&jp, s, job, false);
	hx_store_pl_init(&pl);
	pl_head(&pl, s, job, &jp);
	st = pl_run(s, &pl, failed_at, err, errsz);
	if (st == HX_OK) {
		st = hx_store_copy_in(s, COPY_INPUT, s->scratch.copy.p, s->scratch.copy.len, err,
		                      errsz);
	}
	if (st != HX_OK) {
		return st;
	}
	params_spent(&jp, job);
	hx_store_pl_init(&pl);
	pl.keep_at = hx_store_pl_stmt(&pl, s, &wstmts[write_stmt(WS_TABLE, form, job)],
	                              NPARAM_TABLE, jp.vals, jp.lens, jp.fmts);
	hx_store_pl_sql(&pl, "COMMIT");
	return pl_finish(s, &pl, job, out, &later, err, errsz);
}

/* ---- the choice of path ----------------------------------------------------------- */

/* Batches of at least this many records go through COPY, smaller ones as
 * array parameters; below PLAIN_MAX_RECORDS the write is the plain upsert
 * (figures at the top of this file and above PLAIN_CTE). */
#define COPY_MIN_RECORDS  10000
#define PLAIN_MAX_RECORDS 1000

static bool
use_copy(const hx_store *s, const hx_ingest_job *job)
{
	return job->n >= COPY_MIN_RECORDS && s->has_input;
}

/*
 * One attempt at the transaction. A connection the server dropped while we
 * were idle is only found out by the first statement (BEGIN); nothing has
 * run then, so reconnecting and trying once more is safe and spares the
 * caller an UNAVAILABLE.
 */
static hx_status
ingest_attempt(hx_store *s, const hx_ingest_job *job, bool *copy, enum form form,
               hx_ingest_counts *out, char *err, size_t errsz)
{
	hx_status st;
	bool      fresh;
	int       attempt, failed_at;

	for (attempt = 0;; attempt++) {
		memset(out, 0, sizeof(*out));
		st = hx_store_ensure(s, &fresh, err, errsz);
		if (st == HX_OK && *copy && !s->has_input) {
			*copy = false; /* a new connection without its COPY target */
			st = encode_arrays(s, job, err, errsz);
		}
		if (st != HX_OK) {
			return st;
		}
		st = *copy ? tx_copy(s, job, form, out, &failed_at, err, errsz)
		           : tx_arrays(s, job, form, out, &failed_at, err, errsz);
		if (st != HX_UNAVAILABLE || failed_at != 0 || fresh || attempt > 0) {
			return st;
		}
	}
}

static hx_status
job_check(const hx_ingest_job *job, char *err, size_t errsz)
{
	if (job->request_id == NULL || job->request_id[0] == '\0' || job->source == NULL ||
	    (job->n > 0 && job->recs == NULL) || (job->n_windows > 0 && job->windows == NULL)) {
		hx_errf_line(err, errsz, "ingest: incomplete job");
		return HX_INVALID_ARGUMENT;
	}
	/* The contract's invariant inserted+updated+unchanged+failed == received
	 * only holds if the caller's counts add up. */
	if (job->n > UINT32_MAX || (uint64_t) job->n + job->failed != job->received) {
		hx_errf_line(err, errsz,
		             "ingest: received %" PRIu32 " != %zu valid + %" PRIu32 " failed",
		             job->received, job->n, job->failed);
		return HX_INTERNAL;
	}
	return HX_OK;
}

/* Checks the job, puts the batch in key order and encodes it for the path
 * its size calls for. */
static hx_status
ingest_prepare(hx_store *s, const hx_ingest_job *job, bool copy, char *err, size_t errsz)
{
	hx_status st = job_check(job, err, errsz);

	if (st == HX_OK) {
		st = order_batch(s, job, err, errsz);
	}
	if (st == HX_OK) {
		st = encode_windows(s, job, err, errsz);
	}
	if (st == HX_OK) {
		st = copy ? encode_copy(s, job, err, errsz) : encode_arrays(s, job, err, errsz);
	}
	return st;
}

/* The form of the write statement for a first attempt. */
static enum form
first_form(const hx_ingest_job *job)
{
	if (job->dry_run) {
		return FORM_DRY;
	}
	return job->n < PLAIN_MAX_RECORDS ? FORM_PLAIN : FORM_FAST;
}

/*
 * Runs the transaction until it sticks. A deadlock or serialization failure
 * is the database asking for the whole transaction again: once, then
 * ABORTED. A key another transaction inserted under the fast form's feet
 * (HX_ALREADY_EXISTS) sends the request round again in the plain form, on
 * top of that. Retries use the plain form, whose single sorted upsert takes
 * its row locks in one order.
 */
static hx_status
ingest_run(hx_store *s, const hx_ingest_job *job, bool *copy, hx_ingest_counts *out, char *err,
           size_t errsz)
{
	enum form form = first_form(job);
	int       retries = 1;
	hx_status st;

	for (;;) {
		st = ingest_attempt(s, job, copy, form, out, err, errsz);
		if (st == HX_OK) {
			return st;
		}
		hx_store_rollback(s);
		if (!(st == HX_ALREADY_EXISTS && form == FORM_FAST) &&
		    !(st == HX_ABORTED && retries-- > 0)) {
			break;
		}
		form = job->dry_run ? FORM_DRY : FORM_PLAIN;
	}
	return st == HX_ALREADY_EXISTS ? HX_INTERNAL : st; /* not a race, then */
}

hx_status
hx_store_ingest(hx_store *s, const hx_ingest_job *job, hx_ingest_counts *out, char *err,
                size_t errsz)
{
	hx_status st;
	bool      copy;

	if (s == NULL || job == NULL || out == NULL) {
		hx_errf_line(err, errsz, "ingest: missing argument");
		return HX_INVALID_ARGUMENT;
	}
	memset(out, 0, sizeof(*out));
	copy = use_copy(s, job);
	st = ingest_prepare(s, job, copy, err, errsz);
	if (st == HX_OK) {
		st = ingest_run(s, job, &copy, out, err, errsz);
	}
	if (st != HX_OK) {
		memset(out, 0, sizeof(*out));
	}
	scratch_trim(&s->scratch);
	return st;
}

/* ---- the audit row of a failed ingest ---------------------------------------- */

static const hx_store_stmt run_stmt = {
	"hx_run",
	"INSERT INTO ingestion_runs (request_id, source, fingerprint, dry_run, replayed, code, "
	"code_name, received, inserted, updated, unchanged, failed, duration_us, source_format, "
	"source_name, mapping_version, base_request_id, key_id, peer) VALUES ($1, $2, $3::bytea, "
	"$4::bool, $5::bool, $6::int, $7, $8::int, $9::int, $10::int, $11::int, $12::int, "
	"$13::bigint, nullif($14, ''), nullif($15, ''), nullif($16, ''), $17, $18, $19)"
};

static hx_status
write_run(hx_store *s, const hx_ingest_job *job, hx_status code, const hx_ingest_counts *c,
          char *err, size_t errsz)
{
	char        num[6][24], dur[24];
	const char *vals[19];
	int         lens[19] = { 0 }, fmts[19] = { 0 };
	uint64_t    now = hx_clock_us();
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
	vals[2] = fingerprint_set(job) ? (const char *) job->fingerprint : NULL;
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
	vals[16] = base_id(job);
	vals[17] = job->key_id;
	vals[18] = job->peer;
	PQclear(hx_store_exec(s, &run_stmt, 19, vals, lens, fmts, &st, err, errsz));
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
		hx_errf_line(err, errsz, "audit: bad arguments");
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

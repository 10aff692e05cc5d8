/*
 * store_read.c - what the store answers without writing: summaries and
 * Health (hx_store_ping, hx_store_check). On the base layer (store_conn.c)
 * only.
 */
#include "store_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errf.h"
#include "base/text.h"
#include "heliox/money.h"

/* ---- statements ------------------------------------------------------------ */

enum stmt {
	ST_READ_SETUP,
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
 * Shared by the five summaries, after each one's grouping keys (none, or
 * some of date, provider and gpu_type, in that order: sum_keys below). A
 * filter is NULL when absent; the texts are fixed, so user input never
 * reaches SQL text.
 *
 * The last column is the cost of the rows whose gpu_hours is known: with
 * sum(gpu_hours) it makes usd_per_gpu_hour, which summary_rows works out in
 * C, exactly (hx_money_div_text). round(c / h, 4) in SQL would round twice
 * (numeric division stops at ~16 significant digits, and 0.12344999...,
 * cut there, becomes 0.12345); the exact form in SQL, div(2c * 10^4 + h,
 * 2h) * 0.0001, takes four more numeric operations a group: 0-0.45 ms
 * (0.2 typical) of a 1,000-group summary, measured alternating (issue 7).
 */
#define SUM_COLS                                                                        \
	"count(*), sum(s.cost_usd), round(avg(s.cost_usd), 2), min(s.cost_usd), "       \
	"max(s.cost_usd), sum(s.gpu_hours), "                                           \
	"sum(s.cost_usd) FILTER (WHERE s.gpu_hours IS NOT NULL) FROM cost_snapshots s " \
	"WHERE ($1::date IS NULL OR s.date >= $1::date) "                               \
	"AND ($2::date IS NULL OR s.date <= $2::date) "                                 \
	"AND ($3::text IS NULL OR s.provider = $3::text) "                              \
	"AND ($4::text IS NULL OR s.gpu_type = $4::text)"
#define SUM_NCOLS 7 /* after the keys */

/* Which keys lead each summary's columns. Only those: constant '' columns
 * for the others cost 0-0.3 ms (0.1 typical) a 1,000-group summary. */
enum { KEY_DATE = 1, KEY_PROVIDER = 2, KEY_GPU_TYPE = 4 };
static const unsigned char sum_keys[] = {
	[HX_GROUP_NONE] = 0,
	[HX_GROUP_PROVIDER] = KEY_PROVIDER,
	[HX_GROUP_GPU_TYPE] = KEY_GPU_TYPE,
	[HX_GROUP_DATE] = KEY_DATE,
	[HX_GROUP_PROVIDER_GPU_TYPE] = KEY_PROVIDER | KEY_GPU_TYPE,
};

static const hx_store_stmt stmts[ST_COUNT] = {
	/*
	 * The settings of a summary's transaction, which is the implicit one
	 * of its pipeline (see hx_store_summary), so each holds until its
	 * Sync and no longer:
	 *  - plan_cache_mode: the summaries' filters are optional ("$3 IS NULL
	 *    OR provider = $3"), which a generic plan cannot turn into an
	 *    index range: once the plan cache has seen five unfiltered
	 *    summaries it may settle on a generic plan and scan the whole
	 *    table for every filtered one after that. Planning anew costs tens
	 *    of microseconds; a wrong plan costs the table. It is read at Bind,
	 *    after this statement has run.
	 *  - statement_timeout; NULL keeps the server's.
	 *  - transaction_read_only, which BEGIN READ ONLY used to say: a
	 *    summary can never write, whatever its SQL becomes.
	 *  - jit: over a million rows the summaries' plans cost enough for
	 *    Postgres to JIT-compile them, and the compiling cost more than it
	 *    saved: 145-174 ms with it against 129-162 ms without, for the
	 *    unfiltered summaries (psql, 1M rows, alternating); filtered ones
	 *    never reach the threshold. The write path turns it off too.
	 */
	[ST_READ_SETUP] = { "hx_read_setup",
	                    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
	                    "set_config('statement_timeout', coalesce($1, "
	                    "current_setting('statement_timeout')), true), "
	                    "set_config('transaction_read_only', 'on', true), "
	                    "set_config('jit', 'off', true)" },
	/* Without GROUP BY an aggregate returns its one row even over no rows. */
	[ST_SUM_NONE] = { "hx_sum_none", "SELECT " SUM_COLS },
	[ST_SUM_PROVIDER] = { "hx_sum_provider",
	                      "SELECT s.provider, " SUM_COLS
	                      " GROUP BY s.provider ORDER BY s.provider" },
	[ST_SUM_GPU_TYPE] = { "hx_sum_gpu_type",
	                      "SELECT s.gpu_type, " SUM_COLS
	                      " GROUP BY s.gpu_type ORDER BY s.gpu_type" },
	/* to_char, not ::text: the latter follows the server's DateStyle. */
	[ST_SUM_DATE] = { "hx_sum_date",
	                  "SELECT to_char(s.date, 'YYYY-MM-DD'), " SUM_COLS
	                  " GROUP BY s.date ORDER BY s.date" },
	[ST_SUM_PROVIDER_GPU_TYPE] = { "hx_sum_provider_gpu_type",
	                               "SELECT s.provider, s.gpu_type, " SUM_COLS
	                               " GROUP BY s.provider, s.gpu_type "
	                               "ORDER BY s.provider, s.gpu_type" },
};

/* ---- Health -------------------------------------------------------------------- */

/* A round trip only when the database has not answered on this connection
 * for a second, or some store has lost its own since (store_conn.c). */
hx_status
hx_store_ping(hx_store *s)
{
	if (s == NULL) {
		return HX_UNAVAILABLE;
	}
	if (hx_store_trusted(s)) {
		return HX_OK;
	}
	return hx_store_exec_first(s, "SELECT 1", "ping", NULL, 0) == HX_OK ? HX_OK
	                                                                    : HX_UNAVAILABLE;
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
	return hx_store_exec_first(s, "SELECT set_config('statement_timeout', '1000', false)",
	                           "check", err, errsz);
}

/* ---- result cells -------------------------------------------------------- */

/* A summary's rows and, behind them, their text, in one block. */
typedef struct sum_block {
	char *p, *end; /* the text not yet written */
} sum_block;

/* Text the block needs for the rows of r: every cell with its NUL and
 * the 3 characters normalising can add ("5" -> "5.00"), and a quotient a
 * row. */
static size_t
sum_text_size(const PGresult *r)
{
	int    nt = PQntuples(r), nf = PQnfields(r);
	size_t n = (size_t) nt * HX_MONEY_TEXT_MAX;

	for (int i = 0; i < nt; i++) {
		for (int j = 0; j < nf; j++) {
			n += (size_t) PQgetlength(r, i, j) + 4;
		}
	}
	return n;
}

/* A text cell copied into the block; NULL when it does not fit. */
static const char *
put_text(sum_block *b, const PGresult *r, int row, int col)
{
	size_t len = (size_t) PQgetlength(r, row, col);
	char  *at = b->p;

	if (len >= (size_t) (b->end - at)) {
		return NULL;
	}
	memcpy(at, PQgetvalue(r, row, col), len);
	at[len] = '\0';
	b->p += len + 1;
	return at;
}

/* A numeric cell as money text ("51185.190000" -> "51185.19"); NULL as
 * if_null. NULL when it is not a number or does not fit. */
static const char *
put_money(sum_block *b, const PGresult *r, int row, int col, const char *if_null)
{
	char *at = b->p;

	if (PQgetisnull(r, row, col)) {
		return if_null;
	}
	if (hx_money_normalize_text(PQgetvalue(r, row, col), at, (size_t) (b->end - at)) != 0) {
		return NULL;
	}
	b->p += strlen(at) + 1;
	return at;
}

/* num / den to 4 places, exactly; "" when either is NULL or den is 0. */
static const char *
put_quotient(sum_block *b, const PGresult *r, int row, int num, int den)
{
	char *at = b->p;
	int   rc;

	if (PQgetisnull(r, row, num) || PQgetisnull(r, row, den)) {
		return "";
	}
	rc = hx_money_div_text(PQgetvalue(r, row, num), PQgetvalue(r, row, den), 4, at,
	                       (size_t) (b->end - at));
	if (rc != 0) {
		return rc == 1 ? "" : NULL;
	}
	b->p += strlen(at) + 1;
	return at;
}

/* ---- summary --------------------------------------------------------------- */

/* Filters are compared like ingested names: trimmed, ASCII lower-cased.
 * Returns NULL (no filter) for NULL or blank text. */
static const char *
norm_filter(const char *in, char *buf, size_t bufsz, bool lower)
{
	size_t len;

	if (in == NULL) {
		return NULL;
	}
	len = strlen(in);
	hx_text_trim(&in, &len);
	if (len == 0) {
		return NULL;
	}
	if (len >= bufsz) {
		len = bufsz - 1; /* longer than any stored name: still matches none */
	}
	memcpy(buf, in, len);
	buf[len] = '\0';
	if (lower) {
		hx_text_lower(buf, len);
	}
	return buf;
}

/* Fills one row from row i of r; false when a cell is missing or malformed. */
static bool
sum_row(sum_block *b, const PGresult *r, int i, unsigned keys, hx_store_sum_row *row)
{
	int k = 0; /* the next column */

	row->date = (keys & KEY_DATE) != 0 ? put_text(b, r, i, k++) : "";
	row->provider = (keys & KEY_PROVIDER) != 0 ? put_text(b, r, i, k++) : "";
	row->gpu_type = (keys & KEY_GPU_TYPE) != 0 ? put_text(b, r, i, k++) : "";
	row->total_usd = put_money(b, r, i, k + 1, "0.00");
	row->avg_usd = put_money(b, r, i, k + 2, "");
	row->min_usd = put_money(b, r, i, k + 3, "");
	row->max_usd = put_money(b, r, i, k + 4, "");
	row->gpu_hours = put_money(b, r, i, k + 5, "");
	row->usd_per_gpu_hour = put_quotient(b, r, i, k + 6, k + 5);
	return hx_store_cell_u64(r, i, k, &row->records) && row->date != NULL &&
	    row->provider != NULL && row->gpu_type != NULL && row->total_usd != NULL &&
	    row->avg_usd != NULL && row->min_usd != NULL && row->max_usd != NULL &&
	    row->gpu_hours != NULL && row->usd_per_gpu_hour != NULL;
}

static hx_status
summary_rows(const PGresult *r, hx_group_by g, hx_store_sum_row **rows, size_t *n, char *err,
             size_t errsz)
{
	int               nt = PQntuples(r), i;
	unsigned          keys = sum_keys[g];
	size_t            head = (nt > 0 ? (size_t) nt : 1) * sizeof(hx_store_sum_row);
	size_t            text = sum_text_size(r);
	hx_store_sum_row *out;
	sum_block         b;

	if (PQnfields(r) != __builtin_popcount(keys) + SUM_NCOLS) {
		hx_errf_line(err, errsz, "summary: %d columns", PQnfields(r));
		return HX_INTERNAL;
	}
	if ((out = malloc(head + text)) == NULL) {
		hx_errf_line(err, errsz, "summary: out of memory");
		return HX_RESOURCE_EXHAUSTED;
	}
	b.p = (char *) out + head;
	b.end = b.p + text;
	for (i = 0; i < nt; i++) {
		if (!sum_row(&b, r, i, keys, &out[i])) {
			free(out);
			hx_errf_line(err, errsz, "summary: malformed row %d", i);
			return HX_INTERNAL;
		}
	}
	*rows = out;
	*n = (size_t) nt;
	return HX_OK;
}

/* The summary's parameters, as text. */
typedef struct sum_params {
	char        timeout[16];
	char        from[HX_DATE_LEN + 8], to[HX_DATE_LEN + 8];
	char        prov[HX_NAME_MAX + 2], gpu[HX_NAME_MAX + 2];
	const char *tvals[1];
	const char *vals[4];
} sum_params;

static void
sum_params_init(sum_params *p, const hx_summary_query *q, uint32_t timeout_ms)
{
	snprintf(p->timeout, sizeof(p->timeout), "%" PRIu32, timeout_ms);
	p->tvals[0] = timeout_ms != 0 ? p->timeout : NULL;
	p->vals[0] = norm_filter(q->from_date, p->from, sizeof(p->from), false);
	p->vals[1] = norm_filter(q->to_date, p->to, sizeof(p->to), false);
	p->vals[2] = norm_filter(q->provider, p->prov, sizeof(p->prov), true);
	p->vals[3] = norm_filter(q->gpu_type, p->gpu, sizeof(p->gpu), true);
}

/*
 * One round trip: the settings and the query (each with its preparation
 * on a connection's first use) and one Sync, no BEGIN or COMMIT - the
 * statements up to a Sync are one implicit transaction. Four round trips
 * (BEGIN, settings, query, COMMIT) had made small filtered summaries
 * 0.57-0.94x as fast as the same SQL run bare (issue 7).
 */
static hx_status
summary_pipeline(hx_store *s, const sum_params *p, enum stmt id, PGresult **out, int *failed_at,
                 char *err, size_t errsz)
{
	hx_store_pl pl;
	hx_status   st;

	hx_store_pl_init(&pl);
	(void) hx_store_pl_stmt(&pl, s, &stmts[ST_READ_SETUP], 1, p->tvals, NULL, NULL);
	pl.keep_at = hx_store_pl_stmt(&pl, s, &stmts[id], 4, p->vals, NULL, NULL);
	st = hx_store_pl_run(s, &pl, failed_at, err, errsz);
	if (st != HX_OK && strncmp(pl.state, "22", 2) == 0) {
		/* A filter the database cannot read as a date is the caller's
		 * mistake. */
		char why[256];

		snprintf(why, sizeof(why), "%s", err != NULL ? err : "");
		hx_errf_line(err, errsz, "summary: %s", why);
		st = HX_INVALID_ARGUMENT;
	}
	*out = pl.keep;
	return st;
}

hx_status
hx_store_summary(hx_store *s, const hx_summary_query *q, uint32_t timeout_ms,
                 hx_store_sum_row **rows, size_t *n, char *err, size_t errsz)
{
	sum_params p;
	PGresult  *r = NULL;
	hx_status  st;
	bool       fresh;
	int        attempt, failed_at;

	if (rows != NULL) {
		*rows = NULL;
	}
	if (n != NULL) {
		*n = 0;
	}
	if (s == NULL || q == NULL || rows == NULL || n == NULL ||
	    (unsigned) q->group_by > (unsigned) HX_GROUP_PROVIDER_GPU_TYPE) {
		hx_errf_line(err, errsz, "summary: bad arguments");
		return HX_INVALID_ARGUMENT;
	}
	sum_params_init(&p, q, timeout_ms);
	/* A connection the server dropped while we were idle is only found out
	 * by the first message; nothing ran, so one more try on a new
	 * connection is safe (as hx_store_exec_first). */
	for (attempt = 0;; attempt++) {
		failed_at = -1;
		st = hx_store_ensure(s, &fresh, err, errsz);
		if (st == HX_OK) {
			st = summary_pipeline(s, &p, (enum stmt)(ST_SUM_NONE + (int) q->group_by),
			                      &r, &failed_at, err, errsz);
		}
		if (st != HX_UNAVAILABLE || failed_at != 0 || fresh || attempt > 0) {
			break;
		}
	}
	if (st == HX_OK) {
		st = summary_rows(r, q->group_by, rows, n, err, errsz);
	}
	PQclear(r);
	return st;
}

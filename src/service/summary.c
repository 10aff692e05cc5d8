/*
 * summary.c - the Summary method: the query's filters checked like a
 * record's fields, then one store call, its rows handed to the reply
 * without a copy of their strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method.h"

typedef Heliox__Ingest__V1__SummaryRow SummaryRow;

/* One optional filter: "" is no filter; anything else must pass `check`,
 * and then *dst points at its normalised form in buf. */
static void
filter(hx_call *c, const char *field, const char *in, char *buf,
       const char *(*check)(const hx_raw_value *, char *), const char **dst)
{
	hx_raw_value v = { HX_RAW_STRING, in, strlen(in) };
	const char  *why;

	if (v.len == 0)
		return;
	if ((why = check(&v, buf)) != NULL)
		hx_violations_add(&c->viol, field, "%s", why);
	else
		*dst = buf;
}

/* Hands the store's rows to the reply: one block holds the pointer array
 * and the messages, whose strings point into c->rows. protobuf-c's string
 * fields are char *, but packing only reads them: hence the casts. */
static void
set_result(hx_call *c, hx_store_sum_row *rows, size_t n)
{
	/* sizeof(*ptrs): the array of pointers, which tidy takes for a mistake. */
	SummaryRow **ptrs = calloc(
	    n ? n : 1, sizeof(*ptrs) + sizeof(SummaryRow)); // NOLINT(bugprone-sizeof-expression)
	SummaryRow *msgs;

	c->rows = rows;
	if (ptrs == NULL) {
		hx_call_fail(c, HX_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	msgs = (SummaryRow *) (void *) (ptrs + n); /* after the check: NULL + n is undefined */
	for (size_t i = 0; i < n; i++) {
		heliox__ingest__v1__summary_row__init(&msgs[i]);
		msgs[i].date = (char *) rows[i].date;
		msgs[i].provider = (char *) rows[i].provider;
		msgs[i].gpu_type = (char *) rows[i].gpu_type;
		msgs[i].records = rows[i].records;
		msgs[i].total_usd = (char *) rows[i].total_usd;
		msgs[i].avg_usd = (char *) rows[i].avg_usd;
		msgs[i].min_usd = (char *) rows[i].min_usd;
		msgs[i].max_usd = (char *) rows[i].max_usd;
		msgs[i].gpu_hours = (char *) rows[i].gpu_hours;
		msgs[i].usd_per_gpu_hour = (char *) rows[i].usd_per_gpu_hour;
		ptrs[i] = &msgs[i];
	}
	heliox__ingest__v1__summary_result__init(&c->summary);
	c->summary.rows = ptrs;
	c->summary.n_rows = n;
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY;
}

void
hx_method_summary(hx_call *c, const Heliox__Ingest__V1__SummaryRequest *s)
{
	char              from[HX_DATE_LEN + 1], to[HX_DATE_LEN + 1];
	char              provider[HX_NAME_MAX + 1], gpu[HX_NAME_MAX + 1], err[512] = "";
	hx_summary_query  q = { .group_by = (hx_group_by) s->group_by };
	hx_store_sum_row *rows = NULL;
	size_t            n = 0;
	uint32_t          ms;

	filter(c, "from_date", s->from_date, from, hx_check_date, &q.from_date);
	filter(c, "to_date", s->to_date, to, hx_check_date, &q.to_date);
	filter(c, "provider", s->provider, provider, hx_check_name, &q.provider);
	filter(c, "gpu_type", s->gpu_type, gpu, hx_check_name, &q.gpu_type);
	if (hx_group_by_name(q.group_by) == NULL)
		hx_violations_add(&c->viol, "group_by", "is not a known grouping");
	if (c->viol.total > 0) {
		hx_call_fail(c, HX_INVALID_ARGUMENT, "invalid summary query");
		return;
	}
	if (c->store == NULL) {
		hx_call_fail(c, HX_UNAVAILABLE, "database unavailable");
		return;
	}
	if (!hx_call_remaining_ms(c, &ms))
		return;
	hx_status st = hx_store_summary(c->store, &q, ms, &rows, &n, err, sizeof(err));
	if (st != HX_OK) {
		free(rows);
		hx_call_store_failed(c, "summary", st, err);
		return;
	}
	set_result(c, rows, n);
	snprintf(c->detail, sizeof(c->detail), "group_by=%s rows=%zu", hx_group_by_name(q.group_by),
	         n);
}

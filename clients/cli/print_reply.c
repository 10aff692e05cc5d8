/*
 * print_reply.c - heliox-ingest's output for a single call (health,
 * summary, ingest --mock): readable text, or one JSON object.
 *
 * Text: a result goes to stdout, an error (and its violations) to stderr, so
 * that `heliox-ingest summary > costs.txt` never captures an error message.
 * JSON: exactly one object on stdout whatever happened, with every key
 * present, so scripts can read fields without checking for them first. Money
 * stays decimal text in both: it never passes through a double.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "output.h"
#include "print.h"

/* ---- text --------------------------------------------------------------- */

static void
print_error(const hx_reply *r)
{
	fprintf(stderr, "error: %s", hx_status_name(r->code));
	if (r->message[0] != '\0') {
		fprintf(stderr, ": %s", r->message);
	}
	if (r->request_id[0] != '\0') {
		fprintf(stderr, "  [request_id=%s]", r->request_id);
	}
	fputc('\n', stderr);
	cli_text_violations(stderr, r->violations, r->n_violations, r->n_violations);
}

static void
print_ingest(const hx_reply *r)
{
	const hx_ingest_result *g = &r->ingest;

	printf("ingest: %s  request_id=%s  received=%u inserted=%u updated=%u unchanged=%u "
	       "failed=%u deleted=%u  (%.1f ms)%s%s\n",
	       hx_status_name(r->code), r->request_id, g->received, g->inserted, g->updated,
	       g->unchanged, g->failed, g->deleted, (double) g->duration_us / 1000.0,
	       g->dry_run ? "  [dry run: nothing written]" : "",
	       g->replayed ? "  [replayed: answered from the earlier run]" : "");
	/* With --skip-invalid the call succeeds and names what it skipped. */
	cli_text_violations(stdout, r->violations, r->n_violations, r->n_violations);
}

static void
print_health(const hx_reply *r)
{
	const hx_health_result *h = &r->health;

	printf("%s  database %s  version %s  up %llu s\n", h->serving ? "serving" : "not serving",
	       h->database_ok ? "ok" : "DOWN", h->version[0] != '\0' ? h->version : "?",
	       (unsigned long long) h->uptime_s);
}

/* ---- the summary table -------------------------------------------------- */

enum {
	COL_DATE,
	COL_PROVIDER,
	COL_GPU,
	COL_RECORDS,
	COL_TOTAL,
	COL_AVG,
	COL_MIN,
	COL_MAX,
	COL_GPU_HOURS,
	COL_PER_HOUR,
	NCOLS
};

static const char *const col_names[NCOLS] = {
	"date",    "provider", "gpu_type", "records",   "total_usd",
	"avg_usd", "min_usd",  "max_usd",  "gpu_hours", "usd_per_gpu_hour",
};

/* The key columns shown are those the rows were grouped by. */
static void
shown_columns(hx_group_by g, bool show[NCOLS])
{
	int i;

	for (i = 0; i < NCOLS; i++) {
		show[i] = i >= COL_RECORDS;
	}
	show[COL_DATE] = g == HX_GROUP_DATE;
	show[COL_PROVIDER] = g == HX_GROUP_PROVIDER || g == HX_GROUP_PROVIDER_GPU_TYPE;
	show[COL_GPU] = g == HX_GROUP_GPU_TYPE || g == HX_GROUP_PROVIDER_GPU_TYPE;
}

/* One row's cells as text; `num` holds the formatted record count. An empty
 * amount (a group with no records) shows as "-". */
static void
row_cells(const hx_summary_row *row, char num[24], const char *cell[NCOLS])
{
	snprintf(num, 24, "%llu", (unsigned long long) row->records);
	cell[COL_DATE] = row->date;
	cell[COL_PROVIDER] = row->provider;
	cell[COL_GPU] = row->gpu_type;
	cell[COL_RECORDS] = num;
	cell[COL_TOTAL] = row->total_usd[0] != '\0' ? row->total_usd : "-";
	cell[COL_AVG] = row->avg_usd[0] != '\0' ? row->avg_usd : "-";
	cell[COL_MIN] = row->min_usd[0] != '\0' ? row->min_usd : "-";
	cell[COL_MAX] = row->max_usd[0] != '\0' ? row->max_usd : "-";
	/* "-": no GPU-hours known in the group (or they sum to 0). */
	cell[COL_GPU_HOURS] = row->gpu_hours[0] != '\0' ? row->gpu_hours : "-";
	cell[COL_PER_HOUR] = row->usd_per_gpu_hour[0] != '\0' ? row->usd_per_gpu_hour : "-";
}

/* Names left-aligned, numbers right-aligned, two spaces between columns. */
static void
print_line(const bool show[NCOLS], const int width[NCOLS], const char *const cell[NCOLS])
{
	const char *sep = "";
	int         i;

	for (i = 0; i < NCOLS; i++) {
		if (!show[i]) {
			continue;
		}
		if (i < COL_RECORDS) {
			printf("%s%-*s", sep, width[i], cell[i]);
		} else {
			printf("%s%*s", sep, width[i], cell[i]);
		}
		sep = "  ";
	}
	putchar('\n');
}

static void
print_summary(const cli_args *a, const hx_reply *r)
{
	const char *cell[NCOLS];
	bool        show[NCOLS];
	int         width[NCOLS];
	char        num[24];
	size_t      i;
	int         j;

	if (r->n_rows == 0) {
		printf("no records match\n");
		return;
	}
	shown_columns(a->query.group_by, show);
	for (j = 0; j < NCOLS; j++) {
		width[j] = (int) strlen(col_names[j]);
	}
	for (i = 0; i < r->n_rows; i++) {
		row_cells(&r->rows[i], num, cell);
		for (j = 0; j < NCOLS; j++) {
			if ((int) strlen(cell[j]) > width[j]) {
				width[j] = (int) strlen(cell[j]);
			}
		}
	}
	print_line(show, width, col_names);
	for (i = 0; i < r->n_rows; i++) {
		row_cells(&r->rows[i], num, cell);
		print_line(show, width, cell);
	}
}

static void
print_text(const cli_args *a, const hx_reply *r)
{
	if (r->code != HX_OK) {
		print_error(r);
		return;
	}
	switch (r->kind) {
	case HX_RESULT_INGEST:
		print_ingest(r);
		break;
	case HX_RESULT_HEALTH:
		print_health(r);
		break;
	case HX_RESULT_SUMMARY:
		print_summary(a, r);
		break;
	default:
		/* OK without a result: an empty summary, or a server that
		 * answered with nothing more to say. */
		if (a->cmd == CLI_CMD_SUMMARY) {
			print_summary(a, r);
		} else {
			printf("%s: OK  request_id=%s\n", cli_cmd_name(a->cmd), r->request_id);
		}
		break;
	}
}

/* ---- JSON --------------------------------------------------------------- */

/* cJSON numbers are doubles: exact for every count below 2^53. */
static void
json_ingest(cJSON *o, const hx_ingest_result *g)
{
	cJSON_AddNumberToObject(o, "received", g->received);
	cJSON_AddNumberToObject(o, "inserted", g->inserted);
	cJSON_AddNumberToObject(o, "updated", g->updated);
	cJSON_AddNumberToObject(o, "unchanged", g->unchanged);
	cJSON_AddNumberToObject(o, "failed", g->failed);
	cJSON_AddNumberToObject(o, "deleted", g->deleted);
	cJSON_AddNumberToObject(o, "duration_us", (double) g->duration_us);
	cJSON_AddBoolToObject(o, "replayed", g->replayed);
	cJSON_AddBoolToObject(o, "dry_run", g->dry_run);
}

static void
json_health(cJSON *o, const hx_health_result *h)
{
	cJSON_AddBoolToObject(o, "serving", h->serving);
	cJSON_AddBoolToObject(o, "database_ok", h->database_ok);
	cJSON_AddStringToObject(o, "version", h->version);
	cJSON_AddNumberToObject(o, "uptime_s", (double) h->uptime_s);
}

static void
json_rows(cJSON *o, const hx_reply *r)
{
	cJSON *rows = cJSON_AddArrayToObject(o, "rows");
	cJSON *row;
	size_t i;

	for (i = 0; rows != NULL && i < r->n_rows; i++) {
		const hx_summary_row *s = &r->rows[i];

		if ((row = cJSON_CreateObject()) == NULL) {
			return;
		}
		cJSON_AddItemToArray(rows, row);
		cJSON_AddStringToObject(row, "date", s->date);
		cJSON_AddStringToObject(row, "provider", s->provider);
		cJSON_AddStringToObject(row, "gpu_type", s->gpu_type);
		cJSON_AddNumberToObject(row, "records", (double) s->records);
		cJSON_AddStringToObject(row, "total_usd", s->total_usd);
		cJSON_AddStringToObject(row, "avg_usd", s->avg_usd);
		cJSON_AddStringToObject(row, "min_usd", s->min_usd);
		cJSON_AddStringToObject(row, "max_usd", s->max_usd);
		cJSON_AddStringToObject(row, "gpu_hours", s->gpu_hours);
		cJSON_AddStringToObject(row, "usd_per_gpu_hour", s->usd_per_gpu_hour);
	}
}

static void
print_json(const cli_args *a, const hx_reply *r)
{
	cJSON *o = cli_json_reply(r->code, r->message, r->request_id);

	if (o == NULL) {
		return;
	}
	if (r->kind == HX_RESULT_INGEST) {
		json_ingest(o, &r->ingest);
	} else if (r->kind == HX_RESULT_HEALTH) {
		json_health(o, &r->health);
	} else if (r->kind == HX_RESULT_SUMMARY ||
	           (a->cmd == CLI_CMD_SUMMARY && r->code == HX_OK)) {
		json_rows(o, r);
	}
	cli_json_violations(o, r->violations, r->n_violations);
	cli_json_emit(o);
}

void
cli_print_reply(const cli_args *a, const hx_reply *r)
{
	if (a->json) {
		print_json(a, r);
	} else {
		print_text(a, r);
	}
	fflush(stdout);
}

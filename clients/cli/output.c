/*
 * output.c - the output primitives every heliox-ingest command shares (see
 * output.h): the one JSON object, violations as text and as JSON, and the
 * failures found here rather than by the server.
 */
#include <stdarg.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "base/errf.h"

#include "cli.h"
#include "output.h"

/* Set once, first thing (cli_output_json), before any error can be found. */
static bool json_out;

/* cli_json_hold .. cli_json_take: the object cli_json_emit kept. */
static bool   holding;
static cJSON *held;

void
cli_output_json(bool on)
{
	json_out = on;
}

cJSON *
cli_json_reply(hx_status code, const char *message, const char *request_id)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL) {
		fputs(CLI_NAME ": out of memory\n", stderr);
		return NULL;
	}
	cJSON_AddStringToObject(o, "code", hx_status_name(code));
	cJSON_AddStringToObject(o, "message", message);
	cJSON_AddStringToObject(o, "request_id", request_id);
	return o;
}

void
cli_json_emit(cJSON *o)
{
	char *s;

	if (holding && held == NULL) {
		held = o;
		return;
	}
	if ((s = cJSON_PrintUnformatted(o)) == NULL) {
		fputs(CLI_NAME ": out of memory\n", stderr);
	} else {
		/* stdout carries one object; none emits two, but one never hides another */
		fprintf(holding ? stderr : stdout, "%s\n", s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
}

void
cli_json_hold(void)
{
	holding = true;
}

cJSON *
cli_json_take(void)
{
	cJSON *o = held;

	holding = false;
	held = NULL;
	return o;
}

void
cli_json_violations(cJSON *o, const hx_violation *items, size_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(o, "violations");
	cJSON *v;
	size_t i;

	for (i = 0; arr != NULL && i < n; i++) {
		if ((v = cJSON_CreateObject()) == NULL) {
			return;
		}
		cJSON_AddItemToArray(arr, v);
		cJSON_AddStringToObject(v, "field", items[i].field);
		cJSON_AddStringToObject(v, "description", items[i].description);
	}
}

void
cli_text_violations(FILE *f, const hx_violation *items, size_t n, size_t total)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fprintf(f, "  %s: %s\n", items[i].field, items[i].description);
	}
	if (total > n) {
		fprintf(f, "  ... and %zu more (%zu violations in all)\n", total - n, total);
	}
}

/*
 * A failure found here, before or without any call (a usage error, a file
 * that cannot be read, a client that cannot open): with --json it is still
 * the one JSON object on stdout a script reads, and the text still goes to
 * stderr for the person watching.
 */
static void
json_local_error(hx_status code, const char *message, bool usage)
{
	cJSON *o = cli_json_reply(code, message, "");

	if (o == NULL) {
		return;
	}
	if (usage) {
		cJSON_AddStringToObject(o, "error", "usage");
	}
	cJSON_AddArrayToObject(o, "violations");
	cli_json_emit(o);
}

int
cli_usage_error(const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_NAME ": %s\nTry '" CLI_NAME " --help' for more information.\n", msg);
	if (json_out) {
		json_local_error(HX_INVALID_ARGUMENT, msg, true);
	}
	return (CLI_EXIT_USAGE);
}

int
cli_local_error(hx_status code, int exit_status, const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_NAME ": %s\n", msg);
	if (json_out) {
		json_local_error(code, msg, exit_status == CLI_EXIT_USAGE);
	}
	return (exit_status);
}

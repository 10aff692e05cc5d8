/*
 * cli.h - internal to the heliox-ingest command: the parsed command line and
 * the output functions (cli_print.c) that cli.c calls.
 */
#ifndef HELIOX_CLI_H
#define HELIOX_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "heliox/client.h"

#include "stream_ingest.h"

#define CLI_NAME     "heliox-ingest"
#define CLI_MAX_URLS 16

/* Exit statuses (contract section 7). */
enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_OTHER = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_INVALID = 3,
	CLI_EXIT_AUTH = 4,
	CLI_EXIT_UNAVAILABLE = 5,
};

typedef enum cli_cmd {
	CLI_CMD_NONE = 0,
	CLI_CMD_INGEST,
	CLI_CMD_HEALTH,
	CLI_CMD_SUMMARY,
} cli_cmd;

typedef struct cli_args {
	/* global */
	const char *urls[CLI_MAX_URLS];
	size_t      n_urls;
	const char *api_key;
	const char *api_key_file;
	uint32_t    timeout_ms;
	uint32_t    retry_window_ms;
	bool        json;
	bool        help;
	bool        help_word; /* "help [COMMAND]" */
	bool        version;
	const char *tls_ca;
	const char *tls_server_name;
	const char *request_id;
	cli_cmd     cmd;
	/* ingest */
	bool        mock;
	bool        dry_run;
	bool        skip_invalid;
	const char *file;
	size_t      batch;    /* ingest FILE: records a request */
	unsigned    inflight; /* ingest FILE: requests outstanding at once */
	bool        batch_set, inflight_set;
	/* summary */
	hx_summary_query query;
} cli_args;

/* The command's name as typed ("ingest"). */
const char *cli_cmd_name(cli_cmd cmd);

/* The exit status for a call's (or a run's) status. */
int cli_exit_status(hx_status st);

/* Prints the result of `ingest FILE` (stream_print.c), text or --json. */
void cli_print_stream(const cli_args *a, const stream_report *r);

/* Prints the reply: a readable form (results to stdout, errors to stderr),
 * or with --json exactly one JSON object on stdout. */
void cli_print_reply(const cli_args *a, const hx_reply *r);

/* Adds "violations": [{field, description}, ...] to a JSON object o
 * (a cJSON *, kept opaque here so cli.h needs no cJSON header). */
struct cJSON;
void cli_json_emit(struct cJSON *o);

/* --json: the one object for a failure found locally (usage error, missing
 * file, client not opened): code, message, request_id "", violations []. */
void cli_json_local_error(hx_status code, const char *message, bool usage);
void cli_json_violations(struct cJSON *o, const hx_violation *items, size_t n);

#endif /* HELIOX_CLI_H */

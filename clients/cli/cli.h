/*
 * cli.h - what every file of the heliox-ingest command shares: the parsed
 * command line, its exit statuses, and the small pure helpers of
 * cli_common.c.
 *
 * The files of the command, lowest first (each calls only those above it):
 *
 *   cli_common.c   command names, exit statuses, request ids
 *   output.c       the output primitives: one JSON object, violations,
 *                  local errors (text on stderr, JSON on stdout)
 *   print_reply.c  a single call's reply, text or JSON
 *   print_stream.c the report of `ingest FILE`, text or JSON
 *   args.c         the command line: help, options, their checks
 *   apikey.c       the API key: flag, key file or environment
 *   cmd_ingest.c, cmd_health.c, cmd_summary.c   one command each
 *   main.c         the order of it all
 *
 * cmd_convert.c (the billing commands) sits in front of main.c's own
 * commands and uses only what is declared here and in output.h (its --json
 * answer adds to the object the JSON ingest emits).
 */
#ifndef HELIOX_CLI_H
#define HELIOX_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/uuid.h"
#include "heliox/client.h"

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

/* A request id: 36 characters of a UUID and the NUL. */
#define CLI_REQUEST_ID_SIZE HX_UUID_TEXT

/* The command's name as typed ("ingest"); "" for none. */
const char *cli_cmd_name(cli_cmd cmd);

/* The exit status for a call's (or a run's) status. */
int cli_exit_status(hx_status st);

/* The request id of this run: --request-id, else a fresh UUID written to
 * buf. Chosen here rather than by the server: nng resends a request whose
 * connection dropped, and only an id fixed before the first send lets the
 * server recognise the resend of an ingest and replay its result. */
const char *cli_request_id(const cli_args *a, char buf[CLI_REQUEST_ID_SIZE]);

#endif /* HELIOX_CLI_H */

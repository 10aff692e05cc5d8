/*
 * output.h - the output primitives of heliox-ingest, shared by the printers
 * and by every place that fails before or without a call.
 *
 * Text goes to stderr for errors and stdout for results; with --json
 * exactly one JSON object goes to stdout whatever happened, so a script
 * reads fields without checking for them first.
 */
#ifndef HELIOX_CLI_OUTPUT_H
#define HELIOX_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "heliox/client.h"

/* cJSON is kept opaque here so that only the printers need its header. */
struct cJSON;

/* Whether local errors also come out as the one JSON object. Set before
 * anything is parsed: a usage error found before --json was reached must
 * still come out as JSON. */
void cli_output_json(bool on);

/* "usage error" on stderr with the hint to --help (and the JSON object with
 * "error": "usage"). Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A local failure that is not the caller's typing: text on stderr, and with
 * --json the one object on stdout. Returns `exit_status`. */
int cli_local_error(hx_status code, int exit_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "  field: description" per violation, then "... and N more" when `total`
 * counts more than the `n` kept. */
void cli_text_violations(FILE *f, const hx_violation *items, size_t n, size_t total);

/* Adds "violations": [{field, description}, ...] to the JSON object o. */
void cli_json_violations(struct cJSON *o, const hx_violation *items, size_t n);

/* A new reply object with "code", "message" and "request_id", the fields
 * every --json answer starts with; NULL (said on stderr) when out of memory. */
struct cJSON *cli_json_reply(hx_status code, const char *message, const char *request_id);

/* Prints o as one line of JSON on stdout and frees it; while held (below),
 * keeps the first o for cli_json_take instead, and a second goes to stderr. */
void cli_json_emit(struct cJSON *o);

/* Until cli_json_take: a command that runs another (the billing commands
 * run the JSON ingest) adds its fields to that one's object rather than
 * printing a second. */
void cli_json_hold(void);

/* Ends the hold; the object emitted meanwhile, or NULL. The caller owns it. */
struct cJSON *cli_json_take(void);

#endif /* HELIOX_CLI_OUTPUT_H */

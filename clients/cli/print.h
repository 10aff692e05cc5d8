/*
 * print.h - heliox-ingest's two printers: a single call's reply
 * (print_reply.c) and the report of `ingest FILE` (print_stream.c). They
 * depend on the data they print and on output.h, never on the commands.
 */
#ifndef HELIOX_CLI_PRINT_H
#define HELIOX_CLI_PRINT_H

#include "heliox/client.h"

#include "cli.h"
#include "stream_ingest.h"

/* Prints the reply: a readable form (results to stdout, errors to stderr),
 * or with --json exactly one JSON object on stdout. */
void cli_print_reply(const cli_args *a, const hx_reply *r);

/* Prints the result of `ingest FILE`, text or --json. */
void cli_print_stream(const cli_args *a, const stream_report *r);

#endif /* HELIOX_CLI_PRINT_H */

/*
 * args.h - heliox-ingest's command line (args.c). Each function that fails
 * has already said why (output.h) and returns the exit status.
 */
#ifndef HELIOX_CLI_ARGS_H
#define HELIOX_CLI_ARGS_H

#include <stdbool.h>

#include "cli.h"

/* --json anywhere before a "--": known before any other word is read. */
bool cli_json_prescan(int argc, char **argv);

/* Fills *a from argv. Returns 0, or CLI_EXIT_USAGE. */
int cli_parse_args(cli_args *a, int argc, char **argv);

/* The defaults the environment gives ($HELIOX_URL). */
void cli_apply_env(cli_args *a);

/* What the options say must hold together; checked after all are read and
 * the key is known. Returns 0, or CLI_EXIT_USAGE. */
int cli_check_args(const cli_args *a);

/* The help for the command (CLI_CMD_NONE: the global help), on stdout. */
void cli_print_help(cli_cmd cmd);

#endif /* HELIOX_CLI_ARGS_H */

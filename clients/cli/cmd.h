/*
 * cmd.h - heliox-ingest's own commands, one file each. Each makes its call
 * on an open client, prints the outcome (print.h) and returns the exit
 * status.
 */
#ifndef HELIOX_CLI_CMD_H
#define HELIOX_CLI_CMD_H

#include "heliox/client.h"

#include "cli.h"

int cli_cmd_ingest(const cli_args *a, hx_client *c);  /* cmd_ingest.c */
int cli_cmd_health(const cli_args *a, hx_client *c);  /* cmd_health.c */
int cli_cmd_summary(const cli_args *a, hx_client *c); /* cmd_summary.c */

#endif /* HELIOX_CLI_CMD_H */

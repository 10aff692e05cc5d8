/*
 * cmd_convert.h - the billing commands (convert, ingest of billing files,
 * sync) in front of the CLI's own command handling.
 */
#ifndef HELIOX_CMD_CONVERT_H
#define HELIOX_CMD_CONVERT_H

typedef int (*cli_main_fn)(int argc, char **argv);

/* Runs convert / sync / ingest of billing files itself and hands everything
 * else (and converted documents) to cli_main. Returns the exit status. */
int cli_bill_main(int argc, char **argv, cli_main_fn cli_main);

#endif

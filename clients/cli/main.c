/*
 * main.c - heliox-ingest, the command-line client of the Heliox ingest
 * service: the order of a run. The billing commands (cmd_convert.c) see the
 * command line first and hand the rest to run_command; that parses it
 * (args.c), finds the key (apikey.c), opens a client and runs one command
 * (cmd_*.c), which prints its outcome and gives the exit status.
 */
#include <stdio.h>
#include <string.h>

#include "apikey.h"
#include "args.h"
#include "cli.h"
#include "cmd.h"
#include "cmd_convert.h"
#include "output.h"

static int
open_client(const cli_args *a, hx_client **c)
{
	hx_client_opts o = {
		.api_key = a->api_key,
		.timeout_ms = a->timeout_ms,
		.tls_ca_file = a->tls_ca,
		.tls_server_name = a->tls_server_name,
		.retry_window_ms = a->retry_window_ms,
	};
	char      err[512];
	hx_status st;

	if ((st = hx_client_open(c, a->urls, a->n_urls, &o, err, sizeof(err))) != HX_OK) {
		return (cli_local_error(
		    st, st == HX_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_OTHER, "%s", err));
	}
	return (0);
}

static int
dispatch(const cli_args *a, hx_client *c)
{
	switch (a->cmd) {
	case CLI_CMD_INGEST:
		return (cli_cmd_ingest(a, c));
	case CLI_CMD_HEALTH:
		return (cli_cmd_health(a, c));
	default:
		return (cli_cmd_summary(a, c));
	}
}

/* Everything but the billing commands (cmd_convert.c runs those first). */
static int
run_command(int argc, char **argv)
{
	cli_args   a = { .timeout_ms = HX_CLIENT_DEFAULT_TIMEOUT_MS,
		         .retry_window_ms = HX_CLIENT_DEFAULT_RETRY_WINDOW_MS };
	hx_client *c = NULL;
	char       keybuf[1024];
	int        rv;

	cli_output_json(cli_json_prescan(argc, argv));
	if ((rv = cli_parse_args(&a, argc, argv)) != 0) {
		return (rv);
	}
	if (a.help || a.version) {
		if (a.help) {
			cli_print_help(a.cmd);
		} else {
			printf(CLI_NAME " %s\n", HX_VERSION);
		}
		return (CLI_EXIT_OK);
	}
	cli_apply_env(&a);
	if ((rv = cli_resolve_key(&a, keybuf, sizeof(keybuf))) != 0 ||
	    (rv = cli_check_args(&a)) != 0 || (rv = open_client(&a, &c)) != 0) {
		explicit_bzero(keybuf, sizeof(keybuf));
		return (rv);
	}
	rv = dispatch(&a, c);
	hx_client_close(c);
	explicit_bzero(keybuf, sizeof(keybuf));
	return (rv);
}

int
main(int argc, char **argv)
{
	return (cli_bill_main(argc, argv, run_command));
}

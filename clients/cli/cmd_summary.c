/*
 * cmd_summary.c - `summary`: the stored costs counted and totalled, with
 * the filters and grouping args.c read into a->query.
 */
#include "cmd.h"
#include "print.h"

int
cli_cmd_summary(const cli_args *a, hx_client *c)
{
	char         rid[CLI_REQUEST_ID_SIZE];
	hx_call_opts call = { .request_id = cli_request_id(a, rid), .timeout_ms = a->timeout_ms };
	hx_reply     r = { 0 };
	int          rv;

	hx_client_summary(c, &a->query, &call, &r);
	cli_print_reply(a, &r);
	rv = cli_exit_status(r.code);
	hx_reply_free(&r);
	return (rv);
}

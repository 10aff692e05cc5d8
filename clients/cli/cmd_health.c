/*
 * cmd_health.c - `health`: is the server serving, is its database up.
 */
#include "cmd.h"
#include "print.h"

int
cli_cmd_health(const cli_args *a, hx_client *c)
{
	char         rid[CLI_REQUEST_ID_SIZE];
	hx_call_opts call = { .request_id = cli_request_id(a, rid), .timeout_ms = a->timeout_ms };
	hx_reply     r = { 0 };
	int          rv;

	hx_client_health(c, &call, &r);
	cli_print_reply(a, &r);
	rv = cli_exit_status(r.code);
	hx_reply_free(&r);
	return (rv);
}

/*
 * cli_common.c - the pure helpers every command shares (see cli.h): no
 * output, so that the printers may use them and they never call back.
 */
#include "base/uuid.h"

#include "cli.h"

const char *
cli_cmd_name(cli_cmd cmd)
{
	switch (cmd) {
	case CLI_CMD_INGEST:
		return ("ingest");
	case CLI_CMD_HEALTH:
		return ("health");
	case CLI_CMD_SUMMARY:
		return ("summary");
	default:
		return ("");
	}
}

int
cli_exit_status(hx_status st)
{
	switch (st) {
	case HX_OK:
		return (CLI_EXIT_OK);
	case HX_INVALID_ARGUMENT:
		return (CLI_EXIT_INVALID);
	case HX_UNAUTHENTICATED:
	case HX_PERMISSION_DENIED:
		return (CLI_EXIT_AUTH);
	case HX_UNAVAILABLE:
	case HX_DEADLINE_EXCEEDED:
		return (CLI_EXIT_UNAVAILABLE);
	default:
		return (CLI_EXIT_OTHER);
	}
}

const char *
cli_request_id(const cli_args *a, char buf[CLI_REQUEST_ID_SIZE])
{
	if (a->request_id != NULL) {
		return (a->request_id);
	}
	hx_uuid4(buf);
	return (buf);
}

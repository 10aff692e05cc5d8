/*
 * cmd_ingest.c - `ingest --mock` (one call: the server loads its bundled
 * export) and `ingest FILE` (the streaming engine, clients/stream).
 */
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "output.h"
#include "print.h"
#include "stream_ingest.h"

/*
 * ingest FILE, of any size: streamed and sent in batches (stream_ingest.h).
 * Every file takes this one path, so paths in violations and the output
 * are the same for 28 records and for 28 million.
 */
static int
ingest_file(const cli_args *a, hx_client *c)
{
	stream_opts   o;
	stream_report r;
	char          rid[CLI_REQUEST_ID_SIZE];
	int           rv;

	memset(&o, 0, sizeof(o));
	o.path = a->file;
	o.base_id = cli_request_id(a, rid);
	o.batch_size = a->batch_set ? a->batch : STREAM_DEFAULT_BATCH;
	o.inflight = a->inflight_set ? a->inflight : STREAM_DEFAULT_INFLIGHT;
	o.dry_run = a->dry_run;
	o.skip_invalid = a->skip_invalid;
	o.timeout_ms = a->timeout_ms;
	o.progress = !a->json && isatty(STDERR_FILENO);
	stream_report_init(&r);
	stream_ingest(c, &o, &r);
	if (r.usage_error) {
		/* The caller's mistake, found before anything was sent. */
		rv = cli_local_error(HX_INVALID_ARGUMENT, CLI_EXIT_USAGE, "%s", r.message);
	} else {
		cli_print_stream(a, &r);
		rv = cli_exit_status(r.code);
	}
	stream_report_free(&r);
	return (rv);
}

static int
ingest_mock(const cli_args *a, hx_client *c)
{
	char           rid[CLI_REQUEST_ID_SIZE];
	hx_ingest_opts o = { .call = { .request_id = cli_request_id(a, rid),
		                       .timeout_ms = a->timeout_ms },
		             .dry_run = a->dry_run,
		             .skip_invalid = a->skip_invalid };
	hx_reply       r = { 0 };
	int            rv;

	hx_client_ingest_mock(c, &o, &r);
	cli_print_reply(a, &r);
	rv = cli_exit_status(r.code);
	hx_reply_free(&r);
	return (rv);
}

int
cli_cmd_ingest(const cli_args *a, hx_client *c)
{
	return (a->file != NULL ? ingest_file(a, c) : ingest_mock(a, c));
}

/*
 * args.c - heliox-ingest's command line:
 *
 *   heliox-ingest [global options] COMMAND [command options]
 *
 * The help texts, the option table, and the checks that the options hold
 * together. Options may come before or after the command word: global ones
 * anywhere, a command's own only after its word (so "--dry-run" never means
 * something to a command that was not named yet). Nothing here talks to a
 * server; a mistake is reported through output.h and ends the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"

#include "args.h"
#include "output.h"
#include "stream_ingest.h"

/* A day: longer is surely a typo, and it keeps nng's int32 ms safe. */
#define CLI_MAX_TIMEOUT_MS 86400000u

/* ---- help --------------------------------------------------------------- */

static const char usage_global[] =
    "usage: " CLI_NAME " [options] COMMAND [command options]\n"
    "\n"
    "Talks to a heliox-ingestd server over nng (tcp://, ipc://, tls+tcp://).\n"
    "\n"
    "commands:\n"
    "  ingest --mock | ingest FILE   load a cost export (FILE \"-\" = stdin)\n"
    "  health                        is the server serving, is its database up\n"
    "  summary                       cost totals, optionally grouped\n"
    "  convert FILE...               a billing export (FOCUS, AWS CUR) as a cost\n"
    "                                export document, no server involved\n"
    "  sync DIR                      ingest each export under DIR not yet ingested\n"
    "  help [COMMAND]                this help, or a command's\n"
    "\n"
    "options:\n"
    "  --url URL              server to dial; repeat for several\n"
    "                         (default $HELIOX_URL or " HX_CLIENT_DEFAULT_URL ")\n"
    "  --api-key-file FILE    read the API key from FILE (mode 0600 or stricter;\n"
    "                         default $HELIOX_API_KEY_FILE); a line NAME:KEY\n"
    "                         sends KEY\n"
    "  --api-key KEY          API key (default $ADMIN_API_KEY); visible in ps:\n"
    "                         prefer --api-key-file\n"
    "  --timeout MS           give up after MS milliseconds (default 30000)\n"
    "  --retry-window MS      retry UNAVAILABLE (database away) with back-off\n"
    "                         for up to MS milliseconds (default 30000)\n"
    "  --json                 print one JSON object instead of text\n"
    "  --tls-ca FILE          CA bundle to verify a tls+tcp:// server\n"
    "  --tls-server-name NAME name the server certificate must carry\n"
    "  --request-id ID        request id (default: a fresh UUID); reusing the\n"
    "                         id of a successful ingest replays its result\n"
    "  -h, --help             this help; COMMAND --help for a command's\n"
    "  -V, --version          print the version\n"
    "\n"
    "exit status: 0 OK, 1 other error, 2 usage error, 3 invalid argument,\n"
    "4 unauthenticated / permission denied, 5 unavailable / no answer.\n";

static const char usage_ingest[] =
    "usage: " CLI_NAME " [options] ingest --mock | FILE [--dry-run] [--skip-invalid]\n"
    "                     [--batch N] [--inflight K]\n"
    "\n"
    "Loads a cost export into the database. Re-ingesting the same data is\n"
    "safe: unchanged rows are counted, not written.\n"
    "\n"
    "  --mock           ingest the server's bundled mock export\n"
    "  FILE             a cost export JSON document of any size; \"-\" reads stdin\n"
    "  --dry-run        validate and count, write nothing\n"
    "  --skip-invalid   write the valid records, report the invalid ones\n"
    "                   (default: all or nothing)\n"
    "  --batch N        records a request, 1 to 50000 (default 5000)\n"
    "  --inflight K     requests outstanding at once, 1 to 64 (default 2)\n"
    "\n"
    "FILE is read as a stream, twice: first every record is checked (with\n"
    "paths into the file, keys unique across it), and only if that finds\n"
    "nothing wrong are the records sent, in batches. Stdin that is not a\n"
    "regular file is copied to a temporary file ($TMPDIR) for the second\n"
    "reading. Batch k is sent as request id BASE-bk, BASE being --request-id\n"
    "or a fresh UUID: if a run stops part way, the batches it committed stay\n"
    "committed, and the same command with --request-id BASE resumes it.\n";

static const char usage_health[] =
    "usage: " CLI_NAME " [options] health\n"
    "\n"
    "Asks whether the server is serving and its database reachable.\n";

static const char usage_summary[] =
    "usage: " CLI_NAME " [options] summary [--from D] [--to D] [--provider P]\n"
    "                     [--gpu-type G] [--group-by G]\n"
    "\n"
    "Counts and totals the stored costs: records, total, avg, min, max.\n"
    "\n"
    "  --from D, --to D   dates YYYY-MM-DD, inclusive\n"
    "  --provider P       only this provider\n"
    "  --gpu-type G       only this GPU type\n"
    "  --group-by G       none, provider, gpu_type, date or provider_gpu_type\n";

void
cli_print_help(cli_cmd cmd)
{
	switch (cmd) {
	case CLI_CMD_INGEST:
		fputs(usage_ingest, stdout);
		break;
	case CLI_CMD_HEALTH:
		fputs(usage_health, stdout);
		break;
	case CLI_CMD_SUMMARY:
		fputs(usage_summary, stdout);
		break;
	default:
		fputs(usage_global, stdout);
		break;
	}
}

/* ---- option table ------------------------------------------------------- */

typedef enum opt_id {
	OPT_URL,
	OPT_API_KEY,
	OPT_API_KEY_FILE,
	OPT_TIMEOUT,
	OPT_RETRY_WINDOW,
	OPT_JSON,
	OPT_TLS_CA,
	OPT_TLS_NAME,
	OPT_REQUEST_ID,
	OPT_HELP,
	OPT_VERSION,
	OPT_MOCK,
	OPT_DRY_RUN,
	OPT_SKIP_INVALID,
	OPT_BATCH,
	OPT_INFLIGHT,
	OPT_FROM,
	OPT_TO,
	OPT_PROVIDER,
	OPT_GPU_TYPE,
	OPT_GROUP_BY,
} opt_id;

typedef struct opt_spec {
	const char *name;
	cli_cmd     cmd; /* CLI_CMD_NONE: a global option */
	bool        has_arg;
	opt_id      id;
} opt_spec;

static const opt_spec opts[] = {
	{ "--url", CLI_CMD_NONE, true, OPT_URL },
	{ "--api-key", CLI_CMD_NONE, true, OPT_API_KEY },
	{ "--api-key-file", CLI_CMD_NONE, true, OPT_API_KEY_FILE },
	{ "--timeout", CLI_CMD_NONE, true, OPT_TIMEOUT },
	{ "--retry-window", CLI_CMD_NONE, true, OPT_RETRY_WINDOW },
	{ "--json", CLI_CMD_NONE, false, OPT_JSON },
	{ "--tls-ca", CLI_CMD_NONE, true, OPT_TLS_CA },
	{ "--tls-server-name", CLI_CMD_NONE, true, OPT_TLS_NAME },
	{ "--request-id", CLI_CMD_NONE, true, OPT_REQUEST_ID },
	{ "--help", CLI_CMD_NONE, false, OPT_HELP },
	{ "-h", CLI_CMD_NONE, false, OPT_HELP },
	{ "--version", CLI_CMD_NONE, false, OPT_VERSION },
	{ "-V", CLI_CMD_NONE, false, OPT_VERSION },
	{ "--mock", CLI_CMD_INGEST, false, OPT_MOCK },
	{ "--dry-run", CLI_CMD_INGEST, false, OPT_DRY_RUN },
	{ "--skip-invalid", CLI_CMD_INGEST, false, OPT_SKIP_INVALID },
	{ "--batch", CLI_CMD_INGEST, true, OPT_BATCH },
	{ "--inflight", CLI_CMD_INGEST, true, OPT_INFLIGHT },
	{ "--from", CLI_CMD_SUMMARY, true, OPT_FROM },
	{ "--to", CLI_CMD_SUMMARY, true, OPT_TO },
	{ "--provider", CLI_CMD_SUMMARY, true, OPT_PROVIDER },
	{ "--gpu-type", CLI_CMD_SUMMARY, true, OPT_GPU_TYPE },
	{ "--group-by", CLI_CMD_SUMMARY, true, OPT_GROUP_BY },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static cli_cmd
parse_cmd(const char *word)
{
	if (strcmp(word, "ingest") == 0) {
		return (CLI_CMD_INGEST);
	}
	if (strcmp(word, "health") == 0) {
		return (CLI_CMD_HEALTH);
	}
	if (strcmp(word, "summary") == 0) {
		return (CLI_CMD_SUMMARY);
	}
	return (CLI_CMD_NONE);
}

/* Finds "--name" or the name part of "--name=value". */
static const opt_spec *
find_opt(const char *arg)
{
	size_t n = strcspn(arg, "=");
	size_t i;

	for (i = 0; i < N_OPTS; i++) {
		if (strlen(opts[i].name) == n && strncmp(opts[i].name, arg, n) == 0) {
			return (&opts[i]);
		}
	}
	return (NULL);
}

/* ---- applying options --------------------------------------------------- */

static int
parse_timeout(const char *s, uint32_t *out)
{
	unsigned long long v;

	if (hx_text_count(s, 1, CLI_MAX_TIMEOUT_MS, &v) != 0) {
		return (-1);
	}
	*out = (uint32_t) v;
	return (0);
}

static int
apply_stream_opt(cli_args *a, opt_id id, const char *val)
{
	unsigned long long v;

	if (id == OPT_BATCH) {
		if (hx_text_count(val, 1, STREAM_MAX_BATCH, &v) != 0) {
			return (
			    cli_usage_error("--batch: '%s' is not a number of records from 1 to %u",
			                    val, STREAM_MAX_BATCH));
		}
		a->batch = (size_t) v;
		a->batch_set = true;
		return (0);
	}
	if (hx_text_count(val, 1, SEND_MAX_INFLIGHT, &v) != 0) {
		return (cli_usage_error("--inflight: '%s' is not a number from 1 to %u", val,
		                        SEND_MAX_INFLIGHT));
	}
	a->inflight = (unsigned) v;
	a->inflight_set = true;
	return (0);
}

static int
apply_global(cli_args *a, opt_id id, const char *val)
{
	switch (id) {
	case OPT_URL:
		if (a->n_urls == CLI_MAX_URLS) {
			return (cli_usage_error("at most %d --url options", CLI_MAX_URLS));
		}
		a->urls[a->n_urls++] = val;
		return (0);
	case OPT_API_KEY:
		a->api_key = val;
		return (0);
	case OPT_API_KEY_FILE:
		a->api_key_file = val;
		return (0);
	case OPT_RETRY_WINDOW:
		if (parse_timeout(val, &a->retry_window_ms) != 0) {
			return (
			    cli_usage_error("--retry-window: '%s' is not a number of milliseconds "
			                    "from 1 to %u",
			                    val, CLI_MAX_TIMEOUT_MS));
		}
		return (0);
	case OPT_TIMEOUT:
		if (parse_timeout(val, &a->timeout_ms) != 0) {
			return (cli_usage_error("--timeout: '%s' is not a number of milliseconds "
			                        "from 1 to %u",
			                        val, CLI_MAX_TIMEOUT_MS));
		}
		return (0);
	case OPT_TLS_CA:
		a->tls_ca = val;
		return (0);
	case OPT_TLS_NAME:
		a->tls_server_name = val;
		return (0);
	case OPT_REQUEST_ID:
		a->request_id = val;
		return (0);
	default:
		return (0);
	}
}

static int
apply_opt(cli_args *a, opt_id id, const char *val)
{
	switch (id) {
	case OPT_JSON:
		a->json = true;
		return (0);
	case OPT_HELP:
		a->help = true;
		return (0);
	case OPT_VERSION:
		a->version = true;
		return (0);
	case OPT_MOCK:
		a->mock = true;
		return (0);
	case OPT_DRY_RUN:
		a->dry_run = true;
		return (0);
	case OPT_SKIP_INVALID:
		a->skip_invalid = true;
		return (0);
	case OPT_BATCH:
	case OPT_INFLIGHT:
		return (apply_stream_opt(a, id, val));
	case OPT_FROM:
		a->query.from_date = val;
		return (0);
	case OPT_TO:
		a->query.to_date = val;
		return (0);
	case OPT_PROVIDER:
		a->query.provider = val;
		return (0);
	case OPT_GPU_TYPE:
		a->query.gpu_type = val;
		return (0);
	case OPT_GROUP_BY:
		if (hx_group_by_parse(val, &a->query.group_by) != 0) {
			return (cli_usage_error("--group-by: '%s' is not one of none, provider, "
			                        "gpu_type, date, provider_gpu_type",
			                        val));
		}
		return (0);
	default:
		return (apply_global(a, id, val));
	}
}

/* ---- the command line --------------------------------------------------- */

/*
 * Handles the option at argv[*i] (advancing *i past its value). Unknown
 * options are named without any "=value" part: a mistyped --api-key=SECRET
 * must not print the secret.
 */
static int
parse_option(cli_args *a, int argc, char **argv, int *i)
{
	const char     *arg = argv[*i];
	const char     *eq = strchr(arg, '=');
	const opt_spec *o = find_opt(arg);
	int             n = (int) (eq != NULL ? (size_t) (eq - arg) : strlen(arg));

	if (o == NULL || (o->cmd != CLI_CMD_NONE && o->cmd != a->cmd)) {
		if (o != NULL && a->cmd == CLI_CMD_NONE) {
			return (cli_usage_error("%s belongs after the command word '%s'", o->name,
			                        cli_cmd_name(o->cmd)));
		}
		return (cli_usage_error("unknown option '%.*s'%s%s", n, arg,
		                        a->cmd != CLI_CMD_NONE ? " for " : "",
		                        cli_cmd_name(a->cmd)));
	}
	if (!o->has_arg) {
		if (eq != NULL) {
			return (cli_usage_error("%s takes no value", o->name));
		}
		return (apply_opt(a, o->id, NULL));
	}
	if (eq != NULL) {
		return (apply_opt(a, o->id, eq + 1));
	}
	if (*i + 1 >= argc) {
		return (cli_usage_error("%s needs a value", o->name));
	}
	*i += 1;
	return (apply_opt(a, o->id, argv[*i]));
}

static int
parse_word(cli_args *a, const char *word)
{
	/* "help COMMAND" is "COMMAND --help". */
	if (a->cmd == CLI_CMD_NONE && !a->help && strcmp(word, "help") == 0) {
		a->help = true;
		a->help_word = true;
		return (0);
	}
	if (a->cmd == CLI_CMD_NONE) {
		if ((a->cmd = parse_cmd(word)) == CLI_CMD_NONE) {
			return (cli_usage_error("unknown command '%s'", word));
		}
		return (0);
	}
	if (a->cmd == CLI_CMD_INGEST && a->file == NULL) {
		a->file = word;
		return (0);
	}
	return (cli_usage_error("unexpected argument '%s'", word));
}

bool
cli_json_prescan(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			return (true);
		}
	}
	return (false);
}

int
cli_parse_args(cli_args *a, int argc, char **argv)
{
	bool only_words = false;
	int  i, rv;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!only_words && strcmp(arg, "--") == 0) {
			only_words = true;
			continue;
		}
		/* "-" alone is a file name: stdin. */
		if (!only_words && arg[0] == '-' && arg[1] != '\0') {
			rv = parse_option(a, argc, argv, &i);
		} else {
			rv = parse_word(a, arg);
		}
		if (rv != 0) {
			return (rv);
		}
	}
	return (0);
}

/* The server's rule for a request id (printable ASCII, no space, at most
 * 128 bytes), less room for the "-b<k>" that each batch adds. */
static bool
base_id_ok(const char *id)
{
	size_t n;

	if (id == NULL) {
		return (true); /* one is generated */
	}
	for (n = 0; id[n] != '\0'; n++) {
		if ((unsigned char) id[n] <= 0x20 || (unsigned char) id[n] >= 0x7f) {
			return (false);
		}
	}
	return (n > 0 && n <= STREAM_BASE_ID_MAX);
}

int
cli_check_args(const cli_args *a)
{
	if (a->cmd == CLI_CMD_NONE) {
		return (cli_usage_error("no command given (ingest, health or summary)"));
	}
	if (a->cmd == CLI_CMD_INGEST && a->mock == (a->file != NULL)) {
		return (cli_usage_error(a->mock ? "ingest: give --mock or FILE, not both"
		                                : "ingest: give --mock or FILE"));
	}
	if (a->mock && (a->batch_set || a->inflight_set)) {
		return (
		    cli_usage_error("ingest: --batch and --inflight apply to FILE, not --mock"));
	}
	if (a->cmd == CLI_CMD_INGEST && a->file != NULL && !base_id_ok(a->request_id)) {
		return (cli_usage_error("--request-id: at most %u bytes of printable ASCII without "
		                        "spaces for ingest FILE (batch k is sent as ID-bk)",
		                        STREAM_BASE_ID_MAX));
	}
	if (a->api_key == NULL || *a->api_key == '\0') {
		return (cli_usage_error("no API key: give --api-key-file FILE (or set "
		                        "HELIOX_API_KEY_FILE), or set ADMIN_API_KEY"));
	}
	return (0);
}

void
cli_apply_env(cli_args *a)
{
	const char *url = getenv("HELIOX_URL");

	if (a->n_urls == 0) {
		a->urls[a->n_urls++] = (url != NULL && *url != '\0') ? url : HX_CLIENT_DEFAULT_URL;
	}
}

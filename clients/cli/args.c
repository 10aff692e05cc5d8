/*
 * cli.c - heliox-ingest, the command-line client of the Heliox ingest service.
 *
 *   heliox-ingest [global options] COMMAND [command options]
 *
 * This file parses the command line, opens a client, makes the one call and
 * maps the answer to an exit status; cli_print.c formats the output. Options
 * may come before or after the command word: global ones anywhere, a
 * command's own only after its word (so "--dry-run" never means something
 * to a command that was not named yet).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_convert.h"

/* A day: longer is surely a typo, and it keeps nng's int32 ms safe. */
#define CLI_MAX_TIMEOUT_MS 86400000u

/* Set before anything is parsed (cli_json_prescan): a usage error found
 * before --json was reached must still come out as JSON. */
static bool json_out;

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

static void
print_help(cli_cmd cmd)
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

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_NAME ": %s\nTry '" CLI_NAME " --help' for more information.\n", msg);
	if (json_out) {
		cli_json_local_error(HX_INVALID_ARGUMENT, msg, true);
	}
	return (CLI_EXIT_USAGE);
}

/* A local failure that is not the caller's typing: text on stderr, and
 * with --json the one object on stdout. Returns `exit_status`. */
static int local_error(hx_status code, int exit_status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
local_error(hx_status code, int exit_status, const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, CLI_NAME ": %s\n", msg);
	if (json_out) {
		cli_json_local_error(code, msg, exit_status == CLI_EXIT_USAGE);
	}
	return (exit_status);
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

/* A whole number from 1 to max. */
static int
parse_count(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char         *end;

	if (*s < '0' || *s > '9') {
		return (-1);
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max) {
		return (-1);
	}
	*out = v;
	return (0);
}

static int
parse_timeout(const char *s, uint32_t *out)
{
	unsigned long v;

	if (parse_count(s, CLI_MAX_TIMEOUT_MS, &v) != 0) {
		return (-1);
	}
	*out = (uint32_t) v;
	return (0);
}

static int
apply_stream_opt(cli_args *a, opt_id id, const char *val)
{
	unsigned long v;

	if (id == OPT_BATCH) {
		if (parse_count(val, STREAM_MAX_BATCH, &v) != 0) {
			return (usage_error("--batch: '%s' is not a number of records from 1 to %u",
			                    val, STREAM_MAX_BATCH));
		}
		a->batch = (size_t) v;
		a->batch_set = true;
		return (0);
	}
	if (parse_count(val, SEND_MAX_INFLIGHT, &v) != 0) {
		return (usage_error("--inflight: '%s' is not a number from 1 to %u", val,
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
			return (usage_error("at most %d --url options", CLI_MAX_URLS));
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
			return (usage_error("--retry-window: '%s' is not a number of milliseconds "
			                    "from 1 to %u",
			                    val, CLI_MAX_TIMEOUT_MS));
		}
		return (0);
	case OPT_TIMEOUT:
		if (parse_timeout(val, &a->timeout_ms) != 0) {
			return (usage_error("--timeout: '%s' is not a number of milliseconds "
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
			return (usage_error("--group-by: '%s' is not one of none, provider, "
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
			return (usage_error("%s belongs after the command word '%s'", o->name,
			                    cli_cmd_name(o->cmd)));
		}
		return (usage_error("unknown option '%.*s'%s%s", n, arg,
		                    a->cmd != CLI_CMD_NONE ? " for " : "", cli_cmd_name(a->cmd)));
	}
	if (!o->has_arg) {
		if (eq != NULL) {
			return (usage_error("%s takes no value", o->name));
		}
		return (apply_opt(a, o->id, NULL));
	}
	if (eq != NULL) {
		return (apply_opt(a, o->id, eq + 1));
	}
	if (*i + 1 >= argc) {
		return (usage_error("%s needs a value", o->name));
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
			return (usage_error("unknown command '%s'", word));
		}
		return (0);
	}
	if (a->cmd == CLI_CMD_INGEST && a->file == NULL) {
		a->file = word;
		return (0);
	}
	return (usage_error("unexpected argument '%s'", word));
}

/* --json anywhere before a "--": known before any other word is read. */
static bool
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

static int
parse_args(cli_args *a, int argc, char **argv)
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

/* What the options say must hold together; checked after all are read. */
static int
check_args(const cli_args *a)
{
	if (a->cmd == CLI_CMD_NONE) {
		return (usage_error("no command given (ingest, health or summary)"));
	}
	if (a->cmd == CLI_CMD_INGEST && a->mock == (a->file != NULL)) {
		return (usage_error(a->mock ? "ingest: give --mock or FILE, not both"
		                            : "ingest: give --mock or FILE"));
	}
	if (a->mock && (a->batch_set || a->inflight_set)) {
		return (usage_error("ingest: --batch and --inflight apply to FILE, not --mock"));
	}
	if (a->cmd == CLI_CMD_INGEST && a->file != NULL && !base_id_ok(a->request_id)) {
		return (usage_error("--request-id: at most %u bytes of printable ASCII without "
		                    "spaces for ingest FILE (batch k is sent as ID-bk)",
		                    STREAM_BASE_ID_MAX));
	}
	if (a->api_key == NULL || *a->api_key == '\0') {
		return (usage_error("no API key: give --api-key-file FILE (or set "
		                    "HELIOX_API_KEY_FILE), or set ADMIN_API_KEY"));
	}
	return (0);
}

/* ---- environment -------------------------------------------------------- */

/*
 * The server reads ADMIN_API_KEY as a comma-separated list (key rotation);
 * in the same environment the client sends the first key of it.
 */
static const char *
env_api_key(char *buf, size_t bufsz)
{
	const char *env = getenv("ADMIN_API_KEY");
	size_t      n;

	if (env == NULL) {
		return (NULL);
	}
	n = strcspn(env, ",");
	if (env[n] == '\0') {
		return (env);
	}
	if (n >= bufsz) {
		return (NULL);
	}
	memcpy(buf, env, n);
	buf[n] = '\0';
	return (buf);
}

/* "NAME:KEY" (the server's key-file form) sends KEY: one file can serve
 * both. NAME is letters, digits, '.', '_' and '-', as the server reads it. */
static const char *
strip_key_name(const char *line)
{
	size_t i;

	for (i = 0; i <= 64 && line[i] != '\0'; i++) {
		unsigned char ch = (unsigned char) line[i];

		if (ch == ':') {
			return (i > 0 ? line + i + 1 : line);
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) {
			break;
		}
	}
	return (line);
}

/*
 * Reads the key from the first line of `path` that is neither blank nor a
 * '#' comment. Like the server, refuses a file that is not regular or that
 * group or others may read or write (checked on the open descriptor, so the
 * file checked is the file read). Returns 0, or -1 with why in err.
 */
static int
read_key_file(const char *path, char *buf, size_t bufsz, char *err, size_t errsz)
{
	struct stat st;
	FILE       *f;
	char        line[1024];
	int         fd, rv = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errsz, "--api-key-file %s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "--api-key-file %s: not a regular file", path);
		close(fd);
		return (-1);
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errsz,
		         "--api-key-file %s is mode %04o: group or others may %s it; "
		         "chmod 600 it",
		         path, (unsigned) (st.st_mode & 07777),
		         (st.st_mode & 044) != 0 ? "read" : "write");
		close(fd);
		return (-1);
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		snprintf(err, errsz, "--api-key-file %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	while (rv != 0 && fgets(line, sizeof(line), f) != NULL) {
		char  *p = line;
		size_t n;

		while (*p == ' ' || *p == '\t') {
			p++;
		}
		n = strlen(p);
		while (
		    n > 0 &&
		    (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) {
			p[--n] = '\0';
		}
		if (n == 0 || *p == '#') {
			continue;
		}
		snprintf(buf, bufsz, "%s", strip_key_name(p));
		rv = 0;
	}
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (rv != 0) {
		snprintf(err, errsz, "--api-key-file %s: no key in it", path);
	}
	return (rv);
}

/*
 * The key: --api-key, else --api-key-file, else $HELIOX_API_KEY_FILE, else
 * $ADMIN_API_KEY. Returns 0, or an exit status after saying why.
 */
static int
resolve_key(cli_args *a, char *keybuf, size_t keybufsz)
{
	const char *file = a->api_key_file;
	char        err[512];

	if (a->api_key != NULL && a->api_key_file != NULL) {
		return (usage_error("give --api-key or --api-key-file, not both"));
	}
	if (a->api_key != NULL) {
		return (0);
	}
	if (file == NULL && (file = getenv("HELIOX_API_KEY_FILE")) != NULL && *file == '\0') {
		file = NULL;
	}
	if (file != NULL) {
		if (read_key_file(file, keybuf, keybufsz, err, sizeof(err)) != 0) {
			return (usage_error("%s", err));
		}
		a->api_key = keybuf;
		return (0);
	}
	a->api_key = env_api_key(keybuf, keybufsz);
	return (0);
}

static void
apply_env(cli_args *a)
{
	const char *url = getenv("HELIOX_URL");

	if (a->n_urls == 0) {
		a->urls[a->n_urls++] = (url != NULL && *url != '\0') ? url : HX_CLIENT_DEFAULT_URL;
	}
}

/*
 * A request id chosen here rather than by the server: nng resends a request
 * whose connection dropped, and only an id fixed before the first send lets
 * the server recognise the resend of an ingest and replay its result.
 */
static void
make_request_id(char out[37])
{
	unsigned char b[16];
	size_t        i, o = 0;

	if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
		out[0] = '\0'; /* the server generates one */
		return;
	}
	b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40); /* UUID version 4 */
	b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			out[o++] = '-';
		}
		o += (size_t) snprintf(out + o, 3, "%02x", b[i]);
	}
	out[o] = '\0';
}

/* ---- running the command ------------------------------------------------ */

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

/*
 * ingest FILE, of any size: streamed and sent in batches (stream_ingest.h).
 * Every file takes this one path, so paths in violations and the output
 * are the same for 28 records and for 28 million.
 */
static int
run_ingest_file(const cli_args *a, hx_client *c)
{
	stream_opts   o;
	stream_report r;
	char          rid[37];
	int           rv;

	if (a->request_id == NULL) {
		make_request_id(rid);
	}
	memset(&o, 0, sizeof(o));
	o.path = a->file;
	o.base_id = a->request_id != NULL ? a->request_id : rid;
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
		rv = local_error(HX_INVALID_ARGUMENT, CLI_EXIT_USAGE, "%s", r.message);
	} else {
		cli_print_stream(a, &r);
		rv = cli_exit_status(r.code);
	}
	stream_report_free(&r);
	return (rv);
}

static int
run_ingest(const cli_args *a, hx_client *c, const hx_call_opts *call, hx_reply *r)
{
	hx_ingest_opts o = { .call = *call,
		             .dry_run = a->dry_run,
		             .skip_invalid = a->skip_invalid };

	hx_client_ingest_mock(c, &o, r);
	return (0);
}

static int
run(const cli_args *a, hx_client *c, hx_reply *r)
{
	hx_call_opts call = { .request_id = a->request_id, .timeout_ms = a->timeout_ms };
	char         rid[37];

	if (call.request_id == NULL) {
		make_request_id(rid);
		call.request_id = rid;
	}
	switch (a->cmd) {
	case CLI_CMD_INGEST:
		return (run_ingest(a, c, &call, r));
	case CLI_CMD_HEALTH:
		hx_client_health(c, &call, r);
		return (0);
	default:
		hx_client_summary(c, &a->query, &call, r);
		return (0);
	}
}

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
		return (local_error(st, st == HX_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_OTHER,
		                    "%s", err));
	}
	return (0);
}

/* Everything but the billing commands (cmd_convert.c runs those first). */
static int
cli_main(int argc, char **argv)
{
	cli_args   a = { .timeout_ms = HX_CLIENT_DEFAULT_TIMEOUT_MS,
		         .retry_window_ms = HX_CLIENT_DEFAULT_RETRY_WINDOW_MS };
	hx_client *c = NULL;
	hx_reply   r = { 0 };
	char       keybuf[1024];
	int        rv;

	json_out = cli_json_prescan(argc, argv);
	if ((rv = parse_args(&a, argc, argv)) != 0) {
		return (rv);
	}
	if (a.help || a.version) {
		if (a.help) {
			print_help(a.cmd);
		} else {
			printf(CLI_NAME " %s\n", HX_VERSION);
		}
		return (CLI_EXIT_OK);
	}
	apply_env(&a);
	if ((rv = resolve_key(&a, keybuf, sizeof(keybuf))) != 0 || (rv = check_args(&a)) != 0 ||
	    (rv = open_client(&a, &c)) != 0) {
		explicit_bzero(keybuf, sizeof(keybuf));
		return (rv);
	}
	if (a.cmd == CLI_CMD_INGEST && a.file != NULL) {
		rv = run_ingest_file(&a, c);
	} else if ((rv = run(&a, c, &r)) == 0) {
		cli_print_reply(&a, &r);
		rv = cli_exit_status(r.code);
	}
	hx_reply_free(&r);
	hx_client_close(c);
	explicit_bzero(keybuf, sizeof(keybuf));
	return (rv);
}

int
main(int argc, char **argv)
{
	return (cli_bill_main(argc, argv, cli_main));
}

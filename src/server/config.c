/*
 * config.c - heliox-ingestd's flags: getopt_long, numbers with range checks,
 * listen URL schemes, and the TLS flags a tls+tcp:// listener needs.
 *
 * Every mistake is reported here as "heliox-ingestd: <what is wrong>" and
 * turns into exit status 2, before the server opens anything.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "base/text.h"
#include "config.h"
#include "datadir.h"
#include "heliox/heliox.h"
#include "rpc.h"

#define PROG "heliox-ingestd"

enum {
	OPT_LISTEN = 256,
	OPT_DB,
	OPT_WORKERS,
	OPT_DATA_DIR,
	OPT_MAX_MESSAGE,
	OPT_LOG_LEVEL,
	OPT_API_KEY_FILE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_DEFAULT_TIMEOUT,
	OPT_METRICS_LISTEN,
	OPT_LOG_FORMAT,
	OPT_MIGRATE_ONLY,
	OPT_NO_MIGRATE,
	OPT_CHECK_CONFIG,
};

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "db", required_argument, NULL, OPT_DB },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "api-key-file", required_argument, NULL, OPT_API_KEY_FILE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "default-timeout-ms", required_argument, NULL, OPT_DEFAULT_TIMEOUT },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "migrate-only", no_argument, NULL, OPT_MIGRATE_ONLY },
	{ "no-migrate", no_argument, NULL, OPT_NO_MIGRATE },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* The transports SERVICE.md section 2 promises (plus nng's v4/v6-only and
 * abstract-socket spellings of them). ws://, inproc:// etc. are refused so a
 * typo does not silently listen somewhere unexpected. */
static const char *const schemes[] = {
	"tcp://",      "tcp4://",    "tcp6://",     "ipc://",
	"abstract://", "tls+tcp://", "tls+tcp4://", "tls+tcp6://",
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: " PROG " [options]\n"
	    "\n"
	    "Serves heliox.ingest.v1 RPCs (nng rep0) and stores cost records in PostgreSQL.\n"
	    "\n"
	    "  --listen URL              tcp://HOST:PORT, ipc:///PATH or tls+tcp://HOST:PORT;\n"
	    "                            repeatable (default " HX_DEFAULT_LISTEN ")\n"
	    "  --db CONNINFO             libpq connection string (default: PGHOST, PGPORT,\n"
	    "                            PGDATABASE, PGUSER... from the environment)\n"
	    "  --workers N               concurrent requests, one DB connection each\n"
	    "                            (1..%u, default %u)\n"
	    "  --data-dir DIR            where mock_cost_export.json lives\n"
	    "                            (default %s)\n"
	    "  --max-message-bytes N     largest request; k and M suffixes accepted\n"
	    "                            (default %zu)\n"
	    "  --default-timeout-ms N    deadline for requests that set none (default %u)\n"
	    "  --log-level LEVEL         debug, info, warn or error (default info)\n"
	    "  --log-format FORMAT       text or json (one JSON object a line; default text)\n"
	    "  --metrics-listen HOST:PORT  serve GET /metrics (Prometheus) and GET /healthz\n"
	    "                            over HTTP there (port 0: any free port, logged)\n"
	    "  --migrate-only            apply the database migrations, then exit 0\n"
	    "  --no-migrate              run no DDL; refuse to start if the schema is older\n"
	    "                            than this binary (for a role without CREATE)\n"
	    "  --check-config            check flags, API keys, TLS files and the database,\n"
	    "                            then exit 0 (all good) or 2\n"
	    "  --api-key-file FILE       API keys, one per line (also: ADMIN_API_KEY,\n"
	    "                            comma-separated); at least one key is required\n"
	    "  --tls-cert FILE           PEM certificate (chain) for tls+tcp:// listeners\n"
	    "  --tls-key FILE            PEM private key for tls+tcp:// listeners\n"
	    "  -h, --help                this text\n"
	    "  -V, --version             print the version\n"
	    "\n"
	    "SIGINT/SIGTERM: finish the requests in flight, then exit 0.\n"
	    "SIGHUP: reload the API key file and the TLS certificate and key; an invalid\n"
	    "new set is refused (ERROR line) and the old one kept.\n"
	    "Exit status: 0 clean shutdown, 1 runtime failure, 2 usage or configuration error.\n",
	    HX_MAX_WORKERS, HX_DEFAULT_WORKERS, hx_default_data_dir(), HX_RPC_DEFAULT_MAX_MESSAGE,
	    HX_RPC_DEFAULT_TIMEOUT_MS);
}

static hx_config_result __attribute__((format(printf, 1, 2))) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry '" PROG " --help'.\n", stderr);
	return (HX_CONFIG_USAGE);
}

/*
 * A size in [min, max] bytes: a count, times 1024 with a trailing k/K or
 * 1024 * 1024 with m/M. The digits are read by hx_text_count like every
 * other count; only the suffix is this flag's own.
 */
static int
parse_size(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char               digits[32];
	size_t             len = strlen(s);
	unsigned long long v, mult = 1;

	if (len > 0 && (s[len - 1] == 'k' || s[len - 1] == 'K')) {
		mult = 1024;
	} else if (len > 0 && (s[len - 1] == 'm' || s[len - 1] == 'M')) {
		mult = 1024ULL * 1024;
	}
	if (mult != 1) {
		len--;
	}
	if (len >= sizeof(digits)) {
		return (-1); /* more digits than any size up to max has */
	}
	memcpy(digits, s, len);
	digits[len] = '\0';
	if (hx_text_count(digits, 0, max / mult, &v) != 0 || v * mult < min) {
		return (-1);
	}
	*out = v * mult;
	return (0);
}

bool
hx_config_url_is_tls(const char *url)
{
	return (url != NULL && strncmp(url, "tls+", 4) == 0);
}

static bool
url_scheme_ok(const char *url)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(url, schemes[i], n) == 0 && url[n] != '\0') {
			return (true);
		}
	}
	return (false);
}

/* tcp://HOST without a port would make nng listen on a random one; the
 * caller must say (":0" asks for a random port on purpose). */
static bool
url_port_ok(const char *url)
{
	const char *host, *colon;

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "abstract://", 11) == 0) {
		return (true);
	}
	host = strstr(url, "://") + 3;
	colon = strrchr(host, ':');
	if (colon == NULL || (host[0] == '[' && colon < strchr(host, ']'))) {
		return (false);
	}
	for (colon++; *colon != '\0'; colon++) {
		if (!isdigit((unsigned char) *colon)) {
			return (false);
		}
	}
	return (colon[-1] != ':');
}

static hx_config_result
add_listen(hx_server_config *c, const char *url)
{
	if (!url_scheme_ok(url)) {
		return (bad_usage("--listen %s: unsupported URL "
		                  "(use tcp://HOST:PORT, ipc:///PATH or tls+tcp://HOST:PORT)",
		                  url));
	}
	if (!url_port_ok(url)) {
		return (bad_usage("--listen %s: give a port, as in tcp://127.0.0.1:7407", url));
	}
	c->listen[c->n_listen++] = url;
	return (HX_CONFIG_RUN);
}

/* The options that take a number. */
static hx_config_result
apply_number(hx_server_config *c, int opt, const char *arg)
{
	unsigned long long v;

	switch (opt) {
	case OPT_WORKERS:
		if (hx_text_count(arg, 1, HX_MAX_WORKERS, &v) != 0) {
			return (bad_usage("--workers %s: expected a number from 1 to %u", arg,
			                  HX_MAX_WORKERS));
		}
		c->workers = (unsigned) v;
		break;
	case OPT_MAX_MESSAGE:
		if (parse_size(arg, 1, HX_MAX_MESSAGE_CAP, &v) != 0) {
			return (bad_usage("--max-message-bytes %s: expected a size from 1 to %llu "
			                  "(k and M suffixes allowed)",
			                  arg, HX_MAX_MESSAGE_CAP));
		}
		c->max_message_bytes = (size_t) v;
		break;
	default: /* OPT_DEFAULT_TIMEOUT */
		if (hx_text_count(arg, 1, HX_MAX_TIMEOUT_MS, &v) != 0) {
			return (bad_usage("--default-timeout-ms %s: expected a number from 1 to %u",
			                  arg, HX_MAX_TIMEOUT_MS));
		}
		c->default_timeout_ms = (uint32_t) v;
		break;
	}
	return (HX_CONFIG_RUN);
}

/* Handles one option; returns HX_CONFIG_RUN to go on. */
static hx_config_result
apply_option(hx_server_config *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_LISTEN:
		return (add_listen(c, arg));
	case OPT_WORKERS:
	case OPT_MAX_MESSAGE:
	case OPT_DEFAULT_TIMEOUT:
		return (apply_number(c, opt, arg));
	case OPT_LOG_LEVEL:
		if (hx_log_level_parse(arg, &c->log_level) != 0) {
			return (
			    bad_usage("--log-level %s: expected debug, info, warn or error", arg));
		}
		break;
	case OPT_LOG_FORMAT:
		if (hx_log_format_parse(arg, &c->log_format) != 0) {
			return (bad_usage("--log-format %s: expected text or json", arg));
		}
		break;
	case OPT_METRICS_LISTEN:
		if (strchr(arg, ':') == NULL || strstr(arg, "://") != NULL) {
			return (bad_usage("--metrics-listen %s: expected HOST:PORT, as in "
			                  "127.0.0.1:9407",
			                  arg));
		}
		c->metrics_listen = arg;
		break;
	case OPT_MIGRATE_ONLY:
		c->migrate_only = true;
		break;
	case OPT_NO_MIGRATE:
		c->no_migrate = true;
		break;
	case OPT_CHECK_CONFIG:
		c->check_config = true;
		break;
	case OPT_DB:
		c->conninfo = arg;
		break;
	case OPT_DATA_DIR:
		c->data_dir = arg;
		break;
	case OPT_API_KEY_FILE:
		c->api_key_file = arg;
		break;
	case OPT_TLS_CERT:
		c->tls_cert = arg;
		break;
	case OPT_TLS_KEY:
		c->tls_key = arg;
		break;
	default:
		/* getopt_long has already said what was wrong. */
		fputs("Try '" PROG " --help'.\n", stderr);
		return (HX_CONFIG_USAGE);
	}
	return (HX_CONFIG_RUN);
}

/* Checks that need every flag seen: defaults, and TLS listeners' files. */
static hx_config_result
finish(hx_server_config *c)
{
	if (c->n_listen == 0) {
		c->listen[c->n_listen++] = HX_DEFAULT_LISTEN;
	}
	if (c->migrate_only && c->no_migrate) {
		return (bad_usage("--migrate-only and --no-migrate contradict each other"));
	}
	for (size_t i = 0; i < c->n_listen; i++) {
		if (hx_config_url_is_tls(c->listen[i]) &&
		    (c->tls_cert == NULL || c->tls_key == NULL)) {
			return (bad_usage("--listen %s needs --tls-cert FILE and --tls-key FILE",
			                  c->listen[i]));
		}
	}
	return (HX_CONFIG_RUN);
}

static hx_config_result
parse_args(hx_server_config *c, int argc, char **argv)
{
	hx_config_result r;
	int              opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hV", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return (HX_CONFIG_EXIT);
		}
		if (opt == 'V') {
			printf(PROG " %s (nng %s)\n", HX_VERSION, nng_version());
			return (HX_CONFIG_EXIT);
		}
		if ((r = apply_option(c, opt, optarg)) != HX_CONFIG_RUN) {
			return (r);
		}
	}
	if (optind < argc) {
		return (bad_usage("unexpected argument '%s'", argv[optind]));
	}
	return (finish(c));
}

hx_config_result
hx_config_parse(hx_server_config *c, int argc, char **argv)
{
	hx_config_result r;

	memset(c, 0, sizeof(*c));
	c->conninfo = "";
	c->workers = HX_DEFAULT_WORKERS;
	c->data_dir = hx_default_data_dir();
	c->max_message_bytes = HX_RPC_DEFAULT_MAX_MESSAGE;
	c->default_timeout_ms = HX_RPC_DEFAULT_TIMEOUT_MS;
	c->log_level = HX_LOG_INFO;

	/* There can be no more --listen URLs than arguments (+1: the default). */
	if ((c->listen = calloc((size_t) argc + 1, sizeof(*c->listen))) == NULL) {
		fputs(PROG ": out of memory\n", stderr);
		return (HX_CONFIG_USAGE);
	}
	if ((r = parse_args(c, argc, argv)) != HX_CONFIG_RUN) {
		hx_config_free(c);
	}
	return (r);
}

void
hx_config_free(hx_server_config *c)
{
	free(c->listen);
	c->listen = NULL;
	c->n_listen = 0;
}

/*
 * config.h - heliox-ingestd's command line (SERVICE.md section 7).
 *
 * Parsing only: nothing here opens a file, a socket or a database, so a bad
 * flag is reported before the server touches anything.
 */
#ifndef HELIOX_CONFIG_H
#define HELIOX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define HX_DEFAULT_LISTEN  "tcp://127.0.0.1:7407"
#define HX_DEFAULT_WORKERS 4u
#define HX_MAX_WORKERS     256u
#define HX_MAX_MESSAGE_CAP (1024ULL * 1024 * 1024) /* --max-message-bytes ceiling */
#define HX_MAX_TIMEOUT_MS  86400000u               /* --default-timeout-ms ceiling: a day */

typedef struct hx_server_config {
	const char  **listen; /* n_listen URLs, borrowed from argv */
	size_t        n_listen;
	const char   *conninfo; /* libpq conninfo; "" = libpq's environment */
	unsigned      workers;
	const char   *data_dir;
	size_t        max_message_bytes;
	uint32_t      default_timeout_ms;
	hx_log_level  log_level;
	const char   *api_key_file; /* NULL = keys from ADMIN_API_KEY only */
	const char   *tls_cert;     /* PEM files; both needed by tls+tcp:// */
	const char   *tls_key;
	const char   *metrics_listen; /* HOST:PORT, NULL = no metrics endpoint */
	hx_log_format log_format;
	bool          migrate_only; /* apply migrations, exit 0 */
	bool          no_migrate;   /* never run DDL; refuse an older schema */
	bool          check_config; /* validate flags, keys, database; exit 0 or 2 */
} hx_server_config;

typedef enum hx_config_result {
	HX_CONFIG_RUN,   /* start the server */
	HX_CONFIG_EXIT,  /* --help or --version printed: exit 0 */
	HX_CONFIG_USAGE, /* bad command line, message printed: exit 2 */
} hx_config_result;

/* Fills *c from argv (defaults for what is not given). On HX_CONFIG_RUN the
 * caller must hx_config_free(c) when done; otherwise nothing is held. */
hx_config_result hx_config_parse(hx_server_config *c, int argc, char **argv);
void             hx_config_free(hx_server_config *c);

/* True for tls+tcp://, tls+tcp4:// and tls+tcp6:// URLs. */
bool hx_config_url_is_tls(const char *url);

#endif /* HELIOX_CONFIG_H */

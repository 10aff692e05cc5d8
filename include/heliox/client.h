/*
 * client.h - the Heliox ingest client library, for services and the CLI.
 *
 * One hx_client holds one nng req0 socket dialed to one or more server URLs
 * (tcp://, ipc://, tls+tcp://). Calls are synchronous and thread-safe: each
 * call runs on its own nng context, so several threads may keep several
 * requests in flight over one client.
 *
 * Every call fills an hx_reply and returns its code. When no server can be
 * reached the call fails at once with HX_UNAVAILABLE and a message naming,
 * for each URL, what happened (connection refused, name not resolved, TLS
 * handshake failed: unknown CA, name mismatch, not TLS). When a connection is
 * up but no answer arrives in time: HX_DEADLINE_EXCEEDED ("no answer within
 * N ms"). nng's REQ resend time is set no shorter than the
 * call's timeout, so a slow ingest is not sent twice by the library; if it
 * is resent anyway (a dropped connection), the server's request_id replay
 * keeps it from running twice.
 *
 * The library never links the store: it speaks only the wire contract.
 *
 * Memory: the two large blocks of the largest recent reply (its decoded
 * form, and the Summary rows that hx_reply_free gives back) are kept for
 * the next call, at most 8 MiB each, for the whole process; they go when
 * the library is unloaded. Always release a reply with hx_reply_free,
 * never free() its parts.
 */
#ifndef HELIOX_CLIENT_H
#define HELIOX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/api.h"
#include "heliox/heliox.h"
#include "heliox/record.h"
#include "heliox/summary.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hx_client hx_client;

#define HX_CLIENT_DEFAULT_URL             "tcp://127.0.0.1:7407"
#define HX_CLIENT_DEFAULT_TIMEOUT_MS      30000u
#define HX_CLIENT_DEFAULT_RETRY_WINDOW_MS 30000u
#define HX_CLIENT_MAX_URLS                64

typedef struct hx_client_opts {
	const char *api_key;         /* required; copied */
	uint32_t    timeout_ms;      /* default per call; 0 = HX_CLIENT_DEFAULT_TIMEOUT_MS */
	const char *tls_ca_file;     /* CA bundle for tls+tcp:// URLs; NULL = $SSL_CERT_FILE, else
	                              * /etc/ssl/certs/ca-certificates.crt. The server is always
	                              * verified: with neither, hx_client_open fails. */
	const char *tls_server_name; /* name to verify; NULL = the URL's host, which must then
	                              * be a name, not an IP address */
	size_t      max_reply_bytes; /* 0 = 64 MiB */
	uint32_t    retry_window_ms; /* a server's UNAVAILABLE (its database away) is retried
	                              * with back-off for this long, within each call's
	                              * timeout; 0 = HX_CLIENT_DEFAULT_RETRY_WINDOW_MS, 1 = no
	                              * retry */
} hx_client_opts;

/*
 * Opens a client dialed to every URL in `urls` (nng spreads requests over the
 * connected ones and reconnects by itself). Dialing starts in the background
 * and does not wait for the server to be up; a call waits for it, and fails
 * at once when every URL's attempt has failed. On failure returns the status
 * and writes a reason to err.
 */
HX_API hx_status hx_client_open(hx_client **out, const char *const *urls, size_t n_urls,
                                const hx_client_opts *opts, char *err, size_t errsz);
HX_API void      hx_client_close(hx_client *c);

/* Per-call options; NULL means all defaults. */
typedef struct hx_call_opts {
	const char *request_id;      /* NULL or "" = the server generates one */
	uint32_t    timeout_ms;      /* 0 = the client's default */
	const char *base_request_id; /* the id the user saw, when one action is sent as
	                              * several requests (batches); NULL = request_id */
} hx_call_opts;

typedef struct hx_ingest_opts {
	hx_call_opts call;
	bool         dry_run;
	bool         skip_invalid;
	uint32_t     client_failed; /* skip_invalid: records found invalid here and not sent;
	                             * the server counts (and audits) them as failed */
	/* v2: restated data (contract section 5). The request is the whole
	 * truth for each window's provider over its dates: stored rows there
	 * that the request does not carry are deleted, in the same
	 * transaction. Not with skip_invalid. n_replace 0 = none. */
	const hx_replace_window *replace;
	size_t                   n_replace;
	const hx_provenance     *provenance; /* NULL = not given */
} hx_ingest_opts;

typedef struct hx_ingest_result {
	uint32_t received, inserted, updated, unchanged, failed;
	uint32_t deleted; /* v2: rows removed by replace windows (not part of received) */
	uint64_t duration_us;
	bool     replayed; /* answered from an earlier run with the same request_id */
	bool     dry_run;
} hx_ingest_result;

typedef struct hx_health_result {
	bool     serving;
	bool     database_ok;
	char     version[32];
	uint64_t uptime_s;
} hx_health_result;

typedef enum hx_result_kind {
	HX_RESULT_NONE = 0,
	HX_RESULT_INGEST,
	HX_RESULT_HEALTH,
	HX_RESULT_SUMMARY,
} hx_result_kind;

/* A reply. Everything in it is owned by it; release with hx_reply_free(). */
typedef struct hx_reply {
	hx_status        code;
	char            *message;    /* never NULL after a call ("" when none) */
	char            *request_id; /* never NULL after a call */
	hx_violation    *violations;
	size_t           n_violations;
	hx_result_kind   kind;
	hx_ingest_result ingest; /* when kind == HX_RESULT_INGEST */
	hx_health_result health; /* when kind == HX_RESULT_HEALTH */
	hx_summary_row  *rows;   /* when kind == HX_RESULT_SUMMARY */
	size_t           n_rows;
} hx_reply;

HX_API void hx_reply_free(hx_reply *r);

/* A record in wire form: borrowed text, cost as decimal text. */
typedef struct hx_cost_record {
	const char *date;
	const char *provider;
	const char *gpu_type;
	const char *cost_usd;
	const char *gpu_hours; /* v2: decimal text; NULL or "" = unknown */
} hx_cost_record;

HX_API hx_status hx_client_ingest_mock(hx_client *c, const hx_ingest_opts *o, hx_reply *out);
HX_API hx_status hx_client_ingest_json(hx_client *c, const void *json, size_t len,
                                       const hx_ingest_opts *o, hx_reply *out);
HX_API hx_status hx_client_ingest_records(hx_client *c, const hx_cost_record *recs, size_t n,
                                          const hx_ingest_opts *o, hx_reply *out);
HX_API hx_status hx_client_health(hx_client *c, const hx_call_opts *o, hx_reply *out);
HX_API hx_status hx_client_summary(hx_client *c, const hx_summary_query *q, const hx_call_opts *o,
                                   hx_reply *out);

/* Sends an already serialized RpcRequest and returns the raw reply bytes
 * (malloc'd into *resp). For tools and tests; most callers want the typed
 * calls. Returns HX_OK when a reply arrived. */
HX_API hx_status hx_client_call_raw(hx_client *c, const void *req, size_t len, uint32_t timeout_ms,
                                    void **resp, size_t *resp_len);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_CLIENT_H */

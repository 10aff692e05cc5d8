/*
 * rpc.h - one request in, one reply out. The whole path of a request:
 *
 *   bytes -> size limit -> decode RpcRequest -> auth -> method
 *         -> (ingest) source -> validate -> store -> RpcResponse bytes
 *
 * hx_rpc_handle() knows nothing of sockets (the server loop does), so it can
 * be fuzzed and tested without nng; with store == NULL it runs without a
 * database (methods that need one answer UNAVAILABLE).
 */
#ifndef HELIOX_RPC_H
#define HELIOX_RPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "heliox/heliox.h"
#include "store.h"

#define HX_RPC_DEFAULT_TIMEOUT_MS  30000u
#define HX_RPC_DEFAULT_MAX_MESSAGE ((size_t) 16 * 1024 * 1024)

typedef struct hx_rpc_config {
	/* Borrowed; swapped whole on SIGHUP (server.c), read once per request. */
	_Atomic(const hx_auth *) auth;
	const char              *mock_json; /* borrowed; the data dir's mock export, NULL if none */
	size_t                   mock_len;
	size_t                   max_message_bytes;  /* larger requests: RESOURCE_EXHAUSTED */
	uint32_t                 default_timeout_ms; /* used when the request's timeout_ms is 0 */
	uint64_t                 started_us; /* hx_clock_us() when the server started, for uptime */
} hx_rpc_config;

/* How far a request got with auth: the server throttles peers on it. */
typedef enum hx_rpc_auth {
	HX_RPC_AUTH_NOT_REACHED = 0, /* refused before auth: too large, undecodable */
	HX_RPC_AUTH_OK,
	HX_RPC_AUTH_FAILED, /* missing or invalid api_key */
} hx_rpc_auth;

/* What became of a request, beyond the reply bytes. */
typedef struct hx_rpc_outcome {
	hx_rpc_auth auth;
	hx_status   code;        /* the reply's code */
	const char *method;      /* "ingest", "health", "summary" or "-" (static text) */
	uint64_t    duration_us; /* as logged, and as the ingest reply says */
	bool        has_counts;  /* an ingest that ran: not dry, not replayed */
	uint32_t    inserted, updated, unchanged, failed, deleted;
} hx_rpc_outcome;

/*
 * Handles one request message of `len` bytes from `peer` (text for logs).
 * Always builds a reply, garbage in included: *out is malloc'd (caller frees),
 * *out_len its size. `outcome`, when not NULL, is filled in. Returns HX_OK,
 * or HX_RESOURCE_EXHAUSTED when not even a reply could be built (out of
 * memory).
 */
hx_status hx_rpc_handle(const hx_rpc_config *cfg, hx_store *store, const uint8_t *req, size_t len,
                        const char *peer, hx_rpc_outcome *outcome, uint8_t **out, size_t *out_len);

/* hx_rpc_handle keeps, per thread, the block it last decoded a request into
 * (rpc.c); a thread that handled requests calls this before it ends. */
void hx_rpc_thread_done(void);

#endif /* HELIOX_RPC_H */

/*
 * auth.h - API keys: loading, constant-time checking, failure throttling.
 *
 * Keys come from ADMIN_API_KEY (comma-separated, for rotation) and/or a key
 * file (one per line; blank lines and lines starting with '#' ignored). An
 * entry "NAME:KEY" (NAME of letters, digits, '.', '_', '-') names its key. Every
 * key must be at least HX_AUTH_MIN_KEY_LEN bytes. A check compares the offered
 * key against every configured key without an early exit, so timing says
 * nothing about which key or how many bytes matched.
 */
#ifndef HELIOX_AUTH_H
#define HELIOX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/heliox.h"

#define HX_AUTH_MIN_KEY_LEN 16
#define HX_AUTH_MAX_KEY_LEN 256
#define HX_AUTH_KEY_ID_MAX  64 /* bytes of a key's name */

typedef struct hx_auth hx_auth;

/*
 * Loads keys from `env_keys` (the value of ADMIN_API_KEY, or NULL) and
 * `key_file` (a path, or NULL). Refuses (HX_INVALID_ARGUMENT, reason in err,
 * never the key itself) when there is no key at all, a key is shorter than
 * HX_AUTH_MIN_KEY_LEN, or the file is readable or writable by others.
 */
hx_status hx_auth_load(hx_auth **out, const char *env_keys, const char *key_file, char *err,
                       size_t errsz);
void      hx_auth_free(hx_auth *a);
size_t    hx_auth_count(const hx_auth *a);

/* HX_OK when `key` (len bytes) equals one configured key, else
 * HX_UNAUTHENTICATED. Constant time in the configured keys. */
hx_status hx_auth_check(const hx_auth *a, const char *key, size_t len);

/* The same, and on success *key_id (when not NULL) names the key that
 * matched, for the audit and the log: the name given as "NAME:KEY" in the
 * key file or ADMIN_API_KEY, else "sha256:" and the first 8 hex digits of
 * the key's SHA-256. Never the key. The string lives as long as `a`. */
hx_status hx_auth_check_id(const hx_auth *a, const char *key, size_t len, const char **key_id);

/*
 * Throttling repeated failures. A key guesser's failures are counted per
 * peer with a decaying score: HX_THROTTLE_FREE failures within
 * HX_THROTTLE_WINDOW_MS cost nothing; each further one gets its reply
 * delayed, HX_THROTTLE_BASE_MS more per failure over the allowance, up to
 * HX_THROTTLE_CAP_MS. The score decays at HX_THROTTLE_FREE per window, and
 * a success from the peer takes one failure off, so a client that fixed its
 * key (or a guesser that gave up) is forgiven within seconds.
 *
 * This only computes delays; the server applies them without holding a
 * worker (server.c), so one peer's penalty slows no one else.
 */
#define HX_THROTTLE_FREE      5
#define HX_THROTTLE_WINDOW_MS 10000u
#define HX_THROTTLE_BASE_MS   1000u
#define HX_THROTTLE_CAP_MS    5000u
#define HX_THROTTLE_PEERS     256 /* peers tracked at once; the quietest is forgotten first */

/* Who a failure is counted against. The server chooses: an IPv4 address,
 * an IPv6 /64 (one host usually holds a whole one), or a connection for
 * local transports that have no address. */
typedef enum hx_peer_kind {
	HX_PEER_NONE = 0, /* unknown (connection gone): never throttled */
	HX_PEER_IPV4,
	HX_PEER_IPV6_64,
	HX_PEER_CONN,
} hx_peer_kind;

typedef struct hx_peer_id {
	hx_peer_kind  kind;
	unsigned char bytes[8]; /* the address (IPv4: 4 bytes), the /64, or the pipe id */
} hx_peer_id;

typedef struct hx_throttle hx_throttle;

hx_throttle *hx_throttle_new(void); /* NULL when out of memory */
void         hx_throttle_free(hx_throttle *t);

/* Counts a failure by `peer` at `now_ms` (a monotonic clock). Returns the
 * delay its reply should get, in ms (0: none). *began, when not NULL, is
 * set when this failure is the peer's first delayed one (worth a log line). */
unsigned hx_throttle_failure(hx_throttle *t, const hx_peer_id *peer, uint64_t now_ms, bool *began);
/* Counts a success: one failure of `peer` forgiven. */
void hx_throttle_success(hx_throttle *t, const hx_peer_id *peer, uint64_t now_ms);

#endif /* HELIOX_AUTH_H */

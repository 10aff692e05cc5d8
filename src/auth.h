/*
 * auth.h - API keys: loading, and constant-time checking.
 *
 * Keys come from ADMIN_API_KEY (comma-separated, for rotation) and/or a key
 * file (one per line; blank lines and lines starting with '#' ignored). Every
 * key must be at least HX_AUTH_MIN_KEY_LEN bytes. A check compares the offered
 * key against every configured key without an early exit, so timing says
 * nothing about which key or how many bytes matched.
 */
#ifndef HX_AUTH_H
#define HX_AUTH_H

#include <stddef.h>

#include "heliox/heliox.h"

#define HX_AUTH_MIN_KEY_LEN 16
#define HX_AUTH_MAX_KEY_LEN 256

typedef struct hx_auth hx_auth;

/*
 * Loads keys from `env_keys` (the value of ADMIN_API_KEY, or NULL) and
 * `key_file` (a path, or NULL). Refuses (HX_INVALID_ARGUMENT, reason in err,
 * never the key itself) when there is no key at all, a key is shorter than
 * HX_AUTH_MIN_KEY_LEN, or the file is readable or writable by others.
 */
hx_status hx_auth_load(hx_auth **out, const char *env_keys, const char *key_file,
                       char *err, size_t errsz);
void      hx_auth_free(hx_auth *a);
size_t    hx_auth_count(const hx_auth *a);

/* HX_OK when `key` (len bytes) equals one configured key, else
 * HX_UNAUTHENTICATED. Constant time in the configured keys. */
hx_status hx_auth_check(const hx_auth *a, const char *key, size_t len);

#endif /* HX_AUTH_H */

/*
 * apikey.h - the API key heliox-ingest sends (apikey.c).
 */
#ifndef HELIOX_CLI_APIKEY_H
#define HELIOX_CLI_APIKEY_H

#include <stddef.h>

#include "cli.h"

/*
 * The key: --api-key, else --api-key-file, else $HELIOX_API_KEY_FILE, else
 * the first key of $ADMIN_API_KEY. A key read from a file or cut from the
 * list goes to keybuf (the caller wipes it). Sets a->api_key (NULL when
 * there is none) and returns 0, or an exit status after saying why.
 */
int cli_resolve_key(cli_args *a, char *keybuf, size_t keybufsz);

#endif /* HELIOX_CLI_APIKEY_H */

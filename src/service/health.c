/*
 * health.c - the Health method: is the server serving, can it reach its
 * database, which version, how long up.
 */
#include <stdio.h>

#include "base/clock.h"
#include "method.h"

/* database_ok comes from hx_store_ping, which answers from what the
 * database said in the last second (any statement on this worker's
 * connection counts) instead of a round trip per call; a lost connection
 * anywhere in the server voids that at once. So Health stays cheap, and a
 * database that goes away shows as database_ok=false within about a
 * second. */
void
hx_method_health(hx_call *c)
{
	uint64_t now = hx_clock_us();
	bool     db = c->store != NULL && hx_store_ping(c->store) == HX_OK;

	heliox__ingest__v1__health_result__init(&c->health);
	c->health.serving = true;
	c->health.database_ok = db;
	c->health.version = (char *) HX_VERSION;
	c->health.uptime_s = now > c->cfg->started_us ? (now - c->cfg->started_us) / 1000000u : 0;
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH;
	snprintf(c->detail, sizeof(c->detail), "database_ok=%s", db ? "true" : "false");
}

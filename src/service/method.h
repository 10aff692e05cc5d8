/*
 * method.h - the RPC methods, one file each, as the dispatcher (rpc.c) calls
 * them once a request has been decoded and authenticated. Private to
 * hx_service. A method reads its request, fills c's result or answers with
 * hx_call_fail(), and puts its part of the log line in c->detail; it depends
 * on call.h only, never on the dispatcher.
 */
#ifndef HELIOX_METHOD_H
#define HELIOX_METHOD_H

#include "call.h"

/* Health (health.c): serving, database_ok, version, uptime. */
void hx_method_health(hx_call *c);

/* Summary (summary.c): the stored costs grouped and filtered. */
void hx_method_summary(hx_call *c, const Heliox__Ingest__V1__SummaryRequest *s);

/* Ingest (ingest.c): validate a source's records and store them. */
void hx_method_ingest(hx_call *c, const Heliox__Ingest__V1__IngestRequest *rq);

/* An authenticated ingest refused before the method ran (bad request_id, a
 * NUL byte): still an ingest result and an audit row (ingest.c). */
void hx_method_ingest_refused(hx_call *c, const Heliox__Ingest__V1__IngestRequest *rq);

#endif /* HELIOX_METHOD_H */

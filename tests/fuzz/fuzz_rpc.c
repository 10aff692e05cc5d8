/*
 * fuzz_rpc.c - bytes -> hx_rpc_handle() without a database (store == NULL),
 * with one configured key, FUZZ_KEY. The seed corpus (make_corpus.py) holds
 * requests that carry that key, so the fuzzer gets past auth at once.
 *
 * For any input the reply must be built, must decode as an RpcResponse with
 * a request_id, and must follow the contract (section 5):
 *  - bytes that do not decode: INVALID_ARGUMENT;
 *  - a missing or wrong api_key: UNAUTHENTICATED, whatever else was sent;
 *  - no INTERNAL: with no database nothing unexpected may happen;
 *  - the request_id is echoed (a non-empty one that is not may only be
 *    refused: INVALID_ARGUMENT or UNAUTHENTICATED), and what goes back is
 *    printable ASCII without spaces, safe to log;
 *  - an ingest result: always inserted + updated + unchanged + failed ==
 *    received; when not, nothing inserted, updated or unchanged;
 *  - a health result: serving, and no database.
 * Everything is freed (LeakSanitizer checks).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base/clock.h"
#include "fuzz.h"
#include "heliox/ingest/v1/ingest.pb-c.h"
#include "log.h"
#include "rpc.h"

#define FUZZ_KEY "fuzz-key-0123456789abcdef" /* make_corpus.py uses it too */

/* The server's bundled mock export, in small. */
static const char mock_json[] =
    "{\"export_id\":\"fuzz\",\"currency\":\"USD\",\"cost_data\":["
    "{\"date\":\"2026-01-01\",\"provider\":\"AWS\",\"gpu_type\":\"A100\",\"cost_usd\":1245.67},"
    "{\"date\":\"2026-01-01\",\"provider\":\"AWS\",\"gpu_type\":\"H100\",\"cost_usd\":\"2189.45\"}]"
    "}";

static hx_rpc_config cfg;

/* Once per process: the key and the config. The hx_auth stays reachable
 * from cfg, so LeakSanitizer does not count it. */
static void
setup(void)
{
	hx_auth *auth = NULL;
	char     err[256];

	hx_log_set_level(HX_LOG_ERROR); /* keep the fuzzer's output readable */
	if (hx_auth_load(&auth, FUZZ_KEY, NULL, err, sizeof err) != HX_OK) {
		fprintf(stderr, "fuzz_rpc: hx_auth_load: %s\n", err);
		abort();
	}
	cfg.auth = auth;
	cfg.mock_json = mock_json;
	cfg.mock_len = sizeof mock_json - 1;
	cfg.max_message_bytes = 1u << 20;
	cfg.default_timeout_ms = HX_RPC_DEFAULT_TIMEOUT_MS;
	cfg.started_us = hx_clock_us();
}

/* What the reply says, against what was asked (q is NULL for garbage). */
static void
check_reply(const Heliox__Ingest__V1__RpcRequest *q, const Heliox__Ingest__V1__RpcResponse *r)
{
	int  code = r->status ? (int) r->status->code : HELIOX__INGEST__V1__CODE__OK;
	bool refused = code == HELIOX__INGEST__V1__CODE__INVALID_ARGUMENT ||
	    code == HELIOX__INGEST__V1__CODE__UNAUTHENTICATED;

	HX_FUZZ_CHECK(r->request_id != NULL && r->request_id[0] != '\0');
	for (const char *p = r->request_id; *p; p++)
		HX_FUZZ_CHECK(*p > ' ' && *p < 0x7F);
	HX_FUZZ_CHECK(code != HELIOX__INGEST__V1__CODE__INTERNAL);
	if (q == NULL) {
		HX_FUZZ_CHECK(code == HELIOX__INGEST__V1__CODE__INVALID_ARGUMENT);
	} else {
		if (strcmp(q->api_key, FUZZ_KEY) != 0)
			HX_FUZZ_CHECK(code == HELIOX__INGEST__V1__CODE__UNAUTHENTICATED);
		if (q->request_id[0] != '\0' && strcmp(q->request_id, r->request_id) != 0)
			HX_FUZZ_CHECK(refused);
	}
	if (r->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST) {
		const Heliox__Ingest__V1__IngestResult *g = r->ingest;

		HX_FUZZ_CHECK((uint64_t) g->inserted + g->updated + g->unchanged + g->failed ==
		              g->received);
		if (code != HELIOX__INGEST__V1__CODE__OK)
			HX_FUZZ_CHECK(g->inserted == 0 && g->updated == 0 && g->unchanged == 0);
	}
	if (r->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH)
		HX_FUZZ_CHECK(r->health->serving && !r->health->database_ok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Heliox__Ingest__V1__RpcRequest  *q;
	Heliox__Ingest__V1__RpcResponse *r;
	uint8_t                         *out = NULL;
	size_t                           out_len = 0;

	if (cfg.auth == NULL)
		setup();
	HX_FUZZ_CHECK(hx_rpc_handle(&cfg, NULL, data, size, "fuzz", NULL, &out, &out_len) == HX_OK);
	HX_FUZZ_CHECK(out != NULL);

	r = (Heliox__Ingest__V1__RpcResponse *) protobuf_c_message_unpack(
	    &heliox__ingest__v1__rpc_response__descriptor, NULL, out_len, out);
	HX_FUZZ_CHECK(r != NULL);
	q = heliox__ingest__v1__rpc_request__unpack(NULL, size, data); /* NULL: garbage */
	check_reply(q, r);

	if (q != NULL)
		heliox__ingest__v1__rpc_request__free_unpacked(q, NULL);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	free(out);
	return 0;
}

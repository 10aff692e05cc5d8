/*
 * test_rpc.c - the request path (hx_rpc_handle) without a database, and the
 * API key loader/checker it relies on.
 *
 * Requests are built and replies decoded with the generated protobuf-c code,
 * as a client would. The store is NULL throughout: validation must still run
 * first, and anything that needs the database answers UNAVAILABLE.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "base/clock.h"
#include "heliox/ingest/v1/ingest.pb-c.h"
#include "log.h"
#include "rpc.h"

typedef Heliox__Ingest__V1__RpcRequest  RpcRequest;
typedef Heliox__Ingest__V1__RpcResponse RpcResponse;
typedef Heliox__Ingest__V1__CostRecord  CostRecord;

#define KEY      "test-key-0123456789abcdef"
#define OTHERKEY "test-key-0123456789abcdeX"

#define CODE(name) HELIOX__INGEST__V1__CODE__##name

static hx_auth      *auth;
static hx_rpc_config cfg;

static const char mock_json[] =
    "{\"currency\":\"USD\",\"cost_data\":["
    "{\"date\":\"2026-01-01\",\"provider\":\"AWS\",\"gpu_type\":\"A100\",\"cost_usd\":1245.67},"
    "{\"date\":\"2026-01-01\",\"provider\":\"AWS\",\"gpu_type\":\"H100\",\"cost_usd\":2100.5}]}";

/* ---- helpers -------------------------------------------------------------- */

static RpcResponse *
call_bytes(const uint8_t *req, size_t len)
{
	uint8_t *out = NULL;
	size_t   out_len = 0;

	assert_int_equal(hx_rpc_handle(&cfg, NULL, req, len, "test-peer", NULL, &out, &out_len),
	                 HX_OK);
	assert_non_null(out);
	RpcResponse *r = heliox__ingest__v1__rpc_response__unpack(NULL, out_len, out);
	free(out);
	assert_non_null(r);
	assert_non_null(r->status);
	return r;
}

static uint8_t *
pack(const RpcRequest *rq, size_t *len)
{
	*len = heliox__ingest__v1__rpc_request__get_packed_size(rq);
	uint8_t *buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(heliox__ingest__v1__rpc_request__pack(rq, buf), *len);
	return buf;
}

static RpcResponse *
call(const RpcRequest *rq)
{
	size_t       len;
	uint8_t     *buf = pack(rq, &len);
	RpcResponse *r = call_bytes(buf, len);
	free(buf);
	return r;
}

static void
done(RpcResponse *r)
{
	heliox__ingest__v1__rpc_response__free_unpacked(r, NULL);
}

static void
init_request(RpcRequest *rq)
{
	heliox__ingest__v1__rpc_request__init(rq);
	rq->api_key = (char *) KEY;
}

static const char *
violation(const RpcResponse *r, const char *field)
{
	for (size_t i = 0; i < r->status->n_violations; i++)
		if (strcmp(r->status->violations[i]->field, field) == 0)
			return r->status->violations[i]->description;
	return NULL;
}

static void
expect(const RpcResponse *r, int code, const char *message)
{
	if ((int) r->status->code != code)
		fail_msg("code %d (%s), expected %d", r->status->code, r->status->message, code);
	if (message != NULL)
		assert_string_equal(r->status->message, message);
	assert_true(strlen(r->request_id) > 0); /* every reply carries an id */
}

typedef struct rec {
	const char *date, *provider, *gpu, *cost;
} rec;

/* An ingest of RecordBatch records; the CostRecords live in *store. */
static RpcResponse *
ingest_records(const rec *recs, size_t n, bool skip_invalid, bool dry_run)
{
	Heliox__Ingest__V1__IngestRequest in = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	Heliox__Ingest__V1__RecordBatch   rb = HELIOX__INGEST__V1__RECORD_BATCH__INIT;
	CostRecord                       *cr = calloc(n + 1, sizeof(*cr));
	CostRecord                      **ptrs = calloc(n + 1, sizeof(*ptrs));
	RpcRequest                        rq;

	assert_non_null(cr);
	assert_non_null(ptrs);
	for (size_t i = 0; i < n; i++) {
		heliox__ingest__v1__cost_record__init(&cr[i]);
		cr[i].date = (char *) recs[i].date;
		cr[i].provider = (char *) recs[i].provider;
		cr[i].gpu_type = (char *) recs[i].gpu;
		cr[i].cost_usd = (char *) recs[i].cost;
		ptrs[i] = &cr[i];
	}
	rb.n_records = n;
	rb.records = ptrs;
	in.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS;
	in.records = &rb;
	in.skip_invalid = skip_invalid;
	in.dry_run = dry_run;
	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	rq.ingest = &in;
	RpcResponse *r = call(&rq);
	free(cr);
	free(ptrs);
	return r;
}

static RpcResponse *
ingest_json(const char *json, bool skip_invalid)
{
	Heliox__Ingest__V1__IngestRequest in = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	RpcRequest                        rq;

	in.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_EXPORT_JSON;
	in.export_json.data = (uint8_t *) json;
	in.export_json.len = strlen(json);
	in.skip_invalid = skip_invalid;
	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	rq.ingest = &in;
	return call(&rq);
}

static RpcResponse *
health(const char *request_id)
{
	Heliox__Ingest__V1__HealthRequest h = HELIOX__INGEST__V1__HEALTH_REQUEST__INIT;
	RpcRequest                        rq;

	init_request(&rq);
	rq.request_id = (char *) request_id;
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH;
	rq.health = &h;
	return call(&rq);
}

static const rec good[] = {
	{ "2026-01-01", "AWS", "A100", "1245.67" },
	{ "2026-01-01", "AWS", "H100", "2100.50" },
	{ "2026-01-02", "AWS", "A100", "1300" },
	{ "2026-01-02", "AWS", "H100", "0.000001" },
};

/* ---- decode, size, auth ----------------------------------------------------- */

static void
test_garbage(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0x05, 'a', 'b' }; /* length runs past the end */
	RpcResponse         *r = call_bytes(junk, sizeof(junk));

	expect(r, CODE(INVALID_ARGUMENT), "request could not be decoded");
	assert_int_equal(strlen(r->request_id), 36);
	assert_int_equal(r->result_case, HELIOX__INGEST__V1__RPC_RESPONSE__RESULT__NOT_SET);
	done(r);
}

static void
test_empty_message(void **state)
{
	RpcResponse *r = call_bytes((const uint8_t *) "", 0);

	expect(r, CODE(UNAUTHENTICATED), "missing api_key");
	done(r);
}

static void
test_wrong_key(void **state)
{
	RpcRequest rq;

	init_request(&rq);
	rq.api_key = (char *) OTHERKEY;
	rq.request_id = (char *) "my-request-1";
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH;
	Heliox__Ingest__V1__HealthRequest h = HELIOX__INGEST__V1__HEALTH_REQUEST__INIT;
	rq.health = &h;
	RpcResponse *r = call(&rq);
	expect(r, CODE(UNAUTHENTICATED), "invalid api_key");
	assert_string_equal(r->request_id, "my-request-1");
	assert_int_equal(r->result_case, HELIOX__INGEST__V1__RPC_RESPONSE__RESULT__NOT_SET);
	done(r);
}

static void
test_no_method(void **state)
{
	RpcRequest rq;

	init_request(&rq);
	RpcResponse *r = call(&rq);
	expect(r, CODE(UNIMPLEMENTED), "no method set");
	done(r);
}

static void
test_oversize(void **state)
{
	uint8_t big[100] = { 0 };
	size_t  saved = cfg.max_message_bytes;

	cfg.max_message_bytes = 64;
	RpcResponse *r = call_bytes(big, sizeof(big));
	cfg.max_message_bytes = saved;
	expect(r, CODE(RESOURCE_EXHAUSTED), "request of 100 bytes exceeds the limit of 64 bytes");
	done(r);
}

/* ---- request ids ---------------------------------------------------------------- */

static void
test_request_id_echo_and_generation(void **state)
{
	RpcResponse *r = health("client-chosen-id:42");
	expect(r, CODE(OK), NULL);
	assert_string_equal(r->request_id, "client-chosen-id:42");
	done(r);

	RpcResponse *a = health("");
	RpcResponse *b = health("");
	const char  *id = a->request_id;
	assert_int_equal(strlen(id), 36);
	assert_true(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
	assert_int_equal(id[14], '4'); /* version 4 */
	assert_non_null(strchr("89ab", id[19]));
	assert_string_not_equal(a->request_id, b->request_id);
	done(a);
	done(b);
}

static void
test_bad_request_id(void **state)
{
	char longid[130];

	RpcResponse *r = health("has space");
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_non_null(violation(r, "request_id"));
	assert_int_equal(strlen(r->request_id), 36); /* not echoed: a generated one */
	done(r);

	memset(longid, 'x', 129);
	longid[129] = '\0';
	r = health(longid);
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_non_null(violation(r, "request_id"));
	done(r);

	longid[128] = '\0'; /* 128 bytes: the most allowed */
	r = health(longid);
	expect(r, CODE(OK), NULL);
	assert_string_equal(r->request_id, longid);
	done(r);
}

/* ---- NUL bytes ---------------------------------------------------------------------- */

/* Packs `rq`, turns the first 'x' of `marker` in the bytes into a NUL, and
 * calls. */
static RpcResponse *
call_with_nul(const RpcRequest *rq, const char *marker)
{
	size_t   len;
	uint8_t *buf = pack(rq, &len);
	uint8_t *at = memmem(buf, len, marker, strlen(marker));

	assert_non_null(at);
	*(uint8_t *) memchr(at, 'x', strlen(marker)) = 0;
	RpcResponse *r = call_bytes(buf, len);
	free(buf);
	return r;
}

static void
test_nul_in_record(void **state)
{
	Heliox__Ingest__V1__IngestRequest in = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	Heliox__Ingest__V1__RecordBatch   rb = HELIOX__INGEST__V1__RECORD_BATCH__INIT;
	CostRecord                        cr[3];
	CostRecord                       *ptrs[3];
	RpcRequest                        rq;

	for (size_t i = 0; i < 3; i++) {
		heliox__ingest__v1__cost_record__init(&cr[i]);
		cr[i].date = (char *) good[i].date;
		cr[i].provider = (char *) (i == 1 ? "AWSxMARK" : good[i].provider);
		cr[i].gpu_type = (char *) good[i].gpu;
		cr[i].cost_usd = (char *) good[i].cost;
		ptrs[i] = &cr[i];
	}
	rb.n_records = 3;
	rb.records = ptrs;
	in.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_RECORDS;
	in.records = &rb;
	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	rq.ingest = &in;

	RpcResponse *r = call_with_nul(&rq, "AWSxMARK");
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_int_equal(r->status->n_violations, 1);
	assert_string_equal(r->status->violations[0]->field, "records[1].provider");
	assert_string_equal(r->status->violations[0]->description, "contains a NUL character");
	assert_int_equal(r->result_case, HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST);
	done(r);
}

static void
test_nul_in_api_key_and_summary(void **state)
{
	Heliox__Ingest__V1__SummaryRequest s = HELIOX__INGEST__V1__SUMMARY_REQUEST__INIT;
	RpcRequest                         rq;

	/* The key is valid up to the NUL; what follows must not slip through. */
	init_request(&rq);
	rq.api_key = (char *) KEY "xtrailer";
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY;
	rq.summary = &s;
	s.gpu_type = (char *) "a100xjunk";
	RpcResponse *r = call_with_nul(&rq, KEY "xtrailer");
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_non_null(violation(r, "api_key"));
	assert_null(violation(r, "gpu_type"));
	done(r);

	rq.api_key = (char *) KEY;
	r = call_with_nul(&rq, "a100xjunk");
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_string_equal(violation(r, "gpu_type"), "contains a NUL character");
	done(r);
}

/* ---- ingest validation ---------------------------------------------------------------- */

static void
test_ingest_bad_records(void **state)
{
	const rec recs[] = {
		{ "2026-01-01", "AWS", "A100", "1245.67" },
		{ "2026-02-30", "AWS", "A100", "10" }, /* no such day */
		{ "2026-01-03", "AWS", "A100", "10" },
		{ "2026-01-04", "AWS", "A100", "-5" }, /* not > 0 */
		{ "2026-01-05", "AWS", "A100", "7.25" },
	};
	RpcResponse *r = ingest_records(recs, 5, false, false);

	expect(r, CODE(INVALID_ARGUMENT), "2 of 5 records are invalid");
	assert_int_equal(r->status->n_violations, 2);
	assert_string_equal(r->status->violations[0]->field, "records[1].date");
	assert_string_equal(r->status->violations[1]->field, "records[3].cost_usd");
	assert_int_equal(r->result_case, HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST);
	assert_int_equal(r->ingest->received, 5);
	/* Nothing was written, so all 5 failed (the sum always equals received). */
	assert_int_equal(r->ingest->failed, 5);
	assert_int_equal(r->ingest->inserted + r->ingest->updated + r->ingest->unchanged, 0);
	done(r);

	/* skip_invalid: validation passes, so the (absent) database is next. */
	r = ingest_records(recs, 5, true, false);
	expect(r, CODE(UNAVAILABLE), "database unavailable");
	assert_int_equal(r->status->n_violations, 2);
	assert_int_equal(r->ingest->received, 5);
	assert_int_equal(r->ingest->failed, 5);
	done(r);
}

static void
test_ingest_duplicate_and_empty(void **state)
{
	const rec recs[] = {
		{ "2026-01-01", "AWS", "A100", "1" },
		{ "2026-01-02", "AWS", "A100", "1" },
		{ "2026-01-01", " aws ", "a100", "2" }, /* same key once normalised */
	};
	RpcResponse *r = ingest_records(recs, 3, false, false);
	expect(r, CODE(INVALID_ARGUMENT), "1 of 3 records are invalid");
	assert_string_equal(violation(r, "records[2]"), "duplicate of records[0]");
	done(r);

	r = ingest_records(NULL, 0, false, false);
	expect(r, CODE(INVALID_ARGUMENT), "ingest request is invalid: records must not be empty");
	assert_non_null(violation(r, "records"));
	done(r);
}

static void
test_ingest_violation_cap(void **state)
{
	rec *recs = calloc(1100, sizeof(*recs));

	assert_non_null(recs);
	for (size_t i = 0; i < 1100; i++)
		recs[i] = (rec){ "2026-01-01", "AWS", "A100", "0" };
	recs[0].cost = "1";
	RpcResponse *r = ingest_records(recs, 1100, false, false);
	free(recs);
	/* 1 valid, 1099 invalid: the later ones are also duplicates. */
	expect(r, CODE(INVALID_ARGUMENT), "1099 of 1100 records are invalid (first 1000 listed)");
	assert_int_equal(r->status->n_violations, HX_VIOLATIONS_DEFAULT_LIMIT);
	assert_int_equal(r->ingest->failed, 1100);
	done(r);
}

static void
test_ingest_document_level(void **state)
{
	RpcResponse *r = ingest_json("not json", false);
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_int_equal(r->status->n_violations, 1);
	assert_string_equal(r->status->violations[0]->field, "$");
	assert_int_equal(r->ingest->received, 0);
	done(r);

	r = ingest_json("{\"currency\":\"EUR\",\"cost_data\":[]}", true);
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_non_null(violation(r, "currency"));
	assert_non_null(violation(r, "cost_data"));
	done(r);

	/* skip_invalid cannot skip a fault of the document itself. */
	r = ingest_json("{\"currency\":\"EUR\",\"cost_data\":[{\"date\":\"2026-01-01\","
	                "\"provider\":\"AWS\",\"gpu_type\":\"A100\",\"cost_usd\":1}]}",
	                true);
	expect(r, CODE(INVALID_ARGUMENT), "ingest request is invalid: currency must be \"USD\"");
	assert_int_equal(r->ingest->received, 1);
	assert_int_equal(r->ingest->failed, 1);
	done(r);

	r = ingest_json("{\"cost_data\":[{\"date\":\"2026-01-01\",\"provider\":\"\","
	                "\"gpu_type\":\"A100\",\"cost_usd\":\"1.5\"}]}",
	                false);
	expect(r, CODE(INVALID_ARGUMENT), "1 of 1 records are invalid");
	assert_non_null(violation(r, "cost_data[0].provider"));
	done(r);
}

static void
test_ingest_no_source(void **state)
{
	Heliox__Ingest__V1__IngestRequest in = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	RpcRequest                        rq;

	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	rq.ingest = &in;
	RpcResponse *r = call(&rq);
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_string_equal(violation(r, "source"),
	                    "one of mock, export_json, records is required");
	done(r);
}

/* ---- without a database ---------------------------------------------------------------- */

static void
test_health_without_db(void **state)
{
	RpcResponse *r = health("h-1");

	expect(r, CODE(OK), "");
	assert_int_equal(r->result_case, HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH);
	assert_true(r->health->serving);
	assert_false(r->health->database_ok);
	assert_string_equal(r->health->version, HX_VERSION);
	done(r);
}

static void
test_valid_ingest_without_db(void **state)
{
	hx_log_set_level(HX_LOG_DEBUG); /* exercise the per-record lines once */
	RpcResponse *r = ingest_records(good, 4, false, false);
	hx_log_set_level(HX_LOG_WARN);
	expect(r, CODE(UNAVAILABLE), "database unavailable");
	assert_int_equal(r->status->n_violations, 0);
	assert_int_equal(r->ingest->received, 4);
	assert_int_equal(r->ingest->failed, 4); /* nothing written: all failed */
	done(r);

	r = ingest_records(good, 4, false, true);
	expect(r, CODE(UNAVAILABLE), "database unavailable");
	assert_true(r->ingest->dry_run);
	done(r);
}

static void
test_mock_source(void **state)
{
	Heliox__Ingest__V1__IngestRequest in = HELIOX__INGEST__V1__INGEST_REQUEST__INIT;
	RpcRequest                        rq;

	in.source_case = HELIOX__INGEST__V1__INGEST_REQUEST__SOURCE_MOCK;
	in.mock = true;
	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST;
	rq.ingest = &in;

	RpcResponse *r = call(&rq);
	expect(r, CODE(FAILED_PRECONDITION), "no mock export in the data dir");
	done(r);

	cfg.mock_json = mock_json;
	cfg.mock_len = strlen(mock_json);
	r = call(&rq);
	cfg.mock_json = NULL;
	cfg.mock_len = 0;
	expect(r, CODE(UNAVAILABLE), "database unavailable");
	assert_int_equal(r->ingest->received, 2);
	done(r);
}

static void
test_summary_filters(void **state)
{
	Heliox__Ingest__V1__SummaryRequest s = HELIOX__INGEST__V1__SUMMARY_REQUEST__INIT;
	RpcRequest                         rq;

	init_request(&rq);
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY;
	rq.summary = &s;
	s.from_date = (char *) "2026-13-01";
	s.to_date = (char *) "2026-01-31";
	s.provider = (char *) "   ";
	s.gpu_type = (char *) " A100 ";
	s.group_by = (Heliox__Ingest__V1__GroupBy) 99;
	RpcResponse *r = call(&rq);
	expect(r, CODE(INVALID_ARGUMENT), NULL);
	assert_int_equal(r->status->n_violations, 3);
	assert_non_null(violation(r, "from_date"));
	assert_non_null(violation(r, "provider"));
	assert_non_null(violation(r, "group_by"));
	done(r);

	s.from_date = (char *) "";
	s.provider = (char *) "aws";
	s.group_by = HELIOX__INGEST__V1__GROUP_BY__PROVIDER_GPU_TYPE;
	r = call(&rq);
	expect(r, CODE(UNAVAILABLE), "database unavailable");
	done(r);
}

/* ---- API keys ---------------------------------------------------------------------------- */

static void
expect_refusal(const char *env, const char *file, const char *reason_part, const char *secret)
{
	hx_auth *a = (hx_auth *) 1;
	char     err[512] = "";

	assert_int_equal(hx_auth_load(&a, env, file, err, sizeof(err)), HX_INVALID_ARGUMENT);
	assert_null(a);
	if (strstr(err, reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", err, reason_part);
	if (secret != NULL && strstr(err, secret) != NULL)
		fail_msg("reason \"%s\" reveals the key", err);
}

static char *
key_file(const char *text, mode_t mode)
{
	static char path[64];

	snprintf(path, sizeof(path), "/tmp/hx-test-keys-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void
test_key_file_permissions(void **state)
{
	char *path = key_file("file-key-0123456789abcdef\n", 0644);
	expect_refusal(NULL, path, "is readable by others; chmod 600 it", "file-key-0123");
	assert_int_equal(chmod(path, 0620), 0);
	expect_refusal(NULL, path, "chmod 600", "file-key-0123");
	unlink(path);

	expect_refusal(NULL, "/nonexistent/keys", "/nonexistent/keys", NULL);
}

static void
test_key_file_format(void **state)
{
	hx_auth *a = NULL;
	char     err[256];
	char    *path = key_file("# rotation: new key first\n\n"
	                            "file-key-new-0123456789\r\n"
	                            "   \n"
	                            "file-key-old-0123456789  \n",
	                         0600);

	assert_int_equal(hx_auth_load(&a, "env-key-0123456789abcdef", path, err, sizeof(err)),
	                 HX_OK);
	unlink(path);
	assert_int_equal(hx_auth_count(a), 3);
	assert_int_equal(hx_auth_check(a, "file-key-new-0123456789", 23), HX_OK);
	assert_int_equal(hx_auth_check(a, "file-key-old-0123456789", 23), HX_OK);
	assert_int_equal(hx_auth_check(a, "env-key-0123456789abcdef", 24), HX_OK);
	assert_int_equal(hx_auth_check(a, "# rotation: new key first", 25), HX_UNAUTHENTICATED);
	hx_auth_free(a);
}

static void
test_key_refusals(void **state)
{
	char huge[300];

	expect_refusal("short-key", NULL, "at least 16", "short-key");
	expect_refusal("good-key-0123456789, tiny", NULL, "key 2", "tiny");
	expect_refusal(NULL, NULL, "no API key", NULL);
	expect_refusal(" , ,", NULL, "no API key", NULL);
	memset(huge, 'k', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	expect_refusal(huge, NULL, "at most 256", "kkkkkkkkkkkkkkkk");
}

static void
test_key_rotation(void **state)
{
	hx_auth    *a = NULL;
	char        err[256];
	const char *k1 = "key-one-0123456789", *k2 = "key-two-0123456789";

	assert_int_equal(
	    hx_auth_load(&a, " key-one-0123456789 ,, key-two-0123456789,", NULL, err, sizeof(err)),
	    HX_OK);
	assert_int_equal(hx_auth_count(a), 2);
	assert_int_equal(hx_auth_check(a, k1, strlen(k1)), HX_OK);
	assert_int_equal(hx_auth_check(a, k2, strlen(k2)), HX_OK);
	/* A prefix, an extension, a near miss, nothing at all. */
	assert_int_equal(hx_auth_check(a, k1, strlen(k1) - 1), HX_UNAUTHENTICATED);
	assert_int_equal(hx_auth_check(a, "key-one-0123456789X", 19), HX_UNAUTHENTICATED);
	assert_int_equal(hx_auth_check(a, "key-one-0123456788", 18), HX_UNAUTHENTICATED);
	assert_int_equal(hx_auth_check(a, "", 0), HX_UNAUTHENTICATED);
	/* Same bytes with zero padding still differ by length. */
	assert_int_equal(hx_auth_check(a, "key-one-0123456789\0", 19), HX_UNAUTHENTICATED);
	hx_auth_free(a);
}

/* ---- the outcome the server throttles on, and the throttle ------------------------------ */

static hx_rpc_outcome
outcome_of(const uint8_t *req, size_t len)
{
	hx_rpc_outcome oc = { .auth = HX_RPC_AUTH_OK, .code = HX_INTERNAL };
	uint8_t       *out = NULL;
	size_t         out_len = 0;

	assert_int_equal(hx_rpc_handle(&cfg, NULL, req, len, "test-peer", &oc, &out, &out_len),
	                 HX_OK);
	free(out);
	return oc;
}

static hx_rpc_outcome
outcome_with_key(const char *key)
{
	RpcRequest                        rq;
	Heliox__Ingest__V1__HealthRequest h = HELIOX__INGEST__V1__HEALTH_REQUEST__INIT;
	size_t                            len;

	init_request(&rq);
	rq.api_key = (char *) key;
	rq.call_case = HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH;
	rq.health = &h;
	uint8_t       *buf = pack(&rq, &len);
	hx_rpc_outcome oc = outcome_of(buf, len);
	free(buf);
	return oc;
}

static void
test_outcome(void **state)
{
	static const uint8_t junk[] = { 0x0a, 0x05, 'a', 'b' };
	hx_rpc_outcome       oc;

	oc = outcome_with_key(KEY);
	assert_int_equal(oc.auth, HX_RPC_AUTH_OK);
	assert_int_equal(oc.code, HX_OK);
	oc = outcome_with_key(OTHERKEY);
	assert_int_equal(oc.auth, HX_RPC_AUTH_FAILED);
	assert_int_equal(oc.code, HX_UNAUTHENTICATED);
	oc = outcome_of((const uint8_t *) "", 0); /* missing api_key */
	assert_int_equal(oc.auth, HX_RPC_AUTH_FAILED);
	oc = outcome_of(junk, sizeof(junk));
	assert_int_equal(oc.auth, HX_RPC_AUTH_NOT_REACHED);
	assert_int_equal(oc.code, HX_INVALID_ARGUMENT);
}

static hx_peer_id
peer4(unsigned char last)
{
	hx_peer_id id = { HX_PEER_IPV4, { 127, 0, 0, last } };
	return id;
}

static void
test_throttle(void **state)
{
	hx_throttle *t = hx_throttle_new();
	hx_peer_id   a = peer4(2), b = peer4(3), none = { HX_PEER_NONE, { 0 } };
	uint64_t     now = 1000000;
	bool         began = true;

	assert_non_null(t);
	for (int i = 0; i < HX_THROTTLE_FREE; i++) {
		assert_int_equal(hx_throttle_failure(t, &a, now, &began), 0);
		assert_false(began);
	}
	/* Past the allowance: one more base delay per failure, up to the cap. */
	assert_int_equal(hx_throttle_failure(t, &a, now, &began), HX_THROTTLE_BASE_MS);
	assert_true(began);
	assert_int_equal(hx_throttle_failure(t, &a, now, &began), 2 * HX_THROTTLE_BASE_MS);
	assert_false(began);
	for (int i = 0; i < 20; i++)
		hx_throttle_failure(t, &a, now, NULL);
	assert_int_equal(hx_throttle_failure(t, &a, now, NULL), HX_THROTTLE_CAP_MS);
	/* Another peer, and a peer nobody can name, owe nothing. */
	assert_int_equal(hx_throttle_failure(t, &b, now, NULL), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(hx_throttle_failure(t, &none, now, NULL), 0);
	/* Successes forgive one failure each. */
	for (int i = 0; i < 20; i++)
		hx_throttle_success(t, &a, now);
	assert_int_equal(hx_throttle_failure(t, &a, now, NULL), 0);
	hx_throttle_free(t);
}

static void
test_throttle_decay(void **state)
{
	hx_throttle *t = hx_throttle_new();
	hx_peer_id   a = peer4(2), b = peer4(3);
	uint64_t     now = 5000;

	/* The count leaks away at FREE failures per window. */
	for (int i = 0; i < HX_THROTTLE_FREE; i++)
		hx_throttle_failure(t, &b, now, NULL);
	assert_int_equal(hx_throttle_failure(t, &b, now, NULL), HX_THROTTLE_BASE_MS);
	now += HX_THROTTLE_WINDOW_MS / HX_THROTTLE_FREE; /* one failure's worth */
	assert_int_equal(hx_throttle_failure(t, &b, now, NULL), HX_THROTTLE_BASE_MS);
	now += 2 * HX_THROTTLE_WINDOW_MS / HX_THROTTLE_FREE + 1;
	assert_int_equal(hx_throttle_failure(t, &b, now, NULL), 0);

	/* However hard it hammered, a peer is forgiven after a bounded quiet time. */
	for (int i = 0; i < 1000; i++)
		hx_throttle_failure(t, &a, now, NULL);
	assert_int_equal(hx_throttle_failure(t, &a, now, NULL), HX_THROTTLE_CAP_MS);
	now += 4 * HX_THROTTLE_WINDOW_MS;
	assert_int_equal(hx_throttle_failure(t, &a, now, NULL), 0);
	hx_throttle_free(t);
}

static void
test_throttle_table_full(void **state)
{
	hx_throttle *t = hx_throttle_new();
	hx_peer_id   loud = peer4(1);
	uint64_t     now = 1;

	for (int i = 0; i < HX_THROTTLE_FREE + 3; i++)
		hx_throttle_failure(t, &loud, now, NULL);
	/* A crowd of one-failure peers, more than the table holds, evicts the
	 * quiet ones, never the peer with the highest count. */
	for (unsigned i = 0; i < 4 * HX_THROTTLE_PEERS; i++) {
		hx_peer_id p = { HX_PEER_IPV6_64,
			         { 0x20, 0x01, 0x0d, 0xb8, (unsigned char) (i >> 8),
			           (unsigned char) i, 0, 0 } };
		assert_int_equal(hx_throttle_failure(t, &p, now, NULL), 0);
	}
	assert_true(hx_throttle_failure(t, &loud, now, NULL) > 0);
	hx_throttle_free(t);
}

static void
test_log_level_parse(void **state)
{
	hx_log_level l;

	assert_int_equal(hx_log_level_parse("debug", &l), 0);
	assert_int_equal(l, HX_LOG_DEBUG);
	assert_int_equal(hx_log_level_parse("WARN", &l), 0);
	assert_int_equal(l, HX_LOG_WARN);
	assert_int_equal(hx_log_level_parse("verbose", &l), -1);
}

/* ---- main -------------------------------------------------------------------------------- */

static int
setup(void **state)
{
	char err[256];

	if (hx_auth_load(&auth, KEY, NULL, err, sizeof(err)) != HX_OK)
		return -1;
	cfg.auth = auth;
	cfg.max_message_bytes = HX_RPC_DEFAULT_MAX_MESSAGE;
	cfg.default_timeout_ms = HX_RPC_DEFAULT_TIMEOUT_MS;
	cfg.started_us = hx_clock_us();
	hx_log_set_level(HX_LOG_WARN); /* the path logs; keep test output short */
	return 0;
}

static int
teardown(void **state)
{
	hx_auth_free(auth);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_no_method),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_request_id_echo_and_generation),
		cmocka_unit_test(test_bad_request_id),
		cmocka_unit_test(test_nul_in_record),
		cmocka_unit_test(test_nul_in_api_key_and_summary),
		cmocka_unit_test(test_ingest_bad_records),
		cmocka_unit_test(test_ingest_duplicate_and_empty),
		cmocka_unit_test(test_ingest_violation_cap),
		cmocka_unit_test(test_ingest_document_level),
		cmocka_unit_test(test_ingest_no_source),
		cmocka_unit_test(test_health_without_db),
		cmocka_unit_test(test_valid_ingest_without_db),
		cmocka_unit_test(test_mock_source),
		cmocka_unit_test(test_summary_filters),
		cmocka_unit_test(test_key_file_permissions),
		cmocka_unit_test(test_key_file_format),
		cmocka_unit_test(test_key_refusals),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_outcome),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_throttle_decay),
		cmocka_unit_test(test_throttle_table_full),
		cmocka_unit_test(test_log_level_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

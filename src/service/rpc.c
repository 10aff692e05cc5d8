/*
 * rpc.c - one request in, one reply out: the path of a request.
 *
 *   size limit -> decode -> auth -> request_id -> NUL check -> method -> reply
 *
 * Each step is one function that either lets the request go on or sets the
 * answer (hx_call_fail) and stops it. Whatever happens, the caller gets a
 * reply that carries a request_id (the caller's, or one generated here) and
 * the log gets one line per request carrying the same id. The Ingest method
 * lives in ingest.c; Health and Summary, being short, live here.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"
#include "rpc_internal.h"

typedef Heliox__Ingest__V1__RpcRequest  RpcRequest;
typedef Heliox__Ingest__V1__RpcResponse RpcResponse;
typedef Heliox__Ingest__V1__SummaryRow  SummaryRow;

uint64_t
hx_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- the call ------------------------------------------------------------ */

void
hx_call_fail(hx_call *c, hx_status code, const char *fmt, ...)
{
	va_list ap;

	c->code = code;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

bool
hx_call_remaining_ms(hx_call *c, uint32_t *out)
{
	uint64_t spent = (hx_now_us() - c->started_us) / 1000u;

	*out = 0;
	if (c->timeout_ms == 0)
		return true;
	if (spent >= c->timeout_ms) {
		hx_call_fail(c, HX_DEADLINE_EXCEEDED, "deadline of %" PRIu32 " ms exceeded",
		             c->timeout_ms);
		return false;
	}
	*out = c->timeout_ms - (uint32_t) spent;
	return true;
}

void
hx_call_store_failed(hx_call *c, const char *what, hx_status st, const char *err)
{
	/* A database that is away is logged once by the server's watch, not
	 * by every request that meets it. */
	if (st == HX_UNAVAILABLE)
		hx_debug(c->rid, "%s failed: %s: %s", what, hx_status_name(st), err);
	else
		hx_error(c->rid, "%s failed: %s: %s", what, hx_status_name(st), err);
	switch (st) {
	case HX_UNAVAILABLE:
		hx_call_fail(c, HX_UNAVAILABLE, "database unavailable, retry");
		break;
	case HX_DEADLINE_EXCEEDED:
		hx_call_fail(c, HX_DEADLINE_EXCEEDED, "deadline of %" PRIu32 " ms exceeded",
		             c->timeout_ms);
		break;
	default:
		hx_call_fail(c, HX_INTERNAL, "internal error");
		break;
	}
}

static void
hx_call_init(hx_call *c, const hx_rpc_config *cfg, hx_store *store, const char *peer)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->store = store;
	c->peer = peer != NULL ? peer : "-";
	c->method = "-";
	c->started_us = hx_now_us();
	c->code = HX_OK;
	hx_violations_init(&c->viol, HX_VIOLATIONS_DEFAULT_LIMIT);
}

static void
hx_call_free(hx_call *c)
{
	hx_violations_free(&c->viol);
	free(c->summary.rows); /* one block with the rows behind the pointers */
	free(c->rows);
}

/* ---- request ids ------------------------------------------------------------ */

/* Fills buf from getrandom(2). Were the kernel to refuse, an id must still be
 * unique, not secret, so the clock and a counter stand in. */
static void
hx_random(uint8_t *buf, size_t len)
{
	static atomic_uint_fast64_t seq;
	size_t                      got = 0;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n > 0)
			got += (size_t) n;
		else if (errno != EINTR)
			break;
	}
	uint64_t x = hx_now_us() ^ (atomic_fetch_add(&seq, 1) * 0x9e3779b97f4a7c15u);
	for (; got < len; got++, x = x * 6364136223846793005u + 1442695040888963407u)
		buf[got] = (uint8_t) (x >> 56);
}

/* A random (version 4) UUID in its 36-character text form. */
static void
hx_uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t           b[16];
	size_t            o = 0;

	hx_random(b, sizeof(b));
	b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

/* Printable ASCII without space, at most HX_REQUEST_ID_MAX bytes: safe to
 * echo, to log and to store. */
static bool
hx_request_id_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n == HX_REQUEST_ID_MAX || (unsigned char) s[n] < 0x21 ||
		    (unsigned char) s[n] > 0x7e)
			return false;
	}
	return true;
}

/* Gives the call its id: the caller's when usable, else a generated one
 * (which an empty id asks for). Returns false for an unusable id. */
static bool
hx_request_id_resolve(hx_call *c, const char *id)
{
	bool ok = hx_request_id_valid(id);

	if (ok && id[0] != '\0')
		memcpy(c->rid, id, strlen(id) + 1);
	else
		hx_uuid4(c->rid);
	return ok;
}

/* ---- steps 1 to 4 ------------------------------------------------------------ */

static bool
hx_step_size(hx_call *c, size_t len)
{
	size_t limit =
	    c->cfg->max_message_bytes ? c->cfg->max_message_bytes : HX_RPC_DEFAULT_MAX_MESSAGE;

	if (len <= limit)
		return true;
	hx_call_fail(c, HX_RESOURCE_EXHAUSTED,
	             "request of %zu bytes exceeds the limit of %zu bytes", len, limit);
	return false;
}

static RpcRequest *
hx_step_decode(hx_call *c, const uint8_t *req, size_t len)
{
	RpcRequest *r = heliox__ingest__v1__rpc_request__unpack(NULL, len, req);

	if (r == NULL)
		hx_call_fail(c, HX_INVALID_ARGUMENT, "request could not be decoded");
	return r;
}

static const char *
hx_method_name(const RpcRequest *r)
{
	switch (r->call_case) {
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST:
		return "ingest";
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH:
		return "health";
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY:
		return "summary";
	default:
		return "-";
	}
}

/* Nothing of the request counts before this step. (Its method name and id
 * were read, only to label the log line: audit wants refused calls too.) */
static bool
hx_step_auth(hx_call *c, const RpcRequest *r)
{
	const char *why = NULL;

	if (r->api_key[0] == '\0')
		why = "missing api_key";
	else if (hx_auth_check_id(atomic_load(&c->cfg->auth), r->api_key, strlen(r->api_key),
	                          &c->key_id) != HX_OK)
		why = "invalid api_key";
	if (why == NULL) {
		c->auth = HX_RPC_AUTH_OK;
		return true;
	}
	c->auth = HX_RPC_AUTH_FAILED;
	hx_warn(c->rid, "auth failed: method=%s peer=%s: %s", c->method, c->peer, why);
	hx_call_fail(c, HX_UNAUTHENTICATED, "%s", why);
	return false;
}

static bool
hx_step_request_id(hx_call *c, bool valid, const char *base)
{
	bool base_ok = hx_request_id_valid(base);

	snprintf(c->base_rid, sizeof(c->base_rid), "%s",
	         base_ok && base[0] != '\0' ? base : c->rid);
	if (valid && base_ok)
		return true;
	if (!valid)
		hx_violations_add(&c->viol, "request_id",
		                  "must be at most %d bytes of printable ASCII without spaces",
		                  HX_REQUEST_ID_MAX);
	if (!base_ok)
		hx_violations_add(&c->viol, "base_request_id",
		                  "must be at most %d bytes of printable ASCII without spaces",
		                  HX_REQUEST_ID_MAX);
	hx_call_fail(c, HX_INVALID_ARGUMENT, "invalid %s",
	             valid ? "base_request_id" : "request_id");
	return false;
}

/* ---- step 5: NUL bytes inside string fields ----------------------------------- */

/*
 * protobuf-c hands strings over NUL-terminated, so "aws\0junk" would arrive
 * as "aws" and nothing after decoding could tell. So the raw bytes are walked
 * once more, guided by the descriptors, and every string field holding a 0
 * byte is reported. The bytes already decoded, so the walk need only stay in
 * bounds. Paths follow the contract: a repeated field is "name[i]"; a
 * singular message is a container and adds nothing, which turns
 * RpcRequest.ingest.records.records[3].provider into "records[3].provider".
 */
typedef struct hx_wire {
	const uint8_t *p, *end;
} hx_wire;

static bool
hx_wire_varint(hx_wire *w, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && w->p < w->end; shift += 7) {
		uint8_t b = *w->p++;
		*v |= (uint64_t) (b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Steps over one value of wire type `wt`; a length-delimited one is
 * returned in *val and *len. False on a wire type protobuf-c does not decode. */
static bool
hx_wire_value(hx_wire *w, unsigned wt, const uint8_t **val, size_t *len)
{
	uint64_t n;

	switch (wt) {
	case PROTOBUF_C_WIRE_TYPE_VARINT:
		return hx_wire_varint(w, &n);
	case PROTOBUF_C_WIRE_TYPE_64BIT:
		n = 8;
		break;
	case PROTOBUF_C_WIRE_TYPE_32BIT:
		n = 4;
		break;
	case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
		if (!hx_wire_varint(w, &n))
			return false;
		break;
	default:
		return false;
	}
	if (n > (uint64_t) (w->end - w->p))
		return false;
	*val = w->p;
	*len = (size_t) n;
	w->p += n;
	return true;
}

/* Counts occurrences of repeated fields, by descriptor index; a message of
 * more fields than this shares the last counter (none of ours has). */
#define HX_WALK_FIELDS 32

/* Recurses once per level of message nesting, which the schema fixes (no
 * message contains itself): at most RpcRequest > IngestRequest >
 * RecordBatch > CostRecord, whatever the bytes say. */
static void
// NOLINTNEXTLINE(misc-no-recursion): bounded by the schema's nesting, see above
hx_nul_walk(hx_violations *v, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
            const char *path)
{
	unsigned seen[HX_WALK_FIELDS] = { 0 };
	hx_wire  w = { p, p + len };
	uint64_t tag;

	while (w.p < w.end && hx_wire_varint(&w, &tag)) {
		const uint8_t *val = NULL;
		size_t         vlen = 0, idx;
		unsigned       nth;
		bool           has_nul;
		char           sub[HX_FIELD_MAX];

		if (!hx_wire_value(&w, (unsigned) (tag & 7), &val, &vlen))
			return;
		const ProtobufCFieldDescriptor *f = tag >> 3 > UINT32_MAX
		    ? NULL
		    : protobuf_c_message_descriptor_get_field(d, (unsigned) (tag >> 3));
		if (f == NULL || (tag & 7) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			continue;
		idx = (size_t) (f - d->fields);
		idx = idx < HX_WALK_FIELDS ? idx : HX_WALK_FIELDS - 1;
		nth = f->label == PROTOBUF_C_LABEL_REPEATED ? seen[idx]++ : 0;
		/* No 0 byte in the value, no NUL anywhere inside it: most requests
		 * have none at all, and skip the walk's formatting entirely. */
		if (memchr(val, 0, vlen) == NULL)
			continue;
		has_nul = f->type == PROTOBUF_C_TYPE_STRING;
		/* A path is only needed for a violation or to descend: formatting
		 * one for every field of every record was the hot path's cost. */
		if (!has_nul && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			snprintf(sub, sizeof(sub), "%s%s%s[%u]", path, *path ? "." : "", f->name,
			         nth);
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			snprintf(sub, sizeof(sub), "%s", path);
		else
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", f->name);
		if (has_nul)
			hx_violations_add(v, sub, "contains a NUL character");
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			hx_nul_walk(v, f->descriptor, val, vlen, sub);
	}
}

static bool
hx_step_nul(hx_call *c, const uint8_t *req, size_t len)
{
	hx_nul_walk(&c->viol, &heliox__ingest__v1__rpc_request__descriptor, req, len, "");
	if (c->viol.total == 0)
		return true;
	hx_call_fail(c, HX_INVALID_ARGUMENT, "string fields must not contain NUL characters");
	return false;
}

/* ---- step 6: the methods --------------------------------------------------------- */

/* database_ok comes from hx_store_ping, which answers from what the
 * database said in the last second (any statement on this worker's
 * connection counts) instead of a round trip per call; a lost connection
 * anywhere in the server voids that at once. So Health stays cheap, and a
 * database that goes away shows as database_ok=false within about a
 * second. */
static void
hx_rpc_health(hx_call *c)
{
	uint64_t now = hx_now_us();
	bool     db = c->store != NULL && hx_store_ping(c->store) == HX_OK;

	heliox__ingest__v1__health_result__init(&c->health);
	c->health.serving = true;
	c->health.database_ok = db;
	c->health.version = (char *) HX_VERSION;
	c->health.uptime_s = now > c->cfg->started_us ? (now - c->cfg->started_us) / 1000000u : 0;
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH;
	snprintf(c->detail, sizeof(c->detail), "database_ok=%s", db ? "true" : "false");
}

/* One optional filter: "" is no filter; anything else must pass `check`,
 * and then *dst points at its normalised form in buf. */
static void
hx_summary_filter(hx_call *c, const char *field, const char *in, char *buf,
                  const char *(*check)(const hx_raw_value *, char *), const char **dst)
{
	hx_raw_value v = { HX_RAW_STRING, in, strlen(in) };
	const char  *why;

	if (v.len == 0)
		return;
	if ((why = check(&v, buf)) != NULL)
		hx_violations_add(&c->viol, field, "%s", why);
	else
		*dst = buf;
}

/* Hands the store's rows to the reply: one block holds the pointer array
 * and the messages, whose strings point into c->rows. */
static void
hx_summary_result(hx_call *c, hx_summary_row *rows, size_t n)
{
	/* sizeof(*ptrs): the array of pointers, which tidy takes for a mistake. */
	SummaryRow **ptrs = calloc(
	    n ? n : 1, sizeof(*ptrs) + sizeof(SummaryRow)); // NOLINT(bugprone-sizeof-expression)
	SummaryRow *msgs;

	c->rows = rows;
	if (ptrs == NULL) {
		hx_call_fail(c, HX_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	msgs = (SummaryRow *) (void *) (ptrs + n); /* after the check: NULL + n is undefined */
	for (size_t i = 0; i < n; i++) {
		heliox__ingest__v1__summary_row__init(&msgs[i]);
		msgs[i].date = rows[i].date;
		msgs[i].provider = rows[i].provider;
		msgs[i].gpu_type = rows[i].gpu_type;
		msgs[i].records = rows[i].records;
		msgs[i].total_usd = rows[i].total_usd;
		msgs[i].avg_usd = rows[i].avg_usd;
		msgs[i].min_usd = rows[i].min_usd;
		msgs[i].max_usd = rows[i].max_usd;
		msgs[i].gpu_hours = rows[i].gpu_hours;
		msgs[i].usd_per_gpu_hour = rows[i].usd_per_gpu_hour;
		ptrs[i] = &msgs[i];
	}
	heliox__ingest__v1__summary_result__init(&c->summary);
	c->summary.rows = ptrs;
	c->summary.n_rows = n;
	c->result_case = HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY;
}

static void
hx_rpc_summary(hx_call *c, const Heliox__Ingest__V1__SummaryRequest *s)
{
	char             from[HX_DATE_LEN + 1], to[HX_DATE_LEN + 1];
	char             provider[HX_NAME_MAX + 1], gpu[HX_NAME_MAX + 1], err[512] = "";
	hx_summary_query q = { .group_by = (hx_group_by) s->group_by };
	hx_summary_row  *rows = NULL;
	size_t           n = 0;
	uint32_t         ms;

	hx_summary_filter(c, "from_date", s->from_date, from, hx_check_date, &q.from_date);
	hx_summary_filter(c, "to_date", s->to_date, to, hx_check_date, &q.to_date);
	hx_summary_filter(c, "provider", s->provider, provider, hx_check_name, &q.provider);
	hx_summary_filter(c, "gpu_type", s->gpu_type, gpu, hx_check_name, &q.gpu_type);
	if (hx_group_by_name(q.group_by) == NULL)
		hx_violations_add(&c->viol, "group_by", "is not a known grouping");
	if (c->viol.total > 0) {
		hx_call_fail(c, HX_INVALID_ARGUMENT, "invalid summary query");
		return;
	}
	if (c->store == NULL) {
		hx_call_fail(c, HX_UNAVAILABLE, "database unavailable");
		return;
	}
	if (!hx_call_remaining_ms(c, &ms))
		return;
	hx_status st = hx_store_summary(c->store, &q, ms, &rows, &n, err, sizeof(err));
	if (st != HX_OK) {
		free(rows);
		hx_call_store_failed(c, "summary", st, err);
		return;
	}
	hx_summary_result(c, rows, n);
	snprintf(c->detail, sizeof(c->detail), "group_by=%s rows=%zu", hx_group_by_name(q.group_by),
	         n);
}

static void
hx_step_method(hx_call *c, const RpcRequest *r)
{
	c->timeout_ms = r->timeout_ms ? r->timeout_ms : c->cfg->default_timeout_ms;
	switch (r->call_case) {
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST:
		hx_rpc_ingest(c, r->ingest);
		break;
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_HEALTH:
		hx_rpc_health(c);
		break;
	case HELIOX__INGEST__V1__RPC_REQUEST__CALL_SUMMARY:
		hx_rpc_summary(c, r->summary);
		break;
	default:
		hx_call_fail(c, HX_UNIMPLEMENTED, "no method set");
		break;
	}
}

/* ---- step 7: the reply -------------------------------------------------------------- */

static uint64_t
hx_call_duration(const hx_call *c)
{
	return c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST
	    ? c->ingest.duration_us
	    : hx_now_us() - c->started_us;
}

static void
hx_log_call(const hx_call *c, uint64_t us)
{
	const char   *sep = c->detail[0] != '\0' ? " " : "";
	const char   *base = c->base_rid[0] != '\0' ? c->base_rid : c->rid;
	char          ids[2 * HX_REQUEST_ID_MAX + 64] = "";
	hx_log_fields f = {
		.method = c->method,
		.peer = c->peer,
		.code = hx_status_name(c->code),
		.has_duration = true,
		.duration_us = us,
	};

	if (!hx_log_enabled(HX_LOG_INFO))
		return;
	if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST) {
		f.has_counts = true;
		f.received = c->ingest.received;
		f.inserted = c->ingest.inserted;
		f.updated = c->ingest.updated;
		f.unchanged = c->ingest.unchanged;
		f.failed = c->ingest.failed;
		f.deleted = c->ingest.deleted;
	}
	/* The ids the audit row holds, so that log and table join on them. */
	if (c->key_id != NULL) {
		snprintf(ids, sizeof(ids), " base_request_id=%s key_id=%s", base, c->key_id);
		f.base_request_id = base;
		f.key_id = c->key_id;
	}
	if (c->code == HX_OK)
		hx_log_fields_line(HX_LOG_INFO, c->rid, &f,
		                   "%s peer=%s%s code=OK%s%s duration_us=%" PRIu64, c->method,
		                   c->peer, ids, sep, c->detail, us);
	else
		hx_log_fields_line(
		    HX_LOG_INFO, c->rid, &f,
		    "%s peer=%s%s code=%s%s%s duration_us=%" PRIu64 " message=\"%s\"", c->method,
		    c->peer, ids, hx_status_name(c->code), sep, c->detail, us, c->message);
}

/* What the server counts in its metrics (metrics.h): records only of
 * ingests that ran, as ingestion_runs holds them, so that the two agree. */
static void
hx_call_outcome(const hx_call *c, uint64_t us, hx_rpc_outcome *o)
{
	o->auth = c->auth;
	o->code = c->code;
	o->method = c->method;
	o->duration_us = us;
	o->has_counts = c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST &&
	    !c->ingest.dry_run && !c->ingest.replayed;
	o->inserted = c->ingest.inserted;
	o->updated = c->ingest.updated;
	o->unchanged = c->ingest.unchanged;
	o->failed = c->ingest.failed;
	o->deleted = c->ingest.deleted;
}

/* Packs the reply into a malloc'd buffer. Should the violation list not
 * fit in memory, the reply goes without it rather than not at all. */
static hx_status
hx_reply_pack(hx_call *c, uint8_t **out, size_t *out_len)
{
	Heliox__Ingest__V1__Status           st = HELIOX__INGEST__V1__STATUS__INIT;
	RpcResponse                          resp = HELIOX__INGEST__V1__RPC_RESPONSE__INIT;
	size_t                               n = c->viol.len;
	Heliox__Ingest__V1__FieldViolation  *fv = calloc(n ? n : 1, sizeof(*fv));
	Heliox__Ingest__V1__FieldViolation **fvp =
	    calloc(n ? n : 1, sizeof(*fvp)); // NOLINT(bugprone-sizeof-expression)

	if (fv == NULL || fvp == NULL)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		heliox__ingest__v1__field_violation__init(&fv[i]);
		fv[i].field = c->viol.items[i].field;
		fv[i].description = c->viol.items[i].description;
		fvp[i] = &fv[i];
	}
	st.code = (Heliox__Ingest__V1__Code) c->code;
	st.message = c->message;
	st.n_violations = n;
	st.violations = fvp;
	resp.status = &st;
	resp.request_id = c->rid;
	resp.result_case = c->result_case;
	if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_INGEST)
		resp.ingest = &c->ingest;
	else if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_HEALTH)
		resp.health = &c->health;
	else if (c->result_case == HELIOX__INGEST__V1__RPC_RESPONSE__RESULT_SUMMARY)
		resp.summary = &c->summary;

	size_t size = heliox__ingest__v1__rpc_response__get_packed_size(&resp);
	*out = malloc(size ? size : 1);
	*out_len = *out != NULL ? heliox__ingest__v1__rpc_response__pack(&resp, *out) : 0;
	free(fv);
	free(fvp);
	return *out != NULL ? HX_OK : HX_RESOURCE_EXHAUSTED;
}

hx_status
hx_rpc_handle(const hx_rpc_config *cfg, hx_store *store, const uint8_t *req, size_t len,
              const char *peer, hx_rpc_outcome *outcome, uint8_t **out, size_t *out_len)
{
	RpcRequest *r = NULL;
	hx_call     c;

	hx_call_init(&c, cfg, store, peer);
	if (hx_step_size(&c, len) && (r = hx_step_decode(&c, req, len)) != NULL) {
		bool id_ok = hx_request_id_resolve(&c, r->request_id);
		c.method = hx_method_name(r);
		if (hx_step_auth(&c, r)) {
			if (hx_step_request_id(&c, id_ok, r->base_request_id) &&
			    hx_step_nul(&c, req, len))
				hx_step_method(&c, r);
			else if (r->call_case == HELIOX__INGEST__V1__RPC_REQUEST__CALL_INGEST)
				hx_rpc_ingest_refused(&c, r->ingest);
		}
	}
	if (c.rid[0] == '\0')
		hx_uuid4(c.rid); /* undecodable: still an id to match reply and log */
	uint64_t us = hx_call_duration(&c);
	hx_log_call(&c, us);
	hx_status st = hx_reply_pack(&c, out, out_len);
	if (outcome != NULL)
		hx_call_outcome(&c, us, outcome);
	if (r != NULL) {
		/* Our copy of the caller's key goes back to malloc wiped, like
		 * the configured keys (the raw request bytes are nng's). */
		if (r->api_key != NULL)
			explicit_bzero(r->api_key, strlen(r->api_key));
		heliox__ingest__v1__rpc_request__free_unpacked(r, NULL);
	}
	hx_call_free(&c);
	return st;
}

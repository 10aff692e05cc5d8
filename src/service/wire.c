/*
 * wire.c - NUL bytes inside a request's string fields.
 *
 * protobuf-c hands strings over NUL-terminated, so "aws\0junk" would arrive
 * as "aws" and nothing after decoding could tell. So the raw bytes are walked
 * once more, guided by the descriptors, and every string field holding a 0
 * byte is reported. The bytes already decoded, so the walk need only stay in
 * bounds. Paths follow the contract: a repeated field is "name[i]"; a
 * singular message is a container and adds nothing, which turns
 * RpcRequest.ingest.records.records[3].provider into "records[3].provider".
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "heliox/ingest/v1/ingest.pb-c.h"
#include "wire.h"

typedef struct reader {
	const uint8_t *p, *end;
} reader;

static bool
read_varint(reader *w, uint64_t *v)
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
read_value(reader *w, unsigned wt, const uint8_t **val, size_t *len)
{
	uint64_t n;

	switch (wt) {
	case PROTOBUF_C_WIRE_TYPE_VARINT:
		return read_varint(w, &n);
	case PROTOBUF_C_WIRE_TYPE_64BIT:
		n = 8;
		break;
	case PROTOBUF_C_WIRE_TYPE_32BIT:
		n = 4;
		break;
	case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
		if (!read_varint(w, &n))
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
#define WALK_FIELDS 32

/* Recurses once per level of message nesting, which the schema fixes (no
 * message contains itself): at most RpcRequest > IngestRequest >
 * RecordBatch > CostRecord, whatever the bytes say. */
static void
// NOLINTNEXTLINE(misc-no-recursion): bounded by the schema's nesting, see above
nul_walk(hx_violations *v, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
         const char *path)
{
	unsigned seen[WALK_FIELDS] = { 0 };
	reader   w = { p, p + len };
	uint64_t tag;

	while (w.p < w.end && read_varint(&w, &tag)) {
		const uint8_t *val = NULL;
		size_t         vlen = 0, idx;
		unsigned       nth;
		bool           has_nul;
		char           sub[HX_FIELD_MAX];

		if (!read_value(&w, (unsigned) (tag & 7), &val, &vlen))
			return;
		const ProtobufCFieldDescriptor *f = tag >> 3 > UINT32_MAX
		    ? NULL
		    : protobuf_c_message_descriptor_get_field(d, (unsigned) (tag >> 3));
		if (f == NULL || (tag & 7) != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
			continue;
		idx = (size_t) (f - d->fields);
		idx = idx < WALK_FIELDS ? idx : WALK_FIELDS - 1;
		nth = f->label == PROTOBUF_C_LABEL_REPEATED ? seen[idx]++ : 0;
		/* No 0 byte in the value, no NUL anywhere inside it: most requests
		 * have none at all, and skip the walk's formatting entirely. */
		if (memchr(val, 0, vlen) == NULL)
			continue;
		has_nul = f->type == PROTOBUF_C_TYPE_STRING;
		/* A path is only needed for a violation or to descend, and
		 * formatting one per field of every record would be most of the
		 * walk's cost. */
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
			nul_walk(v, f->descriptor, val, vlen, sub);
	}
}

void
hx_wire_nul_check(hx_violations *v, const uint8_t *req, size_t len)
{
	nul_walk(v, &heliox__ingest__v1__rpc_request__descriptor, req, len, "");
}

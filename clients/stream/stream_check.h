/*
 * stream_check.h - one pass over an export document read through a
 * doc_reader: every cost_data element is parsed and validated by the core
 * library (hx_export_parse_record, the rules the server applies), with paths
 * into the original file.
 *
 * The CLI makes two passes over a file:
 *
 *   CHECK_VALIDATE  records every violation, catches repeated keys across the
 *                   whole file (keyset.h), and marks the invalid records in
 *                   `invalid`. Nothing is sent.
 *   CHECK_EMIT      hands each record the first pass found valid, normalised,
 *                   to the sink (the batch sender), leaving out those marked.
 *                   A record that no longer validates, or a different count,
 *                   means the file changed in between: CHECK_CHANGED.
 */
#ifndef HELIOX_STREAM_CHECK_H
#define HELIOX_STREAM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "heliox/batch.h"

#include "bitvec.h"
#include "docreader.h"
#include "keyset.h"

typedef enum check_mode { CHECK_VALIDATE, CHECK_EMIT } check_mode;

typedef enum check_result {
	CHECK_OK = 0, /* the document was read to its end */
	CHECK_IO,     /* reading failed: see the reader's err / tee_err */
	CHECK_NOMEM,
	CHECK_STOPPED,  /* the sink or the tick asked to stop */
	CHECK_CHANGED,  /* CHECK_EMIT: the document is not what was checked */
	CHECK_TOO_MANY, /* more records than indexes fit (2^32 - 1) */
} check_result;

/* Returns 0 to go on, anything else to stop the pass. */
typedef int (*check_sink)(void *ctx, const hx_record *rec, uint64_t index);
typedef int (*check_tick)(void *ctx, uint64_t records, uint64_t bytes);

typedef struct stream_check {
	check_mode     mode;
	hx_violations *viol;    /* CHECK_VALIDATE: where violations go */
	bitvec        *invalid; /* written by VALIDATE, read by EMIT */
	uint64_t       expect;  /* CHECK_EMIT: the elements VALIDATE counted */
	check_sink     sink;    /* CHECK_EMIT */
	check_tick     tick;    /* optional: called every few thousand records */
	void          *ctx;
	hx_batch      *meta; /* CHECK_VALIDATE, optional: gets the document's replace
	                          * windows and provenance (v2) */

	/* out */
	uint64_t received; /* elements of cost_data */
	uint64_t n_invalid;
	bool     doc_error; /* "$", "cost_data" or "currency": nothing may be sent */

	/* internal */
	keyset        keys;
	hx_batch      one;     /* hx_export_parse_record's one record */
	hx_violations scratch; /* that one record's violations */
} stream_check;

void stream_check_init(stream_check *c, check_mode mode);
void stream_check_free(stream_check *c);

check_result stream_check_run(stream_check *c, doc_reader *r);

#endif /* HELIOX_STREAM_CHECK_H */

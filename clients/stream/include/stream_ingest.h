/*
 * stream_ingest.h - `heliox-ingest ingest FILE`: an export of any size, read
 * as a stream and sent as RecordBatch requests.
 *
 *   1. check: read the whole document once (jsonstream.h, stream_check.h),
 *      validating every record with the server's rules, keys unique across
 *      the file, paths into the file ("cost_data[43210].cost_usd");
 *   2. unless the file is at fault (any violation without --skip-invalid, or
 *      a document-level one with it), read it again and send its valid
 *      records in batches (stream_send.h).
 *
 * So the default stays all or nothing for the file as a whole: a bad record
 * anywhere means nothing is sent. What is sent goes as several requests,
 * each one transaction; if one fails, those before it stay committed, and
 * running the same command with the same --request-id resumes.
 *
 * A document with replace windows (v2) is different: it says "this is the
 * whole truth for these providers over these dates", and the server deletes
 * the stored rows of a window that the request does not carry. Split into
 * batches, each batch would delete the rows the others carry (or the
 * deletes would have to be postponed to a last batch, and an import that
 * stopped halfway would leave the old and the new truth mixed). So such a
 * document goes as ONE request, whatever --batch says: the windows, every
 * record and the delete in one transaction - all of it or none. A GPU bill
 * aggregated per day is small (a month of 20 GPU types on 4 clouds is 2,480
 * records); more than STREAM_MAX_BATCH records with windows is refused
 * before anything is sent. The records are checked against their windows
 * in the second pass, before the one request goes out; --skip-invalid is
 * refused with windows, as the server refuses it.
 */
#ifndef HELIOX_STREAM_INGEST_H
#define HELIOX_STREAM_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "heliox/client.h"

#include "stream_send.h"

#define STREAM_DEFAULT_BATCH 5000u
/* Largest --batch: a record is at most ~170 bytes on the wire (two 64-byte
 * names), so 50,000 of them stay well under the server's default 16 MiB. */
#define STREAM_MAX_BATCH        50000u
#define STREAM_DEFAULT_INFLIGHT 2u
/* The base leaves room for "-b" and the batch number in the server's 128. */
#define STREAM_BASE_ID_MAX 100u

typedef struct stream_opts {
	const char *path;    /* "-" = stdin */
	const char *base_id; /* request ids are "<base_id>-b<k>" */
	size_t      batch_size;
	unsigned    inflight;
	bool        dry_run;
	bool        skip_invalid;
	uint32_t    timeout_ms; /* per batch; 0 = the client's */
	bool        progress;   /* draw progress on stderr */
} stream_opts;

typedef struct stream_report {
	hx_status     code; /* OK, INVALID_ARGUMENT, a failed batch's code, ... */
	char          message[512];
	bool          usage_error; /* the input could not be opened: exit 2 */
	bool          sent;        /* a second pass started: batches may be committed */
	const char   *base_id;
	bool          dry_run;
	uint64_t      received, inserted, updated, unchanged, failed;
	uint64_t      deleted; /* v2: rows removed by the document's replace windows */
	uint64_t      duration_us;
	uint64_t      batch_size;
	uint64_t      batches_total; /* batches the file makes */
	send_totals   batches;
	hx_violations viol; /* the file's and the server's, in file paths */
} stream_report;

void stream_report_init(stream_report *r);
void stream_report_free(stream_report *r);

/* Runs the whole ingest and fills the report (output is the caller's). */
void stream_ingest(hx_client *c, const stream_opts *o, stream_report *r);

#endif /* HELIOX_STREAM_INGEST_H */

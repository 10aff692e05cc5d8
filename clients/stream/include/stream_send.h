/*
 * stream_send.h - sends a stream of validated records as RecordBatch
 * requests of `batch_size` records, keeping up to `inflight` of them
 * outstanding at once (one worker thread each, all sharing one thread-safe
 * hx_client).
 *
 * Batch k (from 1) is sent with request_id "<base_id>-b<k>". Its records are
 * fixed by the file and the options, so the same command with the same base
 * resends the same requests: the server answers those it already committed
 * from its record of them (replayed) and runs only the rest.
 *
 * After a batch fails no new batch is sent; those already in flight are
 * waited for, and batches queued but not started are dropped (not_sent).
 * Memory: at most inflight + 1 batches of batch_size records exist at once.
 */
#ifndef HELIOX_STREAM_SEND_H
#define HELIOX_STREAM_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heliox/client.h"

#define SEND_MAX_INFLIGHT 64u
#define SEND_MESSAGE_MAX  256u

typedef struct send_config {
	hx_client     *client;
	const char    *base_id;
	size_t         batch_size;
	unsigned       inflight; /* 1..SEND_MAX_INFLIGHT */
	uint64_t       expected; /* records to come, to size small batches */
	uint64_t       total;    /* records in the file, valid or not */
	bool           dry_run;
	bool           skip_invalid;
	uint32_t       timeout_ms; /* per batch; 0 = the client's */
	hx_violations *viol;       /* the server's violations, in file paths */
	/* v2: sent with every batch (windows only ever with one batch). */
	const hx_replace_window *replace;
	size_t                   n_replace;
	const hx_provenance     *provenance;
	void (*idle)(void *ctx); /* called ~10 times a second while waiting */
	void *ctx;
} send_config;

typedef struct send_failure {
	uint64_t  batch;       /* k */
	uint64_t  first, last; /* cost_data indexes of its first and last record */
	hx_status code;
	char      message[SEND_MESSAGE_MAX];
} send_failure;

typedef struct send_totals {
	uint64_t     received, inserted, updated, unchanged, failed; /* summed over batches */
	uint64_t     deleted;                     /* v2: rows removed by replace windows */
	uint64_t     batches;                     /* made */
	uint64_t     committed;                   /* answered OK */
	uint64_t     replayed;                    /* of those, answered from an earlier run */
	uint64_t     not_sent;                    /* dropped after a failure */
	send_failure failures[SEND_MAX_INFLIGHT]; /* in the order they were answered */
	size_t       n_failures;
	bool         out_of_memory; /* the client itself ran out: stopped */
} send_totals;

typedef struct sender sender;

/* Returns 0, or -1 when memory or threads ran out. */
int sender_start(sender **out, const send_config *cfg);

/* Adds one record (its index in cost_data with it); sends a full batch.
 * May block while `inflight` batches are out. Returns 0, or -1 once
 * sending has stopped (a batch failed, sender_stop, or no memory). */
int sender_add(sender *s, const hx_record *rec, uint64_t index);

/* No new batches from now on (an interrupt). Safe from any thread. */
void sender_stop(sender *s);

/* Records and batches answered so far, for progress. Any thread. */
void sender_progress(const sender *s, uint64_t *records, uint64_t *batches);

/* Sends what is left (unless stopped), waits for every batch, stops the
 * workers and frees everything; the totals end up in *t. */
void sender_finish(sender *s, send_totals *t);

#endif /* HELIOX_STREAM_SEND_H */

/*
 * store_internal.h - what store.c (connections, errors, health, audit,
 * summary, migrations) and store_write.c (the ingest write path) share.
 * Private to hx_service; nothing outside the store includes it.
 */
#ifndef HX_STORE_INTERNAL_H
#define HX_STORE_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A growable byte buffer, kept by the store between requests so that a
 * steady stream of ingests does not go back to malloc for each one. */
typedef struct hx_store_buf {
	uint8_t *p;
	size_t   len, cap;
} hx_store_buf;

enum { HX_STORE_NCOL = 5 };  /* date, provider, gpu_type, cost_usd, gpu_hours */
enum { HX_STORE_NWCOL = 3 }; /* a replace window's provider, from_date, to_date */

/* One record of the batch, as the write path orders them. */
typedef const hx_record *hx_store_rec;

struct hx_store {
	char    *conninfo;  /* NULL = libpq's environment */
	PGconn  *conn;      /* NULL while disconnected */
	uint32_t prepared;  /* store.c's statements prepared on conn, by bit */
	uint32_t wprepared; /* store_write.c's */

	/* Health: when the database last answered on this connection (0 =
	 * not since the connection was made or lost), and the process-wide
	 * loss epoch at that time (see hx_store_ping in store.c). */
	uint64_t alive_us;
	uint64_t alive_epoch;

	/* The write path's (store_write.c): whether this connection has its
	 * COPY target, and scratch space. */
	bool          has_input;
	hx_store_buf  col[HX_STORE_NCOL];   /* binary array parameters */
	hx_store_buf  wcol[HX_STORE_NWCOL]; /* the replace windows, likewise */
	hx_store_buf  copy;                 /* a COPY BINARY stream */
	hx_store_rec *order;                /* the batch in key order */
	size_t        order_cap;
};

/* ---- store.c, for store_write.c ---------------------------------------- */

/* Monotonic clock in microseconds. */
uint64_t hx_store_now_us(void);

/* Formats err for one log line (libpq's line breaks flattened). */
void hx_store_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The database just answered: Health may trust that for a while. */
void hx_store_alive(hx_store *s);

/* Turns a failed result (or NULL: none came) into a status, with the
 * server's words in err; clears r; forgets a connection that is gone. */
hx_status hx_store_fail(hx_store *s, PGresult *r, const char *what, char *err, size_t errsz);

/* Makes sure there is a usable connection outside any transaction, with
 * the input table created (statements are prepared on first use). *fresh
 * tells whether it was made just now. */
hx_status hx_store_ensure(hx_store *s, bool *fresh, char *err, size_t errsz);

/* Ends a failed transaction; a connection that cannot even do that is
 * dropped, so the next call starts clean. */
void hx_store_rollback(hx_store *s);

/* Parses an unsigned decimal cell that fits 32 bits. */
bool hx_store_cell_u32(const PGresult *r, int row, int col, uint32_t *out);
bool hx_store_cell_u64(const PGresult *r, int row, int col, uint64_t *out);
/* The job's base_request_id, or its request_id when it has none. */
const char *hx_store_base_id(const hx_ingest_job *job);

/* An all-zero fingerprint means none was computed (stored as NULL). */
bool hx_store_fingerprint_set(const hx_ingest_job *job);

/* ---- store_write.c, for store.c ---------------------------------------- */

/* Per connection, right after connecting: the input table. */
hx_status hx_store_write_setup(hx_store *s, char *err, size_t errsz);

/* Frees the write path's scratch space. */
void hx_store_write_free(hx_store *s);

#endif /* HX_STORE_INTERNAL_H */

/*
 * docreader.h - reads an export document through one fixed buffer and hands
 * out the scanner's events with their spans in memory (jsonstream.h).
 *
 * Memory is the buffer, whatever the document's size: bytes the scanner no
 * longer needs are dropped each time the buffer is refilled with read(2).
 * The buffer must be larger than the scanner's max_span, so a span being
 * followed always fits.
 */
#ifndef HELIOX_DOCREADER_H
#define HELIOX_DOCREADER_H

#include <stddef.h>
#include <stdint.h>

#include "jsonstream.h"

#define DOC_READER_BUFSIZE  ((size_t) 1024 * 1024) /* 1 MiB */
#define DOC_READER_MAX_SPAN ((size_t) 64 * 1024)   /* a cost_data element, at most */

typedef struct doc_reader {
	int      fd;
	int      tee_fd; /* -1, or a file that gets a copy of every byte read */
	char    *buf;
	size_t   cap;
	size_t   len;     /* bytes in buf */
	size_t   scanned; /* bytes of buf the scanner has used */
	uint64_t buf_off; /* the document offset of buf[0] */
	int      eof;
	int      err; /* errno of a failed read (tee_err for the copy) */
	int      tee_err;
	jstream  js;
} doc_reader;

typedef struct doc_event {
	jstream_event kind;
	const char   *span; /* ELEMENT, CURRENCY: valid until the next call */
	size_t        len;
	uint64_t      index; /* ELEMENT, ELEMENT_TOO_BIG: position in cost_data */
} doc_event;

/* Returns 0, or -1 when the buffer cannot be allocated (or is not larger
 * than max_span). fd is read from its current offset and never closed. */
int  doc_reader_init(doc_reader *r, int fd, size_t bufsize, size_t max_span);
void doc_reader_free(doc_reader *r);

/* The next event. Returns 0, or -1 when reading (r->err) or copying
 * (r->tee_err) failed. After JSTREAM_END or JSTREAM_ERROR it keeps
 * returning that same event. */
int doc_reader_next(doc_reader *r, doc_event *ev);

/* Bytes of the document read so far. */
uint64_t doc_reader_bytes(const doc_reader *r);

#endif /* HELIOX_DOCREADER_H */

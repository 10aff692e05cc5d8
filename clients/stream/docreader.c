/*
 * docreader.c - a fixed buffer between read(2) and the scanner (see
 * docreader.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docreader.h"

int
doc_reader_init(doc_reader *r, int fd, size_t bufsize, size_t max_span)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->tee_fd = -1;
	if (bufsize <= max_span || (r->buf = malloc(bufsize)) == NULL) {
		return (-1);
	}
	r->cap = bufsize;
	jstream_init(&r->js, max_span);
	return (0);
}

void
doc_reader_free(doc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

uint64_t
doc_reader_bytes(const doc_reader *r)
{
	return (r->buf_off + r->len);
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return (-1);
		}
		p += w;
		n -= (size_t) w;
	}
	return (0);
}

/* Drops what the scanner no longer needs, so the free space is at least
 * cap - max_span: a followed span is never longer than max_span. */
static void
compact(doc_reader *r)
{
	size_t drop = (size_t) (jstream_keep_from(&r->js) - r->buf_off);

	if (drop == 0) {
		return;
	}
	memmove(r->buf, r->buf + drop, r->len - drop);
	r->buf_off += drop;
	r->len -= drop;
	r->scanned -= drop;
}

static int
fill(doc_reader *r)
{
	ssize_t n;

	compact(r);
	do {
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->err = errno;
		return (-1);
	}
	if (n == 0) {
		r->eof = 1;
		return (0);
	}
	if (r->tee_fd >= 0 && write_all(r->tee_fd, r->buf + r->len, (size_t) n) != 0) {
		r->tee_err = errno;
		return (-1);
	}
	r->len += (size_t) n;
	return (0);
}

static void
set_event(doc_reader *r, jstream_event kind, doc_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->index = r->js.index;
	if (kind == JSTREAM_ELEMENT || kind == JSTREAM_CURRENCY || kind == JSTREAM_REPLACE ||
	    kind == JSTREAM_PROVENANCE) {
		ev->span = r->buf + (r->js.span_start - r->buf_off);
		ev->len = (size_t) (r->js.span_end - r->js.span_start);
	}
}

int
doc_reader_next(doc_reader *r, doc_event *ev)
{
	jstream_event kind;
	size_t        used;

	for (;;) {
		if (r->scanned < r->len) {
			kind =
			    jstream_feed(&r->js, r->buf + r->scanned, r->len - r->scanned, &used);
			r->scanned += used;
			if (kind != JSTREAM_MORE) {
				set_event(r, kind, ev);
				return (0);
			}
		} else if (r->eof) {
			set_event(r, jstream_finish(&r->js), ev);
			return (0);
		} else if (fill(r) != 0) {
			return (-1);
		}
	}
}

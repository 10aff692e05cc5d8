/*
 * log.c - one line per event on stderr.
 *
 *   2026-11-28T13:45:00.123Z INFO  req=7f3a... ingest source=mock received=28 ...
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2): no stdio, no lock. Lines up to PIPE_BUF bytes are written to a
 * pipe atomically, so workers logging at the same time never interleave, and
 * a line that would be longer is cut (and marked with "...") rather than
 * split. Control characters in the message (a libpq error ends with "\n",
 * for instance) become spaces, so one event is always one line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* PIPE_BUF on Linux: the most a single write to a pipe keeps atomic. */
#define HX_LOG_LINE_MAX 4096

static atomic_int hx_log_min = HX_LOG_INFO;

static const char *const hx_level_names[] = {
	[HX_LOG_DEBUG] = "DEBUG",
	[HX_LOG_INFO]  = "INFO ",
	[HX_LOG_WARN]  = "WARN ",
	[HX_LOG_ERROR] = "ERROR",
};

void
hx_log_set_level(hx_log_level level)
{
	atomic_store_explicit(&hx_log_min, (int)level, memory_order_relaxed);
}

int
hx_log_level_parse(const char *name, hx_log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};

	if (name == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i]) == 0) {
			*out = (hx_log_level)i;
			return 0;
		}
	}
	return -1;
}

bool
hx_log_enabled(hx_log_level level)
{
	return (int)level >= atomic_load_explicit(&hx_log_min, memory_order_relaxed);
}

/* "2026-11-28T13:45:00.123Z", UTC with milliseconds. Returns its length. */
static size_t
hx_log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000L);
	return n < 0 ? 0 : (size_t)n;
}

/* Replaces control characters with spaces: one event, one line, whatever
 * text a caller (or a libpq error) hands over. */
static void
hx_log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f)
			s[i] = ' ';
	}
}

static void
hx_log_write(const char *line, size_t len)
{
	ssize_t n;

	/* One write: a partial write of a line this short only happens on
	 * a signal before anything was written, so EINTR is the one retry. */
	do {
		n = write(STDERR_FILENO, line, len);
	} while (n < 0 && errno == EINTR);
}

void
hx_log(hx_log_level level, const char *request_id, const char *fmt, ...)
{
	char line[HX_LOG_LINE_MAX];
	const size_t room = sizeof(line) - 1; /* the last byte is for '\n' */
	int saved_errno = errno;
	va_list ap;

	if (!hx_log_enabled(level) || (unsigned)level > HX_LOG_ERROR)
		return;
	if (request_id == NULL || request_id[0] == '\0')
		request_id = "-";

	size_t len = hx_log_timestamp(line, room);
	int n = snprintf(line + len, room - len, " %s req=%.128s ", hx_level_names[level],
	    request_id);
	size_t head = len + (n < 0 ? 0 : (size_t)n);
	if (head > room)
		head = room;

	va_start(ap, fmt);
	n = vsnprintf(line + head, room - head + 1, fmt, ap);
	va_end(ap);
	len = head + (n < 0 ? 0 : (size_t)n);
	if (len > room) {
		/* Cut, and say so, rather than split the event over two lines. */
		len = room;
		memset(line + len - 3, '.', 3);
	}
	hx_log_sanitize(line, len);
	line[len++] = '\n';
	hx_log_write(line, len);
	errno = saved_errno;
}

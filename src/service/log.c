/*
 * log.c - one line per event on stderr.
 *
 *   2026-11-28T13:45:00.123Z INFO  req=7f3a... ingest source=mock received=28 ...
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2): no stdio, no lock. Lines up to PIPE_BUF bytes are written to a
 * pipe atomically, so workers logging at the same time never interleave, and
 * a line that would be longer is cut (and marked with "...") rather than
 * split. With --log-format json the same events are JSON objects, one a
 * line (log_json), under the same one-write rule. Control characters in the message (a libpq error ends with "\n",
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

static atomic_int log_min = HX_LOG_INFO;
static atomic_int log_fmt = HX_LOG_TEXT;

static const char *const level_names[] = {
	[HX_LOG_DEBUG] = "DEBUG",
	[HX_LOG_INFO] = "INFO ",
	[HX_LOG_WARN] = "WARN ",
	[HX_LOG_ERROR] = "ERROR",
};

void
hx_log_set_level(hx_log_level level)
{
	atomic_store_explicit(&log_min, (int) level, memory_order_relaxed);
}

void
hx_log_set_format(hx_log_format format)
{
	atomic_store_explicit(&log_fmt, (int) format, memory_order_relaxed);
}

int
hx_log_format_parse(const char *name, hx_log_format *out)
{
	if (name != NULL && strcmp(name, "text") == 0) {
		*out = HX_LOG_TEXT;
		return 0;
	}
	if (name != NULL && strcmp(name, "json") == 0) {
		*out = HX_LOG_JSON;
		return 0;
	}
	return -1;
}

int
hx_log_level_parse(const char *name, hx_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	if (name == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i]) == 0) {
			*out = (hx_log_level) i;
			return 0;
		}
	}
	return -1;
}

bool
hx_log_enabled(hx_log_level level)
{
	return (int) level >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

/* "2026-11-28T13:45:00.123Z", UTC with milliseconds. Returns its length. */
static size_t
log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm       tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	int m = n > 0 ? snprintf(buf + n, size - n, ".%03dZ", (int) (ts.tv_nsec / 1000000L)) : -1;
	return m < 0 ? 0 : n + (size_t) m;
}

/* Replaces control characters with spaces: one event, one line, whatever
 * text a caller (or a libpq error) hands over. */
static void
log_sanitize(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char) s[i];
		if (ch < 0x20 || ch == 0x7f)
			s[i] = ' ';
	}
}

static void
log_write(const char *line, size_t len)
{
	ssize_t n;

	/* One write: a partial write of a line this short only happens on
	 * a signal before anything was written, so EINTR is the one retry. */
	do {
		n = write(STDERR_FILENO, line, len);
	} while (n < 0 && errno == EINTR);
}

static void __attribute__((format(printf, 3, 0)))
log_text(hx_log_level level, const char *request_id, const char *fmt, va_list ap)
{
	char         line[HX_LOG_LINE_MAX];
	const size_t room = sizeof(line) - 1; /* the last byte is for '\n' */

	size_t len = log_timestamp(line, room);
	int n = snprintf(line + len, room - len, " %s req=%.128s ", level_names[level], request_id);
	size_t head = len + (n < 0 ? 0 : (size_t) n);
	if (head > room)
		head = room;

	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): started by hx_log*
	n = vsnprintf(line + head, room - head + 1, fmt, ap);
	len = head + (n < 0 ? 0 : (size_t) n);
	if (len > room) {
		/* Cut, and say so, rather than split the event over two lines. */
		len = room;
		memset(line + len - 3, '.', 3);
	}
	log_sanitize(line, len);
	line[len++] = '\n';
	log_write(line, len);
}

/* ---- JSON ---------------------------------------------------------------------- */

typedef struct jbuf {
	char  *p;
	size_t len, cap; /* cap leaves room for the closing "}\n" */
	bool   full;
} jbuf;

static void
jraw(jbuf *b, const char *s, size_t n)
{
	if (b->full || n > b->cap - b->len) {
		b->full = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t   want;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		want = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		want = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		want = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (want > n)
		return 0;
	for (size_t i = 1; i < want; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((want == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (want == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return want;
}

/* A JSON string: quotes, backslashes and control characters escaped,
 * bytes that are not UTF-8 replaced (a parser must accept every line).
 * Cut at a character boundary, with "...", when the line is full. */
static void
jstr(jbuf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t               n = strlen(s);
	char                 esc[8];

	jraw(b, "\"", 1);
	for (size_t i = 0; i < n && !b->full;) {
		size_t k = utf8_len(u + i, n - i);

		/* 16: the longest escape, "..." and the closing quote. */
		if (b->cap - b->len < 16) {
			jraw(b, "...", 3);
			break;
		}
		if (k == 0) {
			jraw(b, "\\ufffd", 6);
			k = 1;
		} else if (k > 1) {
			jraw(b, s + i, k);
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\', esc[1] = (char) u[i];
			jraw(b, esc, 2);
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			jraw(b, esc, 6);
		} else {
			jraw(b, s + i, 1);
		}
		i += k;
	}
	jraw(b, "\"", 1);
}

static void
jkey_str(jbuf *b, const char *key, const char *val)
{
	if (val == NULL || b->full)
		return;
	jraw(b, ",\"", 2);
	jraw(b, key, strlen(key));
	jraw(b, "\":", 2);
	jstr(b, val);
}

static void
jkey_num(jbuf *b, const char *key, unsigned long long v)
{
	char num[48];
	int  n = snprintf(num, sizeof(num), ",\"%s\":%llu", key, v);

	if (n > 0)
		jraw(b, num, (size_t) n);
}

static void __attribute__((format(printf, 4, 0)))
log_json(hx_log_level level, const char *request_id, const hx_log_fields *f, const char *fmt,
         va_list ap)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char                     msg[HX_LOG_LINE_MAX], ts[40], line[HX_LOG_LINE_MAX];
	char                     fields[1024];
	jbuf fb = { .p = fields, .cap = sizeof(fields) }; /* bounded, never cut */
	jbuf b;

	log_timestamp(ts, sizeof(ts));
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): started by hx_log*
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* The fields are built first, so that a long msg is what gets cut. */
	if (request_id[0] != '-' || request_id[1] != '\0')
		jkey_str(&fb, "request_id", request_id);
	if (f != NULL) {
		jkey_str(&fb, "method", f->method);
		jkey_str(&fb, "peer", f->peer);
		jkey_str(&fb, "code", f->code);
		if (f->base_request_id != NULL)
			jkey_str(&fb, "base_request_id", f->base_request_id);
		if (f->key_id != NULL)
			jkey_str(&fb, "key_id", f->key_id);
		if (f->has_counts) {
			jkey_num(&fb, "received", f->received);
			jkey_num(&fb, "inserted", f->inserted);
			jkey_num(&fb, "updated", f->updated);
			jkey_num(&fb, "unchanged", f->unchanged);
			jkey_num(&fb, "failed", f->failed);
			jkey_num(&fb, "deleted", f->deleted);
		}
		if (f->has_duration)
			jkey_num(&fb, "duration_us", f->duration_us);
	}
	if (fb.full)
		fb.len = 0; /* cannot happen with bounded fields; never emit half */
	b = (jbuf){ .p = line, .cap = sizeof(line) - 2 - fb.len };
	jraw(&b, "{\"ts\":", 6);
	jstr(&b, ts);
	jraw(&b, ",\"level\":", 9);
	jstr(&b, names[level]);
	jraw(&b, ",\"msg\":", 7);
	jstr(&b, msg);
	b.full = false;
	b.cap = sizeof(line) - 2;
	jraw(&b, fields, fb.len);
	b.full = false;
	b.cap = sizeof(line);
	jraw(&b, "}\n", 2);
	log_write(line, b.len);
}

static void __attribute__((format(printf, 4, 0)))
logv(hx_log_level level, const char *request_id, const hx_log_fields *f, const char *fmt,
     va_list ap)
{
	int saved_errno = errno;

	if (!hx_log_enabled(level) || (unsigned) level > HX_LOG_ERROR)
		return;
	if (request_id == NULL || request_id[0] == '\0')
		request_id = "-";
	if (atomic_load_explicit(&log_fmt, memory_order_relaxed) == HX_LOG_JSON)
		log_json(level, request_id, f, fmt, ap);
	else
		log_text(level, request_id, fmt, ap);
	errno = saved_errno;
}

void
hx_log(hx_log_level level, const char *request_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(level, request_id, NULL, fmt, ap);
	va_end(ap);
}

void
hx_log_fields_line(hx_log_level level, const char *request_id, const hx_log_fields *f,
                   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logv(level, request_id, f, fmt, ap);
	va_end(ap);
}

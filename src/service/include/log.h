/*
 * log.h - one line per event on stderr:
 *
 *   2026-11-28T13:45:00.123Z INFO  req=7f3a... ingest source=mock received=28 ...
 *
 * Every line carries the request id ("-" outside a request). Lines are written
 * with a single write(2) so concurrent workers never interleave. Never pass an
 * API key to these functions.
 */
#ifndef HELIOX_LOG_H
#define HELIOX_LOG_H

#include <stdbool.h>

typedef enum hx_log_level {
	HX_LOG_DEBUG = 0,
	HX_LOG_INFO = 1,
	HX_LOG_WARN = 2,
	HX_LOG_ERROR = 3,
} hx_log_level;

typedef enum hx_log_format {
	HX_LOG_TEXT = 0,
	HX_LOG_JSON = 1, /* one JSON object per line: ts, level, msg, and the fields below */
} hx_log_format;

/* What is known about a request, for the JSON format's own keys (the text
 * format has them in its message already). NULL strings are left out. */
typedef struct hx_log_fields {
	const char        *method;
	const char        *peer;
	const char        *code;
	const char        *base_request_id; /* NULL when not known (no key matched) */
	const char        *key_id;          /* NULL when not known; never the key */
	bool               has_counts;
	unsigned           received, inserted, updated, unchanged, failed, deleted;
	bool               has_duration;
	unsigned long long duration_us;
} hx_log_fields;

void hx_log_set_level(hx_log_level level);
void hx_log_set_format(hx_log_format format);
/* "text" | "json"; returns 0 and sets *out, or -1. */
int hx_log_format_parse(const char *name, hx_log_format *out);
/* "debug" | "info" | "warn" | "error"; returns 0 and sets *out, or -1. */
int  hx_log_level_parse(const char *name, hx_log_level *out);
bool hx_log_enabled(hx_log_level level);
void hx_log(hx_log_level level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* hx_log with the request's fields (the one line per request). */
void hx_log_fields_line(hx_log_level level, const char *request_id, const hx_log_fields *f,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define hx_debug(rid, ...)                                      \
	do {                                                    \
		if (hx_log_enabled(HX_LOG_DEBUG))               \
			hx_log(HX_LOG_DEBUG, rid, __VA_ARGS__); \
	} while (0)
#define hx_info(rid, ...)  hx_log(HX_LOG_INFO, rid, __VA_ARGS__)
#define hx_warn(rid, ...)  hx_log(HX_LOG_WARN, rid, __VA_ARGS__)
#define hx_error(rid, ...) hx_log(HX_LOG_ERROR, rid, __VA_ARGS__)

#endif /* HELIOX_LOG_H */

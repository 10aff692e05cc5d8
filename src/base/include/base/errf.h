/*
 * errf.h - the one "printf into the caller's err buffer".
 *
 * Functions that fail return a status and, when the caller gave a buffer,
 * say why in it. These write that text safely: nothing when err is NULL or
 * errsz is 0, truncated (and always terminated) when it does not fit.
 */
#ifndef HELIOX_BASE_ERRF_H
#define HELIOX_BASE_ERRF_H

#include <stdarg.h>
#include <stddef.h>

void hx_errf(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hx_verrf(char *err, size_t errsz, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* As hx_errf, then flattened to one log line: \n, \r and \t become spaces
 * and trailing spaces go (libpq's messages span lines). */
void hx_errf_line(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* HELIOX_BASE_ERRF_H */

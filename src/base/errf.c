/*
 * errf.c - printf into the caller's err buffer.
 */
#include <stdio.h>

#include "base/errf.h"

void
hx_verrf(char *err, size_t errsz, const char *fmt, va_list ap)
{
	if (err != NULL && errsz > 0) {
		vsnprintf(err, errsz, fmt, ap);
	}
}

void
hx_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hx_verrf(err, errsz, fmt, ap);
	va_end(ap);
}

void
hx_errf_line(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	size_t  i;

	if (err == NULL || errsz == 0) {
		return;
	}
	va_start(ap, fmt);
	hx_verrf(err, errsz, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++) {
		if (err[i] == '\n' || err[i] == '\r' || err[i] == '\t') {
			err[i] = ' ';
		}
	}
	while (i > 0 && err[i - 1] == ' ') {
		err[--i] = '\0';
	}
}

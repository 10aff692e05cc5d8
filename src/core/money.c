/*
 * money.c - exact decimal money as int64 micro-dollars.
 *
 * Costs are summed, compared and stored in Postgres numeric; a binary double
 * would turn "0.10" into 0.1000000000000000055511 and make re-ingestion look
 * like an update. So text is parsed straight into integer micros, and the
 * only double ever touched is the one cJSON hands us for a JSON number, which
 * hx_money_from_double() turns back into the decimal text it came from.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heliox/money.h"

#define FRAC_DIGITS 6  /* micros */
#define INT_DIGITS  12 /* 10^12 - 1 is the largest whole-dollar amount */

/* Digits as written: [+-]int[.frac], without any leading zeros of int or
 * trailing zeros of frac. Shared by the parser and the normaliser. */
struct decimal {
	bool        neg;
	const char *ip;
	size_t      ilen;
	const char *fp;
	size_t      flen;
};

static bool
is_digit(char c)
{
	/* Not isdigit(): that one may accept locale-specific digits. */
	return c >= '0' && c <= '9';
}

static size_t
span_digits(const char *s, size_t len, size_t i)
{
	size_t start = i;

	while (i < len && is_digit(s[i])) {
		i++;
	}
	return i - start;
}

/* Splits [+-]digits[.digits]; false when the text has any other shape. */
static bool
decimal_split(const char *s, size_t len, struct decimal *d)
{
	size_t i = 0;

	memset(d, 0, sizeof(*d));
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		d->neg = s[0] == '-';
		i++;
	}
	d->ip = s + i;
	d->ilen = span_digits(s, len, i);
	if (d->ilen == 0) {
		return false;
	}
	i += d->ilen;
	d->fp = s + i;
	if (i < len) {
		if (s[i] != '.') {
			return false;
		}
		d->fp = s + i + 1;
		d->flen = span_digits(s, len, i + 1);
		if (d->flen == 0 || i + 1 + d->flen != len) {
			return false;
		}
	}
	while (d->ilen > 0 && d->ip[0] == '0') {
		d->ip++;
		d->ilen--;
	}
	while (d->flen > 0 && d->fp[d->flen - 1] == '0') {
		d->flen--;
	}
	return true;
}

hx_money_err
hx_money_parse(const char *s, size_t len, hx_micros *out)
{
	struct decimal d;
	int64_t        v = 0;
	size_t         i;

	if (len == 0) {
		return HX_MONEY_EMPTY;
	}
	if (!decimal_split(s, len, &d)) {
		return HX_MONEY_SYNTAX;
	}
	/* Checked on the digit counts, so no length of input can overflow. */
	if (d.ilen > INT_DIGITS) {
		return HX_MONEY_TOO_LARGE;
	}
	if (d.flen > FRAC_DIGITS) {
		return HX_MONEY_TOO_PRECISE;
	}
	for (i = 0; i < d.ilen; i++) {
		v = v * 10 + (d.ip[i] - '0');
	}
	for (i = 0; i < FRAC_DIGITS; i++) {
		v = v * 10 + (i < d.flen ? d.fp[i] - '0' : 0);
	}
	*out = d.neg ? -v : v;
	return HX_MONEY_OK;
}

const char *
hx_money_strerror(hx_money_err err)
{
	switch (err) {
	case HX_MONEY_OK:
		return "is a valid amount";
	case HX_MONEY_EMPTY:
		return "must not be empty";
	case HX_MONEY_SYNTAX:
		return "must be a decimal number such as \"1245.67\"";
	case HX_MONEY_TOO_PRECISE:
		return "has more than 6 fractional digits";
	case HX_MONEY_TOO_LARGE:
		return "must be less than 1000000000000";
	}
	return "is not a valid amount";
}

size_t
hx_money_format(hx_micros v, char buf[HX_MONEY_TEXT_MAX])
{
	/* Unsigned, so that INT64_MIN has a magnitude too. */
	uint64_t mag = v < 0 ? -(uint64_t) v : (uint64_t) v;
	int      n;

	n = snprintf(buf, HX_MONEY_TEXT_MAX, "%s%" PRIu64 ".%06" PRIu64, v < 0 ? "-" : "",
	             (uint64_t) (mag / HX_MICROS_PER_USD), (uint64_t) (mag % HX_MICROS_PER_USD));
	/* Keep two places: "1000.00" reads as money, "1000" does not. */
	while (n > 0 && buf[n - 1] == '0' && buf[n - 3] != '.') {
		buf[--n] = '\0';
	}
	return (size_t) n;
}

/*
 * Writes sign, the significant digits dig[0..n) and the decimal exponent exp
 * (value = d.ddd x 10^exp) as plain text. -1 if it would not fit.
 */
static int
write_plain(bool neg, const char *dig, int n, int exp, char *buf, size_t bufsz)
{
	int    ilen = exp >= 0 ? exp + 1 : 1;  /* integer digits */
	int    lead = exp >= 0 ? 0 : -exp - 1; /* zeros after '.' */
	int    flen = exp >= 0 ? (n > ilen ? n - ilen : 0) : lead + n;
	size_t need = (size_t) neg + (size_t) ilen + (flen > 0) + (size_t) flen + 1;
	char  *p = buf;
	int    i;

	if (need > bufsz) {
		return -1;
	}
	if (neg) {
		*p++ = '-';
	}
	if (exp < 0) {
		*p++ = '0';
	} else {
		for (i = 0; i < ilen; i++) {
			if (i < n) {
				*p++ = dig[i];
			} else {
				*p++ = '0';
			}
		}
	}
	if (flen > 0) {
		*p++ = '.';
		for (i = 0; i < lead; i++) {
			*p++ = '0';
		}
		for (i = exp >= 0 ? ilen : 0; i < n; i++) {
			*p++ = dig[i];
		}
	}
	*p = '\0';
	return 0;
}

int
hx_money_from_double(double d, char buf[HX_MONEY_TEXT_MAX])
{
	char        sci[40];
	char        dig[20];
	const char *p;
	char       *end;
	long        e10;
	int         prec, n = 0;

	buf[0] = '\0';
	if (!isfinite(d) || fabs(d) >= 1e21) {
		return -1;
	}
	/* The first precision that reads back to the same double is the
	 * shortest text for it; glibc's printf rounds exactly, so for a value
	 * written with <= 15 significant digits that is the value as written. */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(sci, NULL) == d) {
			break; /* 17 digits always read back */
		}
	}
	/* "-d.ddde+XX": collect digits, skipping the radix character, whatever
	 * the locale made of it, up to the exponent. */
	for (p = sci + (sci[0] == '-'); *p != 'e' && *p != '\0'; p++) {
		if (is_digit(*p)) {
			dig[n++] = *p;
		}
	}
	if (*p != 'e') {
		return -1;
	}
	/* The exponent printf wrote: "+XX" or "-XX", to the end of sci. */
	errno = 0;
	e10 = strtol(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || *end != '\0' || e10 < INT_MIN || e10 > INT_MAX) {
		return -1;
	}
	if (write_plain(sci[0] == '-', dig, n, (int) e10, buf, HX_MONEY_TEXT_MAX) != 0) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int
hx_money_normalize_text(const char *in, char *out, size_t outsz)
{
	struct decimal d;
	size_t         flen, need;
	bool           neg;
	char          *p = out;

	if (in == NULL || out == NULL || !decimal_split(in, strlen(in), &d)) {
		return -1;
	}
	flen = d.flen < 2 ? 2 : d.flen;
	neg = d.neg && (d.ilen > 0 || d.flen > 0); /* no "-0.00" */
	need = (size_t) neg + (d.ilen > 0 ? d.ilen : 1) + 1 + flen + 1;
	if (need > outsz) {
		return -1;
	}
	if (neg) {
		*p++ = '-';
	}
	if (d.ilen == 0) {
		*p++ = '0';
	}
	memcpy(p, d.ip, d.ilen);
	p += d.ilen;
	*p++ = '.';
	memcpy(p, d.fp, d.flen);
	memset(p + d.flen, '0', flen - d.flen);
	p[flen] = '\0';
	return 0;
}

/* ---- exact division ---------------------------------------------------------- */

/* 2 x 10^32 x 10^6 (a numerator rounded at 6 places) < 2^128: the widest
 * number hx_money_div_text takes, at the common scale. A sum of 10^12 rows of
 * the largest amount has 31 digits at 6 places. */
#define DIV_DIGITS_MAX 32

typedef unsigned __int128 u128;

/* d's digits as an integer scaled by 10^scale (scale >= d->flen); false when
 * that takes more than DIV_DIGITS_MAX digits. */
static bool
decimal_scaled(const struct decimal *d, size_t scale, u128 *out)
{
	u128   v = 0;
	size_t i;

	if (d->ilen + scale > DIV_DIGITS_MAX) {
		return false;
	}
	for (i = 0; i < d->ilen; i++) {
		v = v * 10 + (u128) (d->ip[i] - '0');
	}
	for (i = 0; i < scale; i++) {
		v = v * 10 + (u128) (i < d->flen ? d->fp[i] - '0' : 0);
	}
	*out = v;
	return true;
}

/* Writes q / 10^places as decimal text and hands it to
 * hx_money_normalize_text for the shape (at least 2 places, no trailing
 * zeros past them, no "-0.00"); -1 when it does not fit. */
static int
write_scaled(bool neg, u128 q, unsigned places, char *out, size_t outsz)
{
	/* Zeroed only so that clang's analyzer, which cannot follow the digit
	 * count across the loops, sees no uninitialised read. */
	char   dig[40] = { 0 }; /* least significant first; q < 2^128 has <= 39 digits */
	char   text[sizeof(dig) + 3] = { 0 }, *p = text;
	size_t nd = 0, i;

	do {
		dig[nd++] = (char) ('0' + (int) (q % 10));
		q /= 10;
	} while (q > 0);
	while (nd < places + 1) {
		dig[nd++] = '0';
	}
	if (neg) {
		*p++ = '-';
	}
	for (i = nd; i > 0; i--) {
		if (i == places) {
			*p++ = '.';
		}
		*p++ = dig[i - 1];
	}
	*p = '\0';
	return hx_money_normalize_text(text, out, outsz);
}

int
hx_money_div_text(const char *num, const char *den, unsigned places, char *out, size_t outsz)
{
	struct decimal n, d;
	u128           nv, dv, q;
	size_t         scale;
	unsigned       i;

	if (out == NULL || outsz == 0) {
		return -1;
	}
	out[0] = '\0';
	if (num == NULL || den == NULL || places > FRAC_DIGITS ||
	    !decimal_split(num, strlen(num), &n) || !decimal_split(den, strlen(den), &d)) {
		return -1;
	}
	scale = n.flen > d.flen ? n.flen : d.flen;
	if (!decimal_scaled(&n, scale, &nv) || !decimal_scaled(&d, scale, &dv)) {
		return -1;
	}
	if (dv == 0) {
		return 1;
	}
	for (i = 0; i < places; i++) {
		nv *= 10;
	}
	/* floor((2n + d) / 2d) is n / d rounded half up, on magnitudes: half
	 * away from zero once the sign goes back on. */
	q = (2 * nv + dv) / (2 * dv);
	if (write_scaled(n.neg != d.neg, q, places, out, outsz) != 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

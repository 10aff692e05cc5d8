/*
 * fuzz_money.c - the exact-decimal money functions (include/heliox/money.h):
 *
 *  - hx_money_parse(): accepts exactly [+-]digits[.digits] within the limits,
 *    keeps the value exactly, and hx_money_format() of it parses back equal;
 *  - hx_money_normalize_text(): never writes past outsz (buffers are malloc'd
 *    to their exact size so ASan sees one byte too many), fails only when the
 *    text is not a decimal or does not fit, keeps the value, has the shape of
 *    hx_money_format();
 *  - hx_money_from_double() on the first 8 bytes as a double: when it returns
 *    0 the text is plain decimal and strtod() reads back the same double; and
 *    decimal text of up to 15 significant digits survives strtod() ->
 *    hx_money_from_double() unchanged (what JSON numbers rely on);
 *  - hx_money_div_text() on the input split at its first '/': never writes
 *    past outsz, fails only for what it documents, has the shape of
 *    hx_money_format(), and for operands of up to 12 integer and 6
 *    fractional digits equals the quotient worked out another way
 *    (truncate, then round up when twice the remainder reaches the divisor).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "heliox/money.h"

/* [+-]digits[.digits], exactly n bytes. */
static bool
is_decimal(const char *s, size_t n)
{
	size_t i = 0, d = 0;

	if (i < n && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		d++;
	if (d == 0)
		return false;
	if (i == n)
		return true;
	if (s[i++] != '.')
		return false;
	for (d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		d++;
	return d > 0 && i == n;
}

/*
 * The value of a decimal text (is_decimal() holds) in one canonical spelling:
 * no '+', no leading integer zeros, no trailing fractional zeros, no '.' when
 * there is no fraction, "0" for zero of either sign. Sets *ilen and *flen to
 * the integer and fraction digit counts. malloc'd; the caller frees.
 */
static char *
canon(const char *s, size_t n, size_t *ilen, size_t *flen)
{
	char       *out = malloc(n + 3), *o = out;
	const char *p = s, *end = s + n, *ib, *ie, *fb, *fe;
	bool        neg = false;

	if (out == NULL)
		abort();
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	ib = p;
	while (p < end && *p != '.')
		p++;
	ie = p;
	fb = p < end ? p + 1 : end;
	fe = end;
	while (ib < ie - 1 && *ib == '0')
		ib++;
	while (fe > fb && fe[-1] == '0')
		fe--;
	if (neg && !(ie - ib == 1 && *ib == '0' && fe == fb))
		*o++ = '-';
	memcpy(o, ib, (size_t) (ie - ib));
	o += ie - ib;
	if (fe > fb) {
		*o++ = '.';
		memcpy(o, fb, (size_t) (fe - fb));
		o += fe - fb;
	}
	*o = '\0';
	*ilen = (size_t) (ie - ib) - (ie - ib == 1 && *ib == '0');
	*flen = (size_t) (fe - fb);
	return out;
}

static bool
same_value(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i, f;
	char  *x = canon(a, an, &i, &f), *y = canon(b, bn, &i, &f);
	bool   eq = strcmp(x, y) == 0;

	free(x);
	free(y);
	return eq;
}

/* Shape of hx_money_format(): [-]digits.dd[dddd], no trailing zero past 2. */
static void
check_money_shape(const char *s)
{
	const char *dot = strchr(s, '.');
	size_t      f;

	HX_FUZZ_CHECK(dot != NULL && is_decimal(s, strlen(s)) && s[0] != '+');
	f = strlen(dot + 1);
	HX_FUZZ_CHECK(f >= 2 && (f == 2 || dot[f] != '0'));
}

static void
fuzz_parse(const char *s, size_t n)
{
	hx_micros    v = 0, back = 0;
	hx_money_err e = hx_money_parse(s, n, &v);
	size_t       ilen = 0, flen = 0, len;
	char        *buf;

	HX_FUZZ_CHECK(hx_money_strerror(e) != NULL);
	if (!is_decimal(s, n)) {
		HX_FUZZ_CHECK(e == HX_MONEY_EMPTY || e == HX_MONEY_SYNTAX);
		HX_FUZZ_CHECK((e == HX_MONEY_EMPTY) == (n == 0));
		return;
	}
	free(canon(s, n, &ilen, &flen));
	if (ilen > 12 || flen > 6) { /* too large or too precise: refused */
		HX_FUZZ_CHECK(e == HX_MONEY_TOO_LARGE || e == HX_MONEY_TOO_PRECISE);
		HX_FUZZ_CHECK(e != HX_MONEY_TOO_LARGE || ilen > 12);
		HX_FUZZ_CHECK(e != HX_MONEY_TOO_PRECISE || flen > 6);
		return;
	}
	HX_FUZZ_CHECK(e == HX_MONEY_OK);
	HX_FUZZ_CHECK(v > -HX_MONEY_LIMIT_MICROS && v < HX_MONEY_LIMIT_MICROS);

	buf = malloc(HX_MONEY_TEXT_MAX); /* exact size: ASan catches overflow */
	if (buf == NULL)
		abort();
	len = hx_money_format(v, buf);
	HX_FUZZ_CHECK(len < HX_MONEY_TEXT_MAX && strlen(buf) == len);
	check_money_shape(buf);
	HX_FUZZ_CHECK(same_value(s, n, buf, len)); /* parsed exactly */
	HX_FUZZ_CHECK(hx_money_parse(buf, len, &back) == HX_MONEY_OK && back == v);
	free(buf);
}

/* text is NUL-terminated (the input up to its first NUL byte). outsz is
 * chosen by the input, 0 included. */
static void
fuzz_normalize(const char *text, size_t outsz)
{
	size_t n = strlen(text), bigsz = n + 8;
	char  *big = malloc(bigsz), *small = malloc(outsz ? outsz : 1);
	int    rc, rc2;

	if (big == NULL || small == NULL)
		abort();
	/* Room enough: fails iff the text is not a decimal. */
	rc = hx_money_normalize_text(text, big, bigsz);
	HX_FUZZ_CHECK((rc == 0) == is_decimal(text, n));
	HX_FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		HX_FUZZ_CHECK(strnlen(big, bigsz) < bigsz);
		check_money_shape(big);
		HX_FUZZ_CHECK(same_value(text, n, big, strlen(big)));
	}
	/* A tight buffer: the same answer when it fits, -1 when it does not. */
	rc2 = hx_money_normalize_text(text, outsz ? small : small + 1, outsz);
	if (rc == 0 && strlen(big) < outsz)
		HX_FUZZ_CHECK(rc2 == 0 && strcmp(small, big) == 0);
	else
		HX_FUZZ_CHECK(rc2 == -1);
	free(big);
	free(small);
}

static void
fuzz_double(double d)
{
	char *buf = malloc(HX_MONEY_TEXT_MAX), *end;
	int   rc;

	if (buf == NULL)
		abort();
	rc = hx_money_from_double(d, buf);
	HX_FUZZ_CHECK(rc == 0 || rc == -1);
	if (isnan(d) || isinf(d) || fabs(d) >= 1e21)
		HX_FUZZ_CHECK(rc == -1);
	/* Every amount money cares about can be written out. */
	if (d == 0 || (fabs(d) >= 1e-6 && fabs(d) < 1e21))
		HX_FUZZ_CHECK(rc == 0);
	if (rc == 0) {
		size_t n = strnlen(buf, HX_MONEY_TEXT_MAX);

		HX_FUZZ_CHECK(n < HX_MONEY_TEXT_MAX && is_decimal(buf, n));
		HX_FUZZ_CHECK(strtod(buf, &end) == d && *end == '\0');
	} else {
		HX_FUZZ_CHECK(buf[0] == '\0');
	}
	free(buf);
}

/* Decimal text of at most 15 significant digits (and a size a double can
 * show without an exponent) -> strtod -> hx_money_from_double: same value. */
static void
fuzz_roundtrip(const char *text)
{
	size_t n = strlen(text), ilen, flen, sig = 0;
	char  *c, *p, buf[HX_MONEY_TEXT_MAX];

	if (!is_decimal(text, n))
		return;
	c = canon(text, n, &ilen, &flen);
	for (p = c; *p; p++) /* significant digits: from the first non-zero */
		if ((*p >= '1' && *p <= '9') || (sig > 0 && *p >= '0' && *p <= '9'))
			sig++;
	if (sig <= 15 && ilen <= 15 && flen <= 20) {
		HX_FUZZ_CHECK(hx_money_from_double(strtod(text, NULL), buf) == 0);
		HX_FUZZ_CHECK(is_decimal(buf, strlen(buf)));
		HX_FUZZ_CHECK(same_value(c, strlen(c), buf, strlen(buf)));
	}
	free(c);
}

/* The integer n x 10^6 of canonical decimal text (canon()) with at most 12
 * integer and 6 fractional digits; false for anything else. */
static bool
micros_of(const char *c, size_t ilen, size_t flen, bool *neg, uint64_t *out)
{
	uint64_t v = 0;
	size_t   i;

	if (ilen > 12 || flen > 6)
		return false;
	*neg = *c == '-';
	c += *neg;
	for (; *c != '\0' && *c != '.'; c++)
		v = v * 10 + (uint64_t) (*c - '0');
	c += *c == '.';
	for (i = 0; i < 6; i++)
		v = v * 10 + (uint64_t) (i < flen ? c[i] - '0' : 0);
	*out = v;
	return true;
}

/* num / den at 4 places the other way, in hx_money_format()'s shape; false
 * when den is zero. n, d < 10^18, so n x 10^4 fits 128 bits. */
static bool
quotient_ref(bool neg, uint64_t n, uint64_t d, char *out)
{
	unsigned __int128 q, r;
	char              dig[48];
	int               nd = 0, len;

	if (d == 0)
		return false;
	q = (unsigned __int128) n * 10000 / d;
	r = (unsigned __int128) n * 10000 % d;
	q += 2 * r >= d;
	do {
		dig[nd++] = (char) ('0' + (int) (q % 10));
		q /= 10;
	} while (q > 0);
	while (nd < 5)
		dig[nd++] = '0';
	len = 0;
	if (neg && !(nd == 5 && memcmp(dig, "00000", 5) == 0))
		out[len++] = '-';
	while (nd > 4)
		out[len++] = dig[--nd];
	out[len++] = '.';
	while (nd > 0)
		out[len++] = dig[--nd];
	out[len] = '\0';
	while (len > 3 && out[len - 1] == '0' && out[len - 3] != '.')
		out[--len] = '\0';
	return true;
}

/* text split at its first '/' into num and den (den "1" when there is no
 * '/'); places and outsz chosen by the input, 0 included. */
static void
fuzz_div(const char *text, unsigned places, size_t outsz)
{
	const char *slash = strchr(text, '/');
	size_t      nlen = slash ? (size_t) (slash - text) : strlen(text);
	char       *num = malloc(nlen + 1), *out = malloc(outsz ? outsz : 1), big[80], want[64];
	const char *den = slash ? slash + 1 : "1";
	int         rc, rc2;

	if (num == NULL || out == NULL)
		abort();
	memcpy(num, text, nlen);
	num[nlen] = '\0';
	rc = hx_money_div_text(num, den, places, big, sizeof(big));
	HX_FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1);
	if (!is_decimal(num, nlen) || !is_decimal(den, strlen(den)) || places > 6)
		HX_FUZZ_CHECK(rc == -1);
	if (rc != 0)
		HX_FUZZ_CHECK(big[0] == '\0');
	if (rc == 0)
		check_money_shape(big);
	if (rc != -1) {
		size_t   ni, nf, di, df;
		char    *cn = canon(num, nlen, &ni, &nf), *cd = canon(den, strlen(den), &di, &df);
		bool     nneg, dneg;
		uint64_t nv, dv;

		HX_FUZZ_CHECK((rc == 1) == (strcmp(cd, "0") == 0));
		if (places == 4 && micros_of(cn, ni, nf, &nneg, &nv) &&
		    micros_of(cd, di, df, &dneg, &dv) && quotient_ref(nneg != dneg, nv, dv, want))
			HX_FUZZ_CHECK(strcmp(big, want) == 0);
		free(cn);
		free(cd);
	}
	/* A tight buffer: the same answer when it fits, -1 when it does not. */
	rc2 = hx_money_div_text(num, den, places, outsz ? out : NULL, outsz);
	if (rc == 0 && strlen(big) < outsz)
		HX_FUZZ_CHECK(rc2 == 0 && strcmp(out, big) == 0);
	else if (rc == 0)
		HX_FUZZ_CHECK(rc2 == -1);
	free(num);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char  *text = malloc(size + 1);
	double d;

	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';

	fuzz_parse((const char *) data, size);
	fuzz_normalize(text, size ? data[0] % 25 : 0);
	fuzz_roundtrip(text);
	fuzz_div(text, size ? data[size - 1] % 8 : 4, size > 1 ? data[1] % 25 : 0);
	if (size >= sizeof d) {
		memcpy(&d, data, sizeof d);
		fuzz_double(d);
	}
	free(text);
	return 0;
}

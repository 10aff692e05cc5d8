/*
 * billnum.c - exact wide decimals and bill date-times. Pure functions, no I/O.
 */
#include "billnum.h"

#include "base/date.h"

#include <stdio.h>
#include <string.h>

#include "heliox/convert.h"
#include "heliox/money.h"

#define E18 ((__int128) 1000000000000000000LL)

static const uint64_t pow10_64[20] = { 1ULL,
	                               10ULL,
	                               100ULL,
	                               1000ULL,
	                               10000ULL,
	                               100000ULL,
	                               1000000ULL,
	                               10000000ULL,
	                               100000000ULL,
	                               1000000000ULL,
	                               10000000000ULL,
	                               100000000000ULL,
	                               1000000000000ULL,
	                               10000000000000ULL,
	                               100000000000000ULL,
	                               1000000000000000ULL,
	                               10000000000000000ULL,
	                               100000000000000000ULL,
	                               1000000000000000000ULL,
	                               10000000000000000000ULL };

/* 10^n for 0 <= n <= 38. */
static __int128
p10(int n)
{
	return n <= 19 ? (__int128) pow10_64[n] : (__int128) pow10_64[19] * pow10_64[n - 19];
}

static bool
dig(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
 * Each significant digit lands in hi (places 10^19 .. 10^-18) or lo
 * (10^-19 .. 10^-36). A non-zero digit elsewhere is refused: the value is
 * beyond what the two limbs hold exactly.
 */
const char *
hx_wdec_parse(const char *s, size_t len, hx_wdec *out)
{
	size_t   i = 0, mstart, mend, dot = (size_t) -1;
	bool     neg = false, any = false;
	long     exp = 0;
	__int128 hi = 0, lo = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i++;
	}
	mstart = i;
	for (; i < len; i++) {
		if (dig(s[i])) {
			any = true;
		} else if (s[i] == '.' && dot == (size_t) -1) {
			dot = i;
		} else {
			break;
		}
	}
	mend = i;
	if (!any) {
		return "is not a number";
	}
	if (i < len) {
		bool   eneg = false;
		size_t es;
		if (s[i] != 'e' && s[i] != 'E') {
			return "is not a number";
		}
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-')) {
			eneg = s[i] == '-';
			i++;
		}
		es = i;
		for (; i < len && dig(s[i]); i++) {
			if (exp < 100000) {
				exp = exp * 10 + (s[i] - '0');
			}
		}
		if (i == es || i != len) {
			return "is not a number";
		}
		if (eneg) {
			exp = -exp;
		}
	}
	if (dot == (size_t) -1) {
		dot = mend;
	}
	for (size_t k = mstart; k < mend; k++) {
		long place;
		int  d;
		if (k == dot) {
			continue;
		}
		d = s[k] - '0';
		if (d == 0) {
			continue;
		}
		place = (k < dot ? (long) (dot - k) - 1 : -(long) (k - dot)) + exp;
		if (place >= 20) {
			return "is too large (10^20 or more)";
		}
		if (place >= -18) {
			hi += d * p10((int) (place + 18));
		} else if (place >= -36) {
			lo += d * p10((int) (place + 36));
		} else {
			return "has non-zero digits beyond 10^-36";
		}
	}
	out->hi = neg ? -hi : hi;
	out->lo = neg ? -lo : lo;
	return NULL;
}

static void
carry(hx_wdec *a)
{
	static const __int128 lim = E18 * E18;
	if (a->lo >= lim || a->lo <= -lim) {
		__int128 q = a->lo / E18;
		a->hi += q;
		a->lo -= q * E18;
	}
}

void
hx_wdec_add(hx_wdec *acc, const hx_wdec *v)
{
	acc->hi += v->hi;
	acc->lo += v->lo;
	carry(acc);
}

void
hx_wdec_add_mul(hx_wdec *acc, const hx_wdec *v, int64_t k)
{
	hx_wdec  t = { v->hi, v->lo };
	__int128 q = t.lo / E18;
	/* Bring lo under 10^18 first, so lo * k cannot overflow. */
	t.hi += q;
	t.lo -= q * E18;
	acc->hi += t.hi * k;
	acc->lo += t.lo * k;
	carry(acc);
}

bool
hx_wdec_round_micros(const hx_wdec *v, int64_t div, int64_t *micros)
{
	__int128 hi = v->hi, lo = v->lo, q, H, L, A, R, m, a, rr, unit;
	bool     neg;

	q = lo / E18;
	hi += q;
	lo -= q * E18;
	if (hi > 0 && lo < 0) {
		hi -= 1;
		lo += E18;
	} else if (hi < 0 && lo > 0) {
		hi += 1;
		lo -= E18;
	}
	neg = hi < 0 || lo < 0;
	H = hi < 0 ? -hi : hi;
	L = lo < 0 ? -lo : lo;
	/* value = (H * 10^18 + L) * 10^-36; micros = value * 10^6 / div */
	unit = p10(30);
	A = H / p10(12);
	R = (H % p10(12)) * E18 + L; /* < 10^30 */
	m = A / div;
	a = A % div;
	rr = a * unit + R;
	if (2 * rr >= (__int128) div * unit) {
		m += 1;
	}
	if (m > (__int128) INT64_MAX) {
		return false;
	}
	*micros = neg ? -(int64_t) m : (int64_t) m;
	return true;
}

bool
hx_wdec_format6(const hx_wdec *v, int64_t div, char *out, size_t outsz)
{
	int64_t m;
	char    buf[HX_MONEY_TEXT_MAX];

	if (!hx_wdec_round_micros(v, div, &m)) {
		return false;
	}
	hx_money_format(m, buf);
	return (size_t) snprintf(out, outsz, "%s", buf) < outsz;
}

const char *
hx_bill_decimal_round6(const char *s, size_t len, char out[HX_BILL_NUM_MAX])
{
	hx_wdec     v;
	const char *why = hx_wdec_parse(s, len, &v);

	if (why != NULL) {
		return why;
	}
	if (!hx_wdec_format6(&v, 1, out, HX_BILL_NUM_MAX)) {
		return "is too large";
	}
	return NULL;
}

/* ---- dates ---------------------------------------------------------------- */

/* Howard Hinnant's civil_from_days; the other way is src/base's hx_date_parse(). */
void
hx_civil_from_days(int32_t z, char out[11])
{
	int      era;
	unsigned doe, yoe, doy, mp, d, m;
	int      y;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = (int) yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	y = y < 0 ? 0 : y % 10000;
	out[0] = (char) ('0' + y / 1000);
	out[1] = (char) ('0' + y / 100 % 10);
	out[2] = (char) ('0' + y / 10 % 10);
	out[3] = (char) ('0' + y % 10);
	out[4] = '-';
	out[5] = (char) ('0' + m / 10);
	out[6] = (char) ('0' + m % 10);
	out[7] = '-';
	out[8] = (char) ('0' + d / 10);
	out[9] = (char) ('0' + d % 10);
	out[10] = '\0';
}

static int
num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!dig(s[i])) {
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * YYYY-MM-DD(T| )HH:MM:SS[.fraction][Z | +HH:MM | -HH:MM | +HHMM]
 * The date part is the UTC calendar date after applying the offset.
 */
const char *
hx_bill_datetime_parse(const char *s, size_t len, int32_t *day)
{
	static const char not_dt[] =
	    "is not a date-time YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD HH:MM:SS";
	int     h, mi, se, off = 0;
	size_t  i = 19;
	int32_t z;

	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':') {
		return not_dt;
	}
	h = num(s + 11, 2);
	mi = num(s + 14, 2);
	se = num(s + 17, 2);
	/* The date by src/base's one check (digits, month, day of the month,
	 * years 1-9999); the date's digits are read again only to word a refusal. */
	if (!hx_date_parse(s, 10, &z)) {
		return num(s, 4) < 0 || num(s + 5, 2) < 0 || num(s + 8, 2) < 0 || h < 0 || mi < 0 ||
		        se < 0
		    ? not_dt
		    : "is not a real calendar date";
	}
	if (h < 0 || mi < 0 || se < 0) {
		return not_dt;
	}
	if (h > 23 || mi > 59 || se > 59) {
		return "is not a real time of day";
	}
	if (i < len && s[i] == '.') {
		size_t f = ++i;
		while (i < len && dig(s[i])) {
			i++;
		}
		if (i == f) {
			return "has an empty fraction of a second";
		}
	}
	if (i < len && s[i] == 'Z') {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i] == '-' ? -1 : 1, oh, om;
		if (len - i == 6 && s[i + 3] == ':') {
			oh = num(s + i + 1, 2);
			om = num(s + i + 4, 2);
		} else if (len - i == 5) {
			oh = num(s + i + 1, 2);
			om = num(s + i + 3, 2);
		} else {
			return "has an unreadable UTC offset";
		}
		if (oh < 0 || om < 0 || oh > 23 || om > 59) {
			return "has an unreadable UTC offset";
		}
		off = sign * (oh * 60 + om);
		i = len;
	}
	if (i != len) {
		return not_dt;
	}
	{
		int mins = h * 60 + mi - off;
		if (mins < 0) {
			z -= 1;
		} else if (mins >= 1440) {
			z += 1;
		}
		*day = z;
	}
	return NULL;
}

const char *
hx_bill_datetime_date(const char *s, size_t len, char out[HX_DATE_LEN + 1])
{
	int32_t     z;
	const char *why = hx_bill_datetime_parse(s, len, &z);

	if (why == NULL) {
		hx_civil_from_days(z, out);
	}
	return why;
}

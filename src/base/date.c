/*
 * date.c - the one calendar-date check, and its inverse.
 */
#include "base/date.h"

/* The value of n ASCII digits, or -1 when one is not a digit. */
static int
digits_value(const char *s, int n)
{
	int v = 0;

	for (; n > 0; n--, s++) {
		if (*s < '0' || *s > '9') {
			return (-1);
		}
		v = v * 10 + (*s - '0');
	}
	return (v);
}

static bool
is_leap(int y)
{
	return ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0);
}

/* Howard Hinnant's days_from_civil: days from 1970-01-01, proleptic Gregorian. */
static int32_t
days_from_civil(int y, unsigned m, unsigned d)
{
	int      era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + (int32_t) doe - 719468);
}

bool
hx_date_parse(const char *s, size_t len, int32_t *days_1970)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int                        y, m, d;

	if (s == NULL || len != 10 || s[4] != '-' || s[7] != '-') {
		return (false);
	}
	y = digits_value(s, 4);
	m = digits_value(s + 5, 2);
	d = digits_value(s + 8, 2);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y))) {
		return (false);
	}
	if (days_1970 != NULL) {
		*days_1970 = days_from_civil(y, (unsigned) m, (unsigned) d);
	}
	return (true);
}

/* Writes v as exactly `width` decimal digits, zero-padded. */
static char *
put_digits(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char) ('0' + v % 10);
		v /= 10;
	}
	return (p + width);
}

/* Howard Hinnant's civil_from_days, the inverse of days_from_civil. */
void
hx_date_format(int32_t days_1970, char out[HX_DATE_TEXT])
{
	int32_t  z = days_1970 + 719468;
	int32_t  era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned) (z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	int32_t  y = (int32_t) yoe + era * 400 + (m <= 2);
	char    *p = put_digits(out, (unsigned) y, 4);

	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p = '\0';
}

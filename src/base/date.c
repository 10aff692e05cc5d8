/*
 * date.c - the one calendar-date check.
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

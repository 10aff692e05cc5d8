/*
 * date.h - the one calendar-date check, for validation and for the store's
 * binary date encoding alike.
 */
#ifndef HELIOX_BASE_DATE_H
#define HELIOX_BASE_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Days from 1970-01-01 to 2000-01-01 (PostgreSQL's date epoch). */
#define HX_DATE_PG_EPOCH_DAYS 10957

/*
 * True when `s` (exactly `len` bytes) is "YYYY-MM-DD" naming a real day of
 * the Gregorian calendar, years 0001 to 9999 ("2024-02-29" yes,
 * "2023-02-29", "2026-13-01", "0000-01-01", "2026-1-01" no). When true and
 * days_1970 is not NULL, stores the day's number counted from 1970-01-01
 * (negative before it).
 */
bool hx_date_parse(const char *s, size_t len, int32_t *days_1970);

#define HX_DATE_TEXT 11 /* "YYYY-MM-DD" and the NUL */

/*
 * The inverse of hx_date_parse: day `days_1970` (counted from 1970-01-01,
 * negative before it) as "YYYY-MM-DD". days_1970 must name a day of years
 * 0001 to 9999, the range hx_date_parse accepts.
 */
void hx_date_format(int32_t days_1970, char out[HX_DATE_TEXT]);

#endif /* HELIOX_BASE_DATE_H */

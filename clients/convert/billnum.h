/*
 * billnum.h - exact wide decimals and bill date-times (internal to hx_convert).
 *
 * A bill's numbers may carry many fractional digits (FOCUS "Decimal Extended"
 * is 128-bit; AWS writes doubles such as 1.1102230246251565E-16), so the sums
 * are kept in two __int128 limbs: value = hi * 10^-18 + lo * 10^-36. That is
 * exact to 36 fractional digits with magnitudes up to ~10^20; a value beyond
 * that is refused with a violation rather than silently rounded.
 */
#ifndef HELIOX_BILLNUM_H
#define HELIOX_BILLNUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hx_wdec {
	__int128 hi; /* units of 10^-18 */
	__int128 lo; /* units of 10^-36 */
} hx_wdec;

/* NULL or a static reason. */
const char *hx_wdec_parse(const char *s, size_t len, hx_wdec *out);
void        hx_wdec_add(hx_wdec *acc, const hx_wdec *v);
/* acc += v * k, k small (a GPU-count factor). */
void hx_wdec_add_mul(hx_wdec *acc, const hx_wdec *v, int64_t k);
/* Rounds v / div to micro-units, half away from zero. false if the result
 * does not fit an int64 of micros. */
bool hx_wdec_round_micros(const hx_wdec *v, int64_t div, int64_t *micros);
/* The same as text ("12.50", "-0.000001"); false when out of range. */
bool hx_wdec_format6(const hx_wdec *v, int64_t div, char *out, size_t outsz);

/* The civil date (YYYY-MM-DD) of a day counted from 1970-01-01. */
void hx_civil_from_days(int32_t z, char out[11]);
/* R8: NULL and the UTC day, or a static reason. */
const char *hx_bill_datetime_parse(const char *s, size_t len, int32_t *day);

#endif

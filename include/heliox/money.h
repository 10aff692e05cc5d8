/*
 * money.h - exact decimal money.
 *
 * An amount is a count of micro-dollars (10^-6 USD) in an int64. The contract
 * allows at most 6 fractional digits and values below 10^12, so every valid
 * amount is below 10^18 micros and fits an int64 (max ~9.22e18) with room for
 * a sign. No binary floating point is used for storage or arithmetic; the one
 * place a double appears is hx_money_from_double(), which turns a JSON number
 * (cJSON keeps only the double) back into its shortest exact decimal text.
 *
 * No I/O here: everything is a pure function, easy to test and fuzz.
 */
#ifndef HELIOX_MONEY_H
#define HELIOX_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "heliox/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t hx_micros;

#define HX_MICROS_PER_USD 1000000LL
/* Exclusive upper bound of an amount's magnitude: 10^12 USD. */
#define HX_MONEY_LIMIT_MICROS (1000000000000LL * HX_MICROS_PER_USD)
/* Big enough for any formatted amount or decimal text we produce, NUL included. */
#define HX_MONEY_TEXT_MAX 48

typedef enum hx_money_err {
	HX_MONEY_OK = 0,
	HX_MONEY_EMPTY,       /* no characters at all */
	HX_MONEY_SYNTAX,      /* not [+-]digits[.digits] */
	HX_MONEY_TOO_PRECISE, /* more than 6 fractional digits (after dropping trailing zeros) */
	HX_MONEY_TOO_LARGE,   /* magnitude >= 10^12 */
} hx_money_err;

/*
 * Parses decimal text of exactly `len` bytes: an optional sign, one or more
 * digits, optionally '.' and one or more digits. No exponent, no white space
 * (callers trim first). Trailing fractional zeros beyond 6 places are allowed
 * ("1.50000000" is 1.5). On HX_MONEY_OK stores the amount in *out.
 */
HX_API hx_money_err hx_money_parse(const char *s, size_t len, hx_micros *out);

/* A short English reason for an error, e.g. "has more than 6 fractional
 * digits". Static string. */
HX_API const char *hx_money_strerror(hx_money_err err);

/*
 * Formats an amount as plain decimal text with at least 2 and at most 6
 * fractional digits, trailing zeros beyond the second dropped:
 * 1245670000 -> "1245.67", 1000000000 -> "1000.00", 1 -> "0.000001".
 * Returns the length written (always fits HX_MONEY_TEXT_MAX).
 */
HX_API size_t hx_money_format(hx_micros v, char buf[HX_MONEY_TEXT_MAX]);

/*
 * Turns a double (as cJSON hands JSON numbers over) into the shortest plain
 * decimal text that strtod() reads back as the same double, never using an
 * exponent: 1245.67 -> "1245.67", 1e3 -> "1000", 5e-7 -> "0.0000005".
 * So any value written with up to 15 significant digits round-trips exactly.
 * Returns 0, or -1 for NaN/infinity or a magnitude too large to write out
 * (>= 1e21), in which case buf holds "".
 */
HX_API int hx_money_from_double(double d, char buf[HX_MONEY_TEXT_MAX]);

/*
 * Normalises decimal text of any size (e.g. Postgres numeric output such as
 * "39123.450000" or "-12") to the same shape as hx_money_format: at least 2
 * fractional digits, trailing zeros beyond that dropped ("39123.45", "-12.00").
 * Used for sums, which may exceed an int64. Returns 0, or -1 if `in` is not
 * [+-]digits[.digits] or does not fit `outsz` bytes with its NUL.
 */
HX_API int hx_money_normalize_text(const char *in, char *out, size_t outsz);

/*
 * Writes num / den rounded half away from zero to `places` fractional digits
 * (at most 6), in the shape of hx_money_normalize_text ("0.50", "4.1752"),
 * exactly: both are decimal text as Postgres writes numeric ("198.320000"),
 * turned into integers at one scale and divided once, so no digit is lost
 * to a division that stops early and then rounds a second time. Returns 0;
 * 1 when den is zero (no quotient, out holds ""); -1 when either is not
 * [+-]digits[.digits], a number needs more than 32 digits at the common
 * scale, or the text does not fit outsz bytes with its NUL.
 */
HX_API int hx_money_div_text(const char *num, const char *den, unsigned places, char *out,
                             size_t outsz);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_MONEY_H */

/*
 * text.h - the one trim and the one ASCII lower-case, so that names are
 * normalised the same way when ingested, filtered and checked by the CLI;
 * and the one reading of a count given on a command line.
 */
#ifndef HELIOX_BASE_TEXT_H
#define HELIOX_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* The white space trimmed from both ends of a name: space, \t, \r, \n. */
bool hx_text_is_space(char c);

/* Narrows [*s, *s + *len) to drop white space at both ends; no copy. */
void hx_text_trim(const char **s, size_t *len);

/* A-Z to a-z in place, other bytes (UTF-8 included) untouched. */
void hx_text_lower(char *s, size_t len);

/* A count typed by a person (--batch 500): decimal digits only, from min to
 * max. strtoul alone would take " 12", "+12", "-1" (wrapped) and "12abc".
 * Returns 0 and sets *out, or -1 and leaves *out alone. */
int hx_text_count(const char *s, unsigned long long min, unsigned long long max,
                  unsigned long long *out);

#endif /* HELIOX_BASE_TEXT_H */

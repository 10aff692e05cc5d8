/*
 * text.h - the one trim and the one ASCII lower-case, so that names are
 * normalised the same way when ingested, filtered and checked by the CLI.
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

#endif /* HELIOX_BASE_TEXT_H */

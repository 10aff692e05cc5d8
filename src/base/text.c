/*
 * text.c - trim and ASCII lower-case.
 */
#include "base/text.h"

bool
hx_text_is_space(char c)
{
	return (c == ' ' || c == '\t' || c == '\r' || c == '\n');
}

void
hx_text_trim(const char **s, size_t *len)
{
	while (*len > 0 && hx_text_is_space((*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && hx_text_is_space((*s)[*len - 1])) {
		(*len)--;
	}
}

void
hx_text_lower(char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 'A' && s[i] <= 'Z') {
			s[i] = (char) (s[i] - 'A' + 'a');
		}
	}
}

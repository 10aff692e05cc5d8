/*
 * text.c - trim, ASCII lower-case, counts.
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

int
hx_text_count(const char *s, unsigned long long min, unsigned long long max,
              unsigned long long *out)
{
	unsigned long long v = 0;

	if (s == NULL || *s == '\0') {
		return (-1);
	}
	for (; *s != '\0'; s++) {
		unsigned d = (unsigned) (*s - '0');

		/* v * 10 + d <= max, asked without overflowing. */
		if (*s < '0' || *s > '9' || d > max || v > (max - d) / 10) {
			return (-1);
		}
		v = v * 10 + d;
	}
	if (v < min) {
		return (-1);
	}
	*out = v;
	return (0);
}

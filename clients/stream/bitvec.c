/*
 * bitvec.c - see bitvec.h.
 */
#include <stdlib.h>
#include <string.h>

#include "bitvec.h"

void
bitvec_init(bitvec *v)
{
	memset(v, 0, sizeof(*v));
}

void
bitvec_free(bitvec *v)
{
	free(v->words);
	bitvec_init(v);
}

int
bitvec_set(bitvec *v, uint64_t i)
{
	size_t    w = (size_t) (i / 64), n;
	uint64_t *words;

	if (w >= v->nwords) {
		/* Doubling: invalid records may be spread all over the file. */
		n = v->nwords != 0 ? v->nwords : 64;
		while (n <= w) {
			n *= 2;
		}
		if ((words = realloc(v->words, n * sizeof(*words))) == NULL) {
			return (-1);
		}
		memset(words + v->nwords, 0, (n - v->nwords) * sizeof(*words));
		v->words = words;
		v->nwords = n;
	}
	v->words[w] |= (uint64_t) 1 << (i % 64);
	return (0);
}

bool
bitvec_get(const bitvec *v, uint64_t i)
{
	size_t w = (size_t) (i / 64);

	return (w < v->nwords && (v->words[w] >> (i % 64) & 1) != 0);
}

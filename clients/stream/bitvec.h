/*
 * bitvec.h - a growable set of record indexes, one bit each: which records of
 * a file the first pass found invalid, for the second pass to leave out
 * (1,000,000 records = 122 KiB).
 */
#ifndef HELIOX_BITVEC_H
#define HELIOX_BITVEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bitvec {
	uint64_t *words;
	size_t    nwords;
} bitvec;

void bitvec_init(bitvec *v);
void bitvec_free(bitvec *v);
/* Returns 0, or -1 when memory ran out. */
int  bitvec_set(bitvec *v, uint64_t i);
bool bitvec_get(const bitvec *v, uint64_t i);

#endif /* HELIOX_BITVEC_H */

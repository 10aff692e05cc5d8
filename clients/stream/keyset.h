/*
 * keyset.h - which record keys (date, provider, gpu_type) a file has had, in
 * bounded memory, so that a repeated key is caught across the whole file and
 * not only within one batch.
 *
 * Only a 64-bit hash of each key is kept, with the index of the record that
 * first had it: 12 bytes a slot, at most 3/4 full, so 1,000,000 records take
 * 24 MiB (2^21 slots). Two different keys with the same hash would be taken
 * for a duplicate. With a well mixed 64-bit hash the chance that any two of
 * n keys collide is about n^2 / 2^65: 3e-8 for a million records, 3e-6 for
 * ten million. Keeping the key text instead would cost ~150 bytes a record;
 * the rare false "duplicate of cost_data[j]" names both records, so a person
 * can see it is not one.
 */
#ifndef HELIOX_KEYSET_H
#define HELIOX_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "heliox/record.h"

typedef struct keyset {
	uint64_t *hash;   /* 0 = empty slot */
	uint32_t *first;  /* the index that first had the slot's key */
	size_t    nslots; /* a power of two, or 0 */
	size_t    len;
} keyset;

void keyset_init(keyset *k);
void keyset_free(keyset *k);

/* The hash of a normalised record's key; never 0. */
uint64_t keyset_hash(const hx_record *r);

/* Adds hash h for record `index`. Returns 0 when it was new, 1 when it was
 * there already (*first = the index that had it first), -1 when memory ran
 * out. */
int keyset_add(keyset *k, uint64_t h, uint32_t index, uint32_t *first);

#endif /* HELIOX_KEYSET_H */

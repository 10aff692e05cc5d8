/*
 * keyset.c - an open-addressing set of 64-bit key hashes (see keyset.h).
 * Linear probing over two parallel arrays: the probe walks the dense hash
 * array alone, and the index is read only on a hit.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

#include "keyset.h"

#define KEYSET_MIN_SLOTS 1024u

void
keyset_init(keyset *k)
{
	memset(k, 0, sizeof(*k));
}

void
keyset_free(keyset *k)
{
	free(k->hash);
	free(k->first);
	keyset_init(k);
}

/* FNV-1a over the three fields, each ended by its NUL (no field can hold
 * one), then the finaliser: FNV alone mixes its high bits poorly, and both
 * the slot (low bits) and the comparison (all bits) need them well spread. */
uint64_t
keyset_hash(const hx_record *r)
{
	uint64_t h = HX_FNV1A_OFFSET;

	h = hx_fnv1a(h, r->date, strlen(r->date) + 1);
	h = hx_fnv1a(h, r->provider, strlen(r->provider) + 1);
	h = hx_fnv1a(h, r->gpu_type, strlen(r->gpu_type) + 1);
	h = hx_mix64(h);
	return (h != 0 ? h : 1); /* 0 marks an empty slot */
}

/* The slot holding h, or the empty one where it belongs. */
static size_t
probe(const keyset *k, uint64_t h)
{
	size_t mask = k->nslots - 1;
	size_t i = (size_t) h & mask;

	while (k->hash[i] != 0 && k->hash[i] != h) {
		i = (i + 1) & mask;
	}
	return (i);
}

static int
grow(keyset *k)
{
	keyset next;
	size_t i, n = k->nslots != 0 ? k->nslots * 2 : KEYSET_MIN_SLOTS;

	keyset_init(&next);
	next.hash = calloc(n, sizeof(*next.hash));
	next.first = malloc(n * sizeof(*next.first));
	if (next.hash == NULL || next.first == NULL) {
		keyset_free(&next);
		return (-1);
	}
	next.nslots = n;
	for (i = 0; i < k->nslots; i++) {
		if (k->hash[i] != 0) {
			size_t j = probe(&next, k->hash[i]);

			next.hash[j] = k->hash[i];
			next.first[j] = k->first[i];
		}
	}
	next.len = k->len;
	keyset_free(k);
	*k = next;
	return (0);
}

int
keyset_add(keyset *k, uint64_t h, uint32_t index, uint32_t *first)
{
	size_t i;

	/* At most 3/4 full keeps linear probes short. */
	if ((k->len + 1) * 4 > k->nslots * 3 && grow(k) != 0) {
		return (-1);
	}
	i = probe(k, h);
	if (k->hash[i] == h) {
		*first = k->first[i];
		return (1);
	}
	k->hash[i] = h;
	k->first[i] = index;
	k->len++;
	return (0);
}

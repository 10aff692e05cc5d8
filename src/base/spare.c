/*
 * spare.c - see base/spare.h.
 */
#include "base/spare.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Each block starts with its size, padded so the caller's bytes stay
 * aligned for any type. */
typedef struct spare_head {
	alignas(max_align_t) size_t size; /* bytes after the head */
} spare_head;

static spare_head *
head_of(void *p)
{
	return (spare_head *) p - 1;
}

void *
hx_spare_alloc(hx_spare *s, size_t n)
{
	spare_head *h = atomic_exchange(&s->block, NULL);

	if (h != NULL && h->size >= n) {
		return h + 1;
	}
	if (h != NULL) {
		hx_spare_free(s, h + 1); /* too small for this one: back it goes */
	}
	if (n > SIZE_MAX - sizeof(*h) || (h = malloc(sizeof(*h) + n)) == NULL) {
		return NULL;
	}
	h->size = n;
	return h + 1;
}

void
hx_spare_free(hx_spare *s, void *p)
{
	spare_head *h, *old;

	if (p == NULL) {
		return;
	}
	h = head_of(p);
	if (!HX_SPARE_KEEPS || h->size > HX_SPARE_MAX) {
		free(h);
		return;
	}
	old = atomic_exchange(&s->block, h);
	if (old != NULL && old->size > h->size) {
		/* Keep the larger: a small call between two large ones must not
		 * cost the next large one its warm block. */
		old = atomic_exchange(&s->block, old);
	}
	free(old);
}

void
hx_spare_drain(hx_spare *s)
{
	free(atomic_exchange(&s->block, NULL));
}

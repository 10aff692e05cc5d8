/*
 * arena.c - see base/arena.h.
 */
#include "base/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Newest first: the block with no next is the first one allocated, the
 * one taken from the arena's spare when it has one. */
struct hx_arena_block {
	hx_arena_block *next;
	size_t          size, used;
	max_align_t     data[]; /* size bytes */
};

#define ALIGN_UP(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

void
hx_arena_init(hx_arena *a, size_t first_size, hx_spare *spare)
{
	a->head = NULL;
	a->first = first_size == 0            ? 1024
	    : first_size > HX_ARENA_BLOCK_MAX ? HX_ARENA_BLOCK_MAX
	                                      : first_size;
	a->spare = spare;
}

/* A block for at least n bytes: double the last one (up to
 * HX_ARENA_BLOCK_MAX), or the first size.
 * Under AddressSanitizer every piece gets a block of its own, so that
 * reading past one is still caught. */
static hx_arena_block *
arena_grow(hx_arena *a, size_t n)
{
	size_t          size = a->head == NULL                 ? a->first
	             : a->head->size >= HX_ARENA_BLOCK_MAX / 2 ? HX_ARENA_BLOCK_MAX
	                                                       : a->head->size * 2;
	hx_arena_block *b;

	if (!HX_SPARE_KEEPS) {
		size = n; /* under AddressSanitizer (base/spare.h) */
	}
	if (size < n) {
		size = n;
	}
	if (size > SIZE_MAX - sizeof(*b)) {
		return NULL;
	}
	b = a->head == NULL && a->spare != NULL ? hx_spare_alloc(a->spare, sizeof(*b) + size)
	                                        : malloc(sizeof(*b) + size);
	if (b == NULL) {
		return NULL;
	}
	b->next = a->head;
	b->size = size;
	b->used = 0;
	a->head = b;
	return b;
}

size_t
hx_arena_size_for_message(size_t len)
{
	return len < (SIZE_MAX - 1024) / 5 ? len * 5 + 1024 : SIZE_MAX;
}

void *
hx_arena_alloc(hx_arena *a, size_t n)
{
	hx_arena_block *b = a->head;
	void           *p;

	if (n > SIZE_MAX - alignof(max_align_t)) {
		return NULL;
	}
	n = ALIGN_UP(n > 0 ? n : 1);
	if (b == NULL || b->size - b->used < n) {
		if ((b = arena_grow(a, n)) == NULL) {
			return NULL;
		}
	}
	p = (char *) b->data + b->used;
	b->used += n;
	return p;
}

size_t
hx_arena_reserved(const hx_arena *a)
{
	size_t n = 0;

	for (const hx_arena_block *b = a->head; b != NULL; b = b->next) {
		n += b->size;
	}
	return n;
}

void *
hx_arena_cb_alloc(void *arena, size_t n)
{
	return hx_arena_alloc(arena, n);
}

void
hx_arena_cb_free(void *arena, void *p)
{
	(void) arena;
	(void) p;
}

void
hx_arena_free(hx_arena *a, int wipe)
{
	hx_arena_block *b = a->head, *next;

	for (; b != NULL; b = next) {
		next = b->next;
		if (wipe) {
			explicit_bzero(b->data, b->used);
		}
		if (next == NULL && a->spare != NULL) { /* the first block */
			hx_spare_free(a->spare, b);
		} else {
			free(b);
		}
	}
	a->head = NULL;
}

/*
 * arena.h - a bump allocator for memory that dies all at once: everything
 * protobuf-c unpacks from one message. Unpacking a 1,000-row Summary reply
 * took 11,000 malloc/free pairs, a third of the client's time in that call;
 * from an arena it is a pointer bump each and one free per block.
 *
 * Not thread-safe: one arena belongs to one call.
 */
#ifndef HELIOX_BASE_ARENA_H
#define HELIOX_BASE_ARENA_H

#include <stddef.h>

#include "base/spare.h"

typedef struct hx_arena_block hx_arena_block;

typedef struct hx_arena {
	hx_arena_block *head;  /* the block being filled; older ones follow */
	size_t          first; /* size of the first block, set by hx_arena_init */
	hx_spare       *spare; /* where the first block comes from, or NULL */
} hx_arena;

/* No block is larger than this unless one piece is: a 16 MiB request sized
 * at five times its length must not reserve 80 MiB up front, and the
 * last block's unused tail stays bounded. */
#define HX_ARENA_BLOCK_MAX ((size_t) 4 << 20)

/* An empty arena whose first block (allocated on first use) holds
 * first_size bytes, at most HX_ARENA_BLOCK_MAX; later blocks double up to
 * that. With a spare (borrowed), the first block is taken from it and
 * given back by hx_arena_free. */
void hx_arena_init(hx_arena *a, size_t first_size, hx_spare *spare);

/* The first block for unpacking a protobuf message of len bytes, so that
 * one block nearly always does: five times the message plus 1 KiB
 * (measured: a 1,000-row Summary reply unpacks to 4.2 times its wire
 * bytes, 5,000 short records to 4.7 times). hx_arena_init caps it. */
size_t hx_arena_size_for_message(size_t len);

/* n bytes aligned for any type, owned by the arena; NULL when out of
 * memory. */
void *hx_arena_alloc(hx_arena *a, size_t n);

/* Bytes the arena's blocks hold, used or not (for tests and accounting). */
size_t hx_arena_reserved(const hx_arena *a);

/* The arena as an allocator callback pair in protobuf-c's shape:
 * ProtobufCAllocator { hx_arena_cb_alloc, hx_arena_cb_free, &arena }.
 * Freeing a single piece does nothing; hx_arena_free frees them all. */
void *hx_arena_cb_alloc(void *arena, size_t n);
void  hx_arena_cb_free(void *arena, void *p);

/* Returns every block, the first to the spare if it came from one, the
 * rest to malloc; wiped first when wipe is nonzero (the arena held
 * secrets, such as a request's api_key). The arena is empty and reusable
 * after. */
void hx_arena_free(hx_arena *a, int wipe);

#endif /* HELIOX_BASE_ARENA_H */

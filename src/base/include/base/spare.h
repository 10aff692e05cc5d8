/*
 * spare.h - one block of memory kept between uses, for the large buffers a
 * long-lived process allocates and frees once per call.
 *
 * Why: glibc gives a large block back to the kernel when it is freed (trim
 * or munmap), and the next call's block of the same size faults its pages
 * in again, one by one. A 1,000-row Summary reply made the client take 140
 * page faults a call, about 0.3 ms of its 0.6 ms of CPU on the bench
 * machine. Keeping one block - the larger of the last two freed, up to
 * HX_SPARE_MAX bytes - makes the next call's block warm.
 *
 * Thread-safe: the slot is swapped atomically, and a caller that finds it
 * empty (another thread holds the block) simply allocates.
 */
#ifndef HELIOX_BASE_SPARE_H
#define HELIOX_BASE_SPARE_H

#include <stddef.h>

/* Blocks larger than this are freed, not kept: a rare huge reply must not
 * pin its memory for the life of the process. */
#define HX_SPARE_MAX ((size_t) 8 << 20)

/* 0 under AddressSanitizer, where every block is freed at once, so that a
 * use after free is still caught; 1 otherwise. */
#if defined(__SANITIZE_ADDRESS__)
#define HX_SPARE_KEEPS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HX_SPARE_KEEPS 0
#endif
#endif
#ifndef HX_SPARE_KEEPS
#define HX_SPARE_KEEPS 1
#endif

typedef struct hx_spare {
	void *_Atomic block; /* a kept block, or NULL */
} hx_spare;

#define HX_SPARE_INIT \
	{             \
		NULL  \
	}

/* At least n bytes, aligned for any type, uninitialised: the kept block
 * when it is large enough, else from malloc. NULL when out of memory.
 * Give it back with hx_spare_free (never free()). */
void *hx_spare_alloc(hx_spare *s, size_t n);

/* Keeps p for the next hx_spare_alloc, or frees it (see above). NULL is a
 * no-op. */
void hx_spare_free(hx_spare *s, void *p);

/* Frees the kept block (at exit, so that leak checkers see nothing). */
void hx_spare_drain(hx_spare *s);

#endif /* HELIOX_BASE_SPARE_H */

/*
 * fuzz.h - what every fuzz target and the replay driver share.
 *
 * Each target defines LLVMFuzzerTestOneInput(). Under clang it is linked with
 * libFuzzer (-fsanitize=fuzzer); in the normal build it is linked with
 * replay_main.c, which feeds it the corpus and the saved regressions.
 */
#ifndef HX_FUZZ_H
#define HX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant was broken: say which, then abort() so that libFuzzer (or the
 * sanitizer, or ctest) reports it with a stack and keeps the input. */
#define HX_FUZZ_CHECK(cond)                                                                  \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#endif /* HX_FUZZ_H */

/*
 * pathmap.h - a server's violation path for one batch ("records[12].date",
 * "duplicate of records[3]") back to the file's ("cost_data[5012].date").
 */
#ifndef HELIOX_PATHMAP_H
#define HELIOX_PATHMAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Copies `in` to `out` (outsz bytes, always NUL-terminated, cut short if need
 * be) with every "records[J]" whose J < n written as "cost_data[src[J]]".
 * Anything else, an out-of-range J included, is copied as it is.
 */
void pathmap_records(const char *in, const uint64_t *src, size_t n, char *out, size_t outsz);

#endif /* HELIOX_PATHMAP_H */

/*
 * hash.h - the one hash of record keys: 64-bit FNV-1a, and a finaliser for
 * tables that use its low bits (FNV alone spreads them poorly).
 */
#ifndef HELIOX_BASE_HASH_H
#define HELIOX_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HX_FNV1A_OFFSET 0xcbf29ce484222325ULL

/* Continues FNV-1a hash h over n bytes; start with HX_FNV1A_OFFSET. To hash
 * several strings as one key, include each one's NUL as the separator. */
uint64_t hx_fnv1a(uint64_t h, const void *p, size_t n);

/* MurmurHash3's fmix64: every input bit reaches every output bit. */
uint64_t hx_mix64(uint64_t h);

#endif /* HELIOX_BASE_HASH_H */

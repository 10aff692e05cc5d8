/*
 * uuid.h - random bytes and random (version 4) UUIDs, for request ids.
 */
#ifndef HELIOX_BASE_UUID_H
#define HELIOX_BASE_UUID_H

#include <stddef.h>
#include <stdint.h>

#define HX_UUID_TEXT 37 /* 36 characters and the NUL */

/* Fills buf from getrandom(2). Were the kernel to refuse, the bytes must
 * still be unique, not secret: the clock and a counter stand in. */
void hx_random_bytes(uint8_t *buf, size_t len);

/* A version 4 UUID in its text form, e.g. "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b". */
void hx_uuid4(char out[HX_UUID_TEXT]);

#endif /* HELIOX_BASE_UUID_H */

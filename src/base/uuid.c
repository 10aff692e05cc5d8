/*
 * uuid.c - random bytes and version 4 UUIDs.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/types.h>

#include "base/clock.h"
#include "base/uuid.h"

void
hx_random_bytes(uint8_t *buf, size_t len)
{
	static atomic_uint_fast64_t seq;
	size_t                      got = 0;
	uint64_t                    x;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n > 0) {
			got += (size_t) n;
		} else if (errno != EINTR) {
			break;
		}
	}
	x = hx_clock_us() ^ (atomic_fetch_add(&seq, 1) * 0x9e3779b97f4a7c15u);
	for (; got < len; got++, x = x * 6364136223846793005u + 1442695040888963407u) {
		buf[got] = (uint8_t) (x >> 56);
	}
}

void
hx_uuid4(char out[HX_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t           b[16];
	size_t            o = 0;

	hx_random_bytes(b, sizeof(b));
	b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10) {
			out[o++] = '-';
		}
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
}

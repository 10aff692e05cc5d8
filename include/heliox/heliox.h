/*
 * heliox.h - things every Heliox module shares: the status type and version.
 *
 * Every Heliox function that can fail returns an hx_status. The numbers are
 * gRPC's (and the wire enum heliox.ingest.v1.Code's), so a status travels from
 * the store up to the caller without a translation table.
 */
#ifndef HELIOX_HELIOX_H
#define HELIOX_HELIOX_H

#include "heliox/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HX_VERSION "0.1.0"

typedef enum hx_status {
	HX_OK = 0,
	HX_CANCELLED = 1,
	HX_UNKNOWN = 2,
	HX_INVALID_ARGUMENT = 3,
	HX_DEADLINE_EXCEEDED = 4,
	HX_NOT_FOUND = 5,
	HX_ALREADY_EXISTS = 6,
	HX_PERMISSION_DENIED = 7,
	HX_RESOURCE_EXHAUSTED = 8, /* also: out of memory */
	HX_FAILED_PRECONDITION = 9,
	HX_ABORTED = 10,
	HX_OUT_OF_RANGE = 11,
	HX_UNIMPLEMENTED = 12,
	HX_INTERNAL = 13,
	HX_UNAVAILABLE = 14,
	HX_DATA_LOSS = 15,
	HX_UNAUTHENTICATED = 16,
} hx_status;

/* The status's wire name, e.g. "INVALID_ARGUMENT"; "UNKNOWN" for a number we
 * do not know. The string is static. */
HX_API const char *hx_status_name(hx_status st);

/* Parses a wire name back ("OK" -> HX_OK). Returns HX_OK and sets *out, or
 * HX_INVALID_ARGUMENT for an unknown name. */
HX_API hx_status hx_status_parse(const char *name, hx_status *out);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_HELIOX_H */

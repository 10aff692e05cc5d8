/*
 * status.c - names of hx_status values.
 *
 * The names are the wire names of heliox.ingest.v1.Code (which are gRPC's),
 * so the CLI's --json output, the logs and the audit table all agree.
 */
#include <string.h>

#include "heliox/heliox.h"

/* Indexed by the status number: gRPC's codes are dense from 0 to 16. */
static const char *const status_names[] = {
	[HX_OK] = "OK",
	[HX_CANCELLED] = "CANCELLED",
	[HX_UNKNOWN] = "UNKNOWN",
	[HX_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	[HX_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
	[HX_NOT_FOUND] = "NOT_FOUND",
	[HX_ALREADY_EXISTS] = "ALREADY_EXISTS",
	[HX_PERMISSION_DENIED] = "PERMISSION_DENIED",
	[HX_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
	[HX_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
	[HX_ABORTED] = "ABORTED",
	[HX_OUT_OF_RANGE] = "OUT_OF_RANGE",
	[HX_UNIMPLEMENTED] = "UNIMPLEMENTED",
	[HX_INTERNAL] = "INTERNAL",
	[HX_UNAVAILABLE] = "UNAVAILABLE",
	[HX_DATA_LOSS] = "DATA_LOSS",
	[HX_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

#define NSTATUS (sizeof(status_names) / sizeof(status_names[0]))

const char *
hx_status_name(hx_status st)
{
	/* The cast also catches negative values a caller may have forced in. */
	if ((unsigned) st >= NSTATUS) {
		return "UNKNOWN";
	}
	return status_names[st];
}

hx_status
hx_status_parse(const char *name, hx_status *out)
{
	size_t i;

	if (name == NULL) {
		return HX_INVALID_ARGUMENT;
	}
	for (i = 0; i < NSTATUS; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*out = (hx_status) i;
			return HX_OK;
		}
	}
	return HX_INVALID_ARGUMENT;
}

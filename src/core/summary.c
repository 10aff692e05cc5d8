/*
 * summary.c - names of the Summary method's grouping modes.
 *
 * The names are the wire enum heliox.ingest.v1.GroupBy's; the parser also
 * takes what a person types on the command line ("gpu_type", "gpu-type").
 */
#include <stddef.h>

#include "heliox/summary.h"

static const char *const group_names[] = {
	[HX_GROUP_NONE] = "NONE",
	[HX_GROUP_PROVIDER] = "PROVIDER",
	[HX_GROUP_GPU_TYPE] = "GPU_TYPE",
	[HX_GROUP_DATE] = "DATE",
	[HX_GROUP_PROVIDER_GPU_TYPE] = "PROVIDER_GPU_TYPE",
};

#define NGROUP (sizeof(group_names) / sizeof(group_names[0]))

const char *
hx_group_by_name(hx_group_by g)
{
	if ((unsigned) g >= NGROUP) {
		return NULL;
	}
	return group_names[g];
}

/* Compares ignoring ASCII case, with '-' standing for '_'. Done by hand
 * because strcasecmp follows the locale. */
static int
name_matches(const char *typed, const char *wire)
{
	for (; *typed != '\0' && *wire != '\0'; typed++, wire++) {
		unsigned char c = (unsigned char) *typed;

		if (c == '-') {
			c = '_';
		} else if (c >= 'a' && c <= 'z') {
			c = (unsigned char) (c - 'a' + 'A');
		}
		if (c != (unsigned char) *wire) {
			return 0;
		}
	}
	return *typed == '\0' && *wire == '\0';
}

int
hx_group_by_parse(const char *name, hx_group_by *out)
{
	size_t i;

	if (name == NULL) {
		return -1;
	}
	for (i = 0; i < NGROUP; i++) {
		if (name_matches(name, group_names[i])) {
			*out = (hx_group_by) i;
			return 0;
		}
	}
	return -1;
}

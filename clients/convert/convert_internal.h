/*
 * convert_internal.h - the GPU map as the converter sees it.
 */
#ifndef HELIOX_CONVERT_INTERNAL_H
#define HELIOX_CONVERT_INTERNAL_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "heliox/convert.h"

#define HX_MAP_GPU_MAX 128

typedef struct hx_map_entry {
	char    key[HX_BILL_NAME_MAX + 1]; /* family (lower), instance type (lower), Azure size */
	int     gpu;                       /* index into gpu_names, -1 for AWS size rows */
	int64_t num, den;                  /* GPUs per instance; den 0 = not given */
} hx_map_entry;

typedef struct hx_map_sku {
	regex_t re;
	int     gpu;
} hx_map_sku;

struct hx_gpu_map {
	char          version[HX_BILL_NAME_MAX + 1];
	char          gpu_names[HX_MAP_GPU_MAX][HX_BILL_NAME_MAX + 1];
	int           n_gpu;
	hx_map_entry *fam; /* aws families */
	size_t        n_fam;
	hx_map_entry *size; /* aws instance types -> gpus */
	size_t        n_size;
	hx_map_entry *vm; /* azure VM sizes -> gpu and gpus */
	size_t        n_vm;
	hx_map_sku   *sku; /* gcp GPU SKU description patterns */
	size_t        n_sku;
	int64_t       den_lcm; /* lcm of all GPU-count denominators */
};

const hx_map_entry *hx_map_find(const hx_map_entry *tab, size_t n, const char *key, size_t len);

#endif

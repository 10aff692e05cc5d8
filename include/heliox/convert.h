/*
 * convert.h - billing exports (FOCUS, AWS CUR) to GPU daily cost records.
 *
 * SERVICE.md section 8. One streaming pass over the files of one export
 * (FOCUS 1.0-1.3, AWS CUR legacy `lineItem/...` and 2.0 `line_item_...`, told
 * apart by the header; gzip recognised by its magic bytes) aggregates the GPU
 * lines to (date, provider, gpu_type) with exact decimal cost and GPU-hours,
 * and yields the records, one replace window per provider and a report.
 *
 * No network, no database. The GPU map is passed in explicitly (parsed from a
 * buffer or loaded from a path), so the rules hold no hidden state. Money and
 * hours are exact decimals all the way (no binary floating point).
 *
 * Typical use:
 *
 *   hx_gpu_map *map; hx_violations v; hx_violations_init(&v, 100);
 *   hx_gpu_map_load("share/heliox/gpu_map_v1.csv", &map, &v);
 *   hx_convert *c = hx_convert_new(map, HX_BILL_AUTO, &v);
 *   hx_convert_add_file(c, "cur-2024-09-1.csv.gz", NULL);
 *   hx_convert_add_file(c, "cur-2024-09-2.csv.gz", NULL);
 *   if (hx_convert_finish(c) == HX_OK) { ... hx_convert_records(c, &n) ... }
 *   hx_convert_free(c); hx_gpu_map_free(map);
 */
#ifndef HELIOX_CONVERT_H
#define HELIOX_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "heliox/api.h"
#include "heliox/heliox.h"
#include "heliox/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the GPU map ------------------------------------------------------- */

typedef struct hx_gpu_map hx_gpu_map;

/*
 * Parses a GPU map file (data/gpu_map_v1.csv describes the format: a
 * `# mapping_version=NAME` first line, then CSV provider,kind,key,gpu_type,
 * gpus,source). `name` is used in violation fields ("NAME:LINE.COLUMN").
 * Returns HX_OK, HX_INVALID_ARGUMENT (violations added) or
 * HX_RESOURCE_EXHAUSTED. No I/O.
 */
HX_API hx_status hx_gpu_map_parse(const char *name, const char *text, size_t len, hx_gpu_map **out,
                                  hx_violations *viol);
/* Reads `path` and parses it; an unreadable file is a violation on `path`. */
HX_API hx_status   hx_gpu_map_load(const char *path, hx_gpu_map **out, hx_violations *viol);
HX_API const char *hx_gpu_map_version(const hx_gpu_map *m); /* e.g. "gpu-map-v1" */
HX_API void        hx_gpu_map_free(hx_gpu_map *m);

/* ---- conversion ----------------------------------------------------------- */

typedef enum hx_bill_format {
	HX_BILL_AUTO = 0, /* told apart by the header */
	HX_BILL_FOCUS,
	HX_BILL_AWS_CUR, /* legacy or 2.0, told apart by the header */
} hx_bill_format;

/* Why a data line was not counted (the report of section 8). */
typedef enum hx_bill_excl {
	HX_EXCL_NOT_COMPUTE = 0,   /* CUR: line_item_product_code is not AmazonEC2 (A1) */
	HX_EXCL_CHARGE_CATEGORY,   /* FOCUS: not Usage, or ChargeClass other than Correction (F1) */
	HX_EXCL_LINE_TYPE,         /* CUR: line type not counted (A2, A5) */
	HX_EXCL_UNUSED_COMMITMENT, /* FOCUS: CommitmentDiscountStatus = Unused (F2) */
	HX_EXCL_NOT_GPU,           /* no instance found, or one the GPU map does not know (R4) */
	HX_EXCL__COUNT
} hx_bill_excl;

/* "not_compute", "charge_category", "line_type", "unused_commitment",
 * "not_gpu_instance". */
HX_API const char *hx_bill_excl_name(hx_bill_excl e);

#define HX_BILL_NAME_MAX 64
#define HX_BILL_NUM_MAX  48 /* decimal text incl. NUL */

typedef struct hx_bill_record {
	char     date[HX_DATE_LEN + 1];
	char     provider[HX_BILL_NAME_MAX + 1];
	char     gpu_type[HX_BILL_NAME_MAX + 1];
	char     cost_usd[HX_BILL_NUM_MAX];  /* exact, rounded once to 6 places (R1) */
	char     gpu_hours[HX_BILL_NUM_MAX]; /* "" when unknown (G4) */
	uint64_t lines;                      /* lines counted into it */
} hx_bill_record;

typedef struct hx_bill_window {
	char provider[HX_BILL_NAME_MAX + 1];
	char from_date[HX_DATE_LEN + 1];
	char to_date[HX_DATE_LEN + 1];
} hx_bill_window;

/* An instance family / VM size / SKU that looks like an accelerator but is
 * not in the map: the map may need an entry. */
typedef struct hx_bill_unknown {
	char     provider[HX_BILL_NAME_MAX + 1];
	char     family[HX_BILL_NAME_MAX + 1];
	uint64_t lines;
	char     cost_usd[HX_BILL_NUM_MAX];
} hx_bill_unknown;

/* A group not sent because its rounded total was <= 0 (R1). */
typedef struct hx_bill_dropped {
	char date[HX_DATE_LEN + 1];
	char provider[HX_BILL_NAME_MAX + 1];
	char gpu_type[HX_BILL_NAME_MAX + 1];
	char cost_usd[HX_BILL_NUM_MAX];
} hx_bill_dropped;

typedef struct hx_bill_report {
	uint64_t               files;
	uint64_t               bytes_read; /* as stored (compressed for .gz) */
	uint64_t               lines_read; /* data lines, header excluded */
	uint64_t               lines_counted;
	uint64_t               excluded[HX_EXCL__COUNT];
	const hx_bill_unknown *unknown;
	size_t                 n_unknown;
	const hx_bill_dropped *dropped;
	size_t                 n_dropped;
} hx_bill_report;

typedef struct hx_convert hx_convert;

/* Called now and then while reading: bytes of the current file read so far
 * (compressed for .gz), its size (0 if unknown), data lines so far. */
typedef void (*hx_convert_progress_fn)(void *arg, const char *name, uint64_t bytes, uint64_t total,
                                       uint64_t lines);

/*
 * A converter for one export. `map` must outlive it. Violations go to `viol`
 * (the caller's, with the caller's cap). NULL when out of memory.
 */
HX_API hx_convert *hx_convert_new(const hx_gpu_map *map, hx_bill_format fmt, hx_violations *viol);
HX_API void        hx_convert_set_progress(hx_convert *c, hx_convert_progress_fn fn, void *arg);
/* Threads for one plain file of 32 MiB or more: 1, or 2 (the default): the
 * second reads the second half; the result is the same either way. */
HX_API void hx_convert_set_threads(hx_convert *c, int n);

/*
 * Reads one file of the export (plain or gzip, by magic bytes). `name` is the
 * FILE of violation fields (NULL = path). Problems are violations; the
 * return is HX_OK unless memory ran out (HX_RESOURCE_EXHAUSTED).
 */
HX_API hx_status hx_convert_add_file(hx_convert *c, const char *path, const char *name);

/* The same for bytes the caller has (decompressed CSV): begin, feed any
 * number of chunks, end. No I/O. */
HX_API hx_status hx_convert_begin(hx_convert *c, const char *name);
HX_API hx_status hx_convert_feed(hx_convert *c, const void *buf, size_t len);
HX_API hx_status hx_convert_end(hx_convert *c);

/*
 * Ends the export: rounds the groups, builds the records (sorted by date,
 * provider, gpu_type), the windows (by provider) and the report. Returns
 * HX_OK, or HX_INVALID_ARGUMENT when any violation was found in this export
 * (then nothing should be sent), or HX_RESOURCE_EXHAUSTED.
 */
HX_API hx_status hx_convert_finish(hx_convert *c);

HX_API const hx_bill_record *hx_convert_records(const hx_convert *c, size_t *n);
HX_API const hx_bill_window *hx_convert_windows(const hx_convert *c, size_t *n);
HX_API const hx_bill_report *hx_convert_report(const hx_convert *c);
/* "focus-1.0" .. "focus-1.3", "aws-cur-legacy", "aws-cur-2.0"; "" before a header. */
HX_API const char *hx_convert_format_name(const hx_convert *c);
HX_API void        hx_convert_free(hx_convert *c);

/* ---- exact decimal helpers (exposed for tests) ----------------------------- */

/*
 * Parses a number as bills write it (R7: plain decimal or E-notation, any
 * number of digits) and rounds it once, half away from zero, to 6 places:
 * writes the result as text to out. Returns NULL or why the text is not
 * a number ("is not a number", "has non-zero digits beyond 10^-36", ...).
 */
HX_API const char *hx_bill_decimal_round6(const char *s, size_t len, char out[HX_BILL_NUM_MAX]);

/*
 * Parses a date-time as bills write it (R8) and writes its UTC calendar date
 * YYYY-MM-DD to out. Returns NULL or why it is unreadable.
 */
HX_API const char *hx_bill_datetime_date(const char *s, size_t len, char out[HX_DATE_LEN + 1]);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_CONVERT_H */

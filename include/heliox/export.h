/*
 * export.h - the cost export JSON document (contract section 4).
 *
 *   { "export_id": "...", "currency": "USD",
 *     "cost_data": [ {"date": "2026-01-01", "provider": "AWS",
 *                     "gpu_type": "A100", "cost_usd": 1245.67}, ... ] }
 *
 * Parsed with cJSON. No I/O: the caller hands over bytes in memory.
 */
#ifndef HELIOX_EXPORT_H
#define HELIOX_EXPORT_H

#include <stddef.h>

#include "heliox/heliox.h"
#include "heliox/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parses the export document `json` (`len` bytes, need not be NUL-terminated)
 * and feeds every element of cost_data through hx_batch_add(b, ..., "cost_data",
 * i, viol). Document-level problems are violations too: "$" (not valid JSON,
 * not an object, contains a NUL byte), "cost_data" (missing, not an array,
 * empty), "currency" (present but not "USD").
 *
 * Returns HX_OK when the document was read and every record was valid;
 * HX_INVALID_ARGUMENT when any violation was found (records that were valid
 * are still in `b`, for skip_invalid); HX_RESOURCE_EXHAUSTED when memory ran
 * out. b->received is the number of cost_data elements (0 when the document
 * itself is unusable).
 */
hx_status hx_export_parse(const char *json, size_t len, hx_batch *b, hx_violations *viol);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_EXPORT_H */

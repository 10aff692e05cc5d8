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
#include "heliox/batch.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parses the export document `json` (`len` bytes, need not be NUL-terminated)
 * and feeds every element of cost_data through hx_batch_add(b, ..., "cost_data",
 * i, viol). Document-level problems are violations too: "$" (not valid JSON,
 * not an object, contains a NUL byte), "cost_data" (missing, not an array,
 * empty - unless the document has replace windows), "currency" (present but
 * not "USD"). v2: "replace" windows go to b->windows, "provenance" to
 * b->prov, and a record outside its provider's window is a violation on
 * "cost_data[i].date".
 *
 * Returns HX_OK when the document was read and every record was valid;
 * HX_INVALID_ARGUMENT when any violation was found (records that were valid
 * are still in `b`, for skip_invalid); HX_RESOURCE_EXHAUSTED when memory ran
 * out. b->received is the number of cost_data elements (0 when the document
 * itself is unusable).
 */
hx_status hx_export_parse(const char *json, size_t len, hx_batch *b, hx_violations *viol);

/*
 * For readers that stream a document too big to parse whole (the CLI's
 * `ingest FILE`) and find its pieces themselves. Each applies exactly the
 * rules hx_export_parse applies to the same piece.
 *
 * hx_export_parse_record: `json` is the text of the element at position
 * `index` of cost_data. Like one step of hx_export_parse: an object goes
 * through hx_batch_add(b, ..., "cost_data", index, viol); anything else is
 * the violation "cost_data[index]" "must be an object"; text that is not one
 * JSON value (or holds a NUL) is the violation "$". b->received counts the
 * element in every case.
 *
 * hx_export_check_currency: `json` is the text of the top-level "currency"
 * value; adds the violation "currency" unless it is "USD" or null.
 *
 * Both return HX_OK when nothing was wrong, HX_INVALID_ARGUMENT when a
 * violation was added, HX_RESOURCE_EXHAUSTED when memory ran out.
 */
hx_status hx_export_parse_record(const char *json, size_t len, size_t index, hx_batch *b,
                                 hx_violations *viol);
hx_status hx_export_check_currency(const char *json, size_t len, hx_violations *viol);

/*
 * v2: `json` is the text of the top-level "replace" value (windows go into
 * b->windows through hx_batch_add_window, violations "replace[i].field") or
 * of "provenance" (into b->prov, violations "provenance.field"). Same
 * returns as above. The caller checks records against the windows with
 * hx_batch_check_windows() once it has them all.
 */
hx_status hx_export_parse_replace(const char *json, size_t len, hx_batch *b, hx_violations *viol);
hx_status hx_export_parse_provenance(const char *json, size_t len, hx_batch *b,
                                     hx_violations *viol);

#ifdef __cplusplus
}
#endif
#endif /* HELIOX_EXPORT_H */

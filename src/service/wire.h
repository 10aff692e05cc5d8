/*
 * wire.h - checks on a request's raw protobuf bytes that decoding cannot
 * make. Private to hx_service.
 */
#ifndef HELIOX_WIRE_H
#define HELIOX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "heliox/record.h"

/*
 * Adds a violation for every string field of the RpcRequest in req[0..len)
 * that holds a NUL byte, named by its path in the contract's form
 * ("records[3].provider"). req must already have decoded as an RpcRequest.
 */
void hx_wire_nul_check(hx_violations *v, const uint8_t *req, size_t len);

#endif /* HELIOX_WIRE_H */

#!/usr/bin/python3
"""outside_client.py - the 28-record ingest latency as a client that is not
ours sees it: Python's protobuf and nng's req0 socket through ctypes on
Debian's libnng.so.1 (tests/python/hxharness.py), nothing of the project's C.

    bench/outside_client.py --url URL [--calls N] [--json-key KEY]

The API key comes from ADMIN_API_KEY. Like heliox-bench's latency phase, it
sends the same 28 keys again and again, alternating two cost sets, so every
call updates 28 rows and commits (fsync). Each request is built and
serialized before the clock starts: the figure is the round trip (send,
server, reply), not Python's protobuf. Prints a table line per figure and a
machine-readable "figure" line, like heliox-bench. Exits non-zero only when a
call fails or a count is wrong, never because a figure is slow.
"""

import argparse
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import hxharness as hx  # noqa: E402

pb = hx.pb


def records(set_no):
    """28 records: 14 days x 2 GPU types; set 1 costs one cent more."""
    out = []
    for day in range(14):
        for g, base in (("a100", 1200), ("h100", 2400)):
            cents = base * 100 + day * 7 + set_no
            out.append(pb.CostRecord(date=f"2031-01-{day + 1:02d}", provider="outside-bench",
                                     gpu_type=g, cost_usd=f"{cents // 100}.{cents % 100:02d}"))
    return out


def percentile(sorted_v, p):
    rank = max(1, min(len(sorted_v), int(p / 100.0 * len(sorted_v) + 0.999999)))
    return sorted_v[rank - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--timeout-ms", type=int, default=30000)
    a = ap.parse_args()
    key = os.environ.get("ADMIN_API_KEY", "").split(",")[0]
    if not key:
        print("outside_client.py: ADMIN_API_KEY is not set", file=sys.stderr)
        return 2
    sets = [pb.RecordBatch(records=records(0)), pb.RecordBatch(records=records(1))]
    nonce = uuid.uuid4().hex[:12]
    lat = []
    with hx.NngClient(a.url, timeout_ms=a.timeout_ms) as sock:
        for i in range(a.calls + 1):
            req = pb.RpcRequest(api_key=key, request_id=f"outside-{nonce}-{i}",
                                timeout_ms=a.timeout_ms,
                                ingest=pb.IngestRequest(records=sets[i % 2]))
            data = req.SerializeToString()
            t0 = time.perf_counter_ns()
            reply = sock.request(data)
            t1 = time.perf_counter_ns()
            resp = pb.RpcResponse()
            resp.ParseFromString(reply)
            r = resp.ingest
            if resp.status.code != 0 or r.received != 28 or (i > 0 and r.updated != 28):
                print(f"outside_client.py: call {i}: {hx.describe(resp)}", file=sys.stderr)
                return 1
            if i > 0:  # call 0 may insert, and warms the connection
                lat.append((t1 - t0) / 1e6)
    lat.sort()
    figs = [("outside_ingest28_p50_ms", "outside client: ingest 28 records p50", percentile(lat, 50)),
            ("outside_ingest28_p99_ms", "outside client: ingest 28 records p99", percentile(lat, 99))]
    for _, label, v in figs:
        print(f"  {label:<44} {v:10.3f} ms")
    for k, _, v in figs:
        print(f"figure {k}={v:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

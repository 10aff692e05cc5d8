#!/usr/bin/python3
"""make_corpus.py - (re)writes the seed corpus under tests/fuzz/corpus/.

    /usr/bin/python3 tests/fuzz/make_corpus.py

fuzz_export gets export documents, good and bad; fuzz_money decimal texts
and 8-byte doubles; fuzz_rpc serialized RpcRequests carrying the fuzz key
(FUZZ_KEY, as in fuzz_rpc.c) so that the fuzzer starts past auth, plus a few
refused and undecodable ones. The protobuf code is generated with
protoc --python_out into a temporary directory, never committed.
Output is deterministic: running it twice changes nothing, and files it did
not write are left alone.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
FUZZ_KEY = "fuzz-key-0123456789abcdef"


def rec(date="2026-01-01", provider="AWS", gpu="A100", cost=1245.67):
    return {"date": date, "provider": provider, "gpu_type": gpu, "cost_usd": cost}


def doc(records, **top):
    d = {"export_id": "seed", "currency": "USD"}
    d.update(top)
    d["cost_data"] = records
    return json.dumps(d, ensure_ascii=False).encode()


GOOD = doc([rec(), rec(gpu="H100", cost="2189.45"),
            rec("2026-01-02", " Lambda\t", "a100", "1000"),
            rec("2024-02-29", "gcp", "L4", 0.000001)])
BAD = doc([rec(date="2026-02-30"), rec(date="2100-02-29"), rec(date="0000-01-01"),
           rec(date="2026-1-01"), rec(provider="  "), rec(provider=""),
           rec(provider="x" * 65), rec(gpu="A\u0001"), rec(gpu="\u0085x"),
           rec(cost=0), rec(cost=-1), rec(cost=1e12), rec(cost="1.1234567"),
           rec(cost="12.50000000"), rec(cost=True), rec(cost=None), rec(cost={}),
           rec(cost="1e3"), rec(cost=""), {"date": "2026-01-03"}, 5, [],
           rec(), rec()])  # the last two: a duplicate key

EXPORTS = {
    "good": GOOD,
    "bad_records": BAD,
    "names_utf8": doc([rec(provider="Ünïcode ☁", gpu="H100 80GB"),
                       rec(provider="\U0001F600", gpu="x" * 64)]),
    "numbers": b'{"cost_data":[{"date":"2026-01-01","provider":"a","gpu_type":"b","cost_usd":1e3},'
               b'{"date":"2026-01-02","provider":"a","gpu_type":"b","cost_usd":5e-7},'
               b'{"date":"2026-01-03","provider":"a","gpu_type":"b","cost_usd":1245.6700000001},'
               b'{"date":"2026-01-04","provider":"a","gpu_type":"b","cost_usd":0.1},'
               b'{"date":"2026-01-05","provider":"a","gpu_type":"b","cost_usd":999999999999.99},'
               b'{"date":"2026-01-06","provider":"a","gpu_type":"b","cost_usd":1e400}]}',
    "escapes": b'{"cost_data":[{"date":"2026-01-01","provider":"\\u0041WS","gpu_type":"\\ud83d\\ude00",'
               b'"cost_usd":"\\u0031"},{"date":"2026-01-02","provider":"a\\\\u0000","gpu_type":"b",'
               b'"cost_usd":1}]}',
    "currency_eur": doc([rec()], currency="EUR"),
    "currency_null": doc([rec()], currency=None),
    "cost_data_missing": b'{"currency":"USD"}',
    "cost_data_empty": b'{"cost_data":[]}',
    "cost_data_object": b'{"cost_data":{"date":"2026-01-01"}}',
    "not_object": b'[{"cost_data":[]}]',
    "not_json": b'{"cost_data": [',
    "trailing": b'{"cost_data":[]} x',
    "nul_byte": b'{"cost_data":[{"provider":"a\x00b"}]}',
    "nul_escape": b'{"cost_data":[{"provider":"a\\u0000b"}]}',
    "bad_utf8": b'{"cost_data":[{"date":"2026-01-01","provider":"\xc0\xaf","gpu_type":"\xed\xa0\x80",'
                b'"cost_usd":"1"}]}',
}

MONEY_TEXT = ["1245.67", "0.000001", "-12", "+5", "007.50", "999999999999.999999",
              "1000000000000", "1.50000000", "1.1234567", "-0", "0.10", "1e3", ".5",
              "5.", "", " 1", "18446744073709551616", "9" * 40 + "." + "9" * 40,
              # num/den for hx_money_div_text; the last byte % 8 is the places
              "198.320000/47.500004", "0.00005/1.4", "1/0.000003", "5/0.000",
              "-1/3.4", "12344999999999999999/100000000000000000000"]
MONEY_DOUBLES = [1245.67, 0.1, 5e-7, 1e21, 9.99e20, 1e-300, 5e-324, -2189.45, 123456789012345.0,
                 float("nan"), float("inf"), -0.0]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rpc_seeds(pb):
    def req(key=FUZZ_KEY, rid="seed-1", **kw):
        r = pb.RpcRequest(api_key=key, request_id=rid, **kw)
        return r

    def ingest(**kw):
        return req(ingest=pb.IngestRequest(**kw))

    def batch(rows):
        return pb.RecordBatch(records=[pb.CostRecord(date=a, provider=b, gpu_type=c, cost_usd=d)
                                       for a, b, c, d in rows])

    good_rows = [("2026-01-01", "AWS", "A100", "1245.67"), ("2026-01-01", "aws", "H100", "2189.45")]
    bad_rows = [("2026-02-30", "", "A100", "-1"), ("2026-01-01", "AWS", "A100", "1e3"),
                ("2026-01-01", "x" * 65, "\x01", "1.1234567"), ("2026-01-01", "AWS", "A100", "1"),
                ("2026-01-01", "aws", "a100", "1")]
    seeds = {
        "ingest_json_good": ingest(export_json=GOOD),
        "ingest_json_good_dry": ingest(export_json=GOOD, dry_run=True),
        "ingest_json_bad": ingest(export_json=BAD),
        "ingest_json_bad_skip": ingest(export_json=BAD, skip_invalid=True),
        "ingest_json_garbage": ingest(export_json=b'{"cost_data": ['),
        "ingest_records_good": ingest(records=batch(good_rows)),
        "ingest_records_bad": ingest(records=batch(bad_rows), skip_invalid=True),
        "ingest_records_empty": ingest(records=pb.RecordBatch()),
        "ingest_mock": ingest(mock=True),
        "ingest_mock_dry": ingest(mock=True, dry_run=True),
        "ingest_no_source": ingest(dry_run=True),
        "health": req(health=pb.HealthRequest(), timeout_ms=1000),
        "summary": req(summary=pb.SummaryRequest(from_date="2026-01-01", to_date="2026-01-14",
                                                 provider="AWS", gpu_type="a100", group_by=4)),
        "summary_bad": req(summary=pb.SummaryRequest(from_date="2026-13-01", provider=" ",
                                                     group_by=9)),
        "no_method": req(),
        "request_id_empty": req(rid="", health=pb.HealthRequest()),
        "request_id_long": req(rid="r" * 200, health=pb.HealthRequest()),
        "request_id_space": req(rid="a b\t", health=pb.HealthRequest()),
        "key_missing": req(key="", health=pb.HealthRequest()),
        "key_wrong": req(key="not-the-key-0123456789", ingest=pb.IngestRequest(mock=True)),
    }
    out = {k: v.SerializeToString(deterministic=True) for k, v in seeds.items()}
    # A NUL inside a string field, which protobuf-c would silently cut short.
    nul = batch([("2026-01-01", "aw\x00s", "a100", "1")])
    out["ingest_records_nul"] = ingest(records=nul).SerializeToString(deterministic=True)
    out["empty"] = b""
    out["garbage"] = bytes(range(0, 256, 7))
    out["truncated"] = out["ingest_json_good"][:-5]
    return out


def main():
    # Only this script's own seeds are (re)written: the corpus also holds
    # inputs a fuzzer found (fuzz_rpc's hash-named ones), which ctest replays
    # and which must survive a rerun. A seed renamed here leaves its old file
    # behind: delete that by hand.
    with open(os.path.join(ROOT, "data", "mock_cost_export.json"), "rb") as f:
        write("fuzz_export", "mock", f.read())
    for name, data in EXPORTS.items():
        write("fuzz_export", name, data)
    for i, s in enumerate(MONEY_TEXT):
        write("fuzz_money", "text_%02d" % i, s.encode())
    for i, d in enumerate(MONEY_DOUBLES):
        write("fuzz_money", "double_%02d" % i, struct.pack("<d", d))

    with tempfile.TemporaryDirectory() as tmp:
        proto = os.path.join(ROOT, "proto")
        subprocess.run(["protoc", "--python_out=" + tmp, "-I" + proto,
                        os.path.join(proto, "heliox", "ingest", "v1", "ingest.proto")], check=True)
        sys.path.insert(0, tmp)
        from heliox.ingest.v1 import ingest_pb2 as pb  # noqa: E402
        for name, data in rpc_seeds(pb).items():
            write("fuzz_rpc", name, data)
    for t in ("fuzz_export", "fuzz_money", "fuzz_rpc"):
        print("%s: %d seeds" % (t, len(os.listdir(os.path.join(CORPUS, t)))))


if __name__ == "__main__":
    main()

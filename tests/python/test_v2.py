"""Contract v2 on the wire and in the store (SERVICE.md sections 3-6, issue 9):
CostRecord.gpu_hours, IngestRequest.replace and provenance,
IngestResult.deleted, SummaryRow.gpu_hours and usd_per_gpu_hour, every new
violation path, and migration 2 on a database a v1 server created and filled.

Over real nng and a real Postgres, like every module here. Expected figures
are worked out by hand in the comments next to them.
"""

import json
import os
import subprocess
from decimal import Decimal

import pytest

import hxharness as hx
from hxharness import pb


def rec(d, p, g, c, h=None):
    r = pb.CostRecord(date=d, provider=p, gpu_type=g, cost_usd=c)
    if h is not None:
        r.gpu_hours = h
    return r


def win(p, f, t):
    return pb.ReplaceWindow(provider=p, from_date=f, to_date=t)


def stored(pg):
    """{(date, provider, gpu_type): (cost text, gpu_hours text or None)}"""
    return {(d, p, g): (c, h) for d, p, g, c, h in pg.psql(
        "SELECT date::text, provider, gpu_type, cost_usd::text, gpu_hours::text "
        "FROM cost_snapshots")}


def xmins(pg):
    """Row versions: a row that was not written keeps its xmin."""
    return {(d, p, g): x for d, p, g, x in pg.psql(
        "SELECT date::text, provider, gpu_type, xmin::text FROM cost_snapshots")}


def last_run(pg):
    runs = pg.runs_json()
    assert runs, "no ingestion_runs row"
    return max(runs, key=lambda r: r["id"])


def ingest(server, request_id=None, **kw):
    return server.call(request_id=request_id or hx.rid("v2"), ingest=pb.IngestRequest(**kw))


def records(*recs):
    return pb.RecordBatch(records=list(recs))


def assert_rejected(pg, server, resp, field, desc_part):
    """INVALID_ARGUMENT naming `field`, and nothing written."""
    hx.assert_code(resp, "INVALID_ARGUMENT")
    found = [d for f, d in hx.violations(resp) if f == field]
    assert found, f"no violation on {field}: {hx.describe(resp)}"
    assert any(desc_part in d for d in found), f"{field}: {found} lacks {desc_part!r}"
    assert resp.ingest.inserted == resp.ingest.updated == resp.ingest.unchanged == 0
    assert resp.ingest.deleted == 0


# ------------------------------------------------------------ gpu_hours --

def test_gpu_hours_round_trip_and_unknown(clean, server):
    resp = ingest(server, records=records(
        rec("2024-09-01", "AWS", "H100", "98.32", "24"),
        rec("2024-09-01", "aws", "a100", "40.96", "12.500001"),
        rec("2024-09-01", "aws", "l4", "5", ""),            # empty: unknown
        rec("2024-09-01", "aws", "t4", "1", " 0 ")))         # zero is a value
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=4, inserted=4, updated=0, unchanged=0, failed=0)
    assert resp.ingest.deleted == 0
    assert stored(clean) == {
        ("2024-09-01", "aws", "h100"): ("98.320000", "24.000000"),
        ("2024-09-01", "aws", "a100"): ("40.960000", "12.500001"),
        ("2024-09-01", "aws", "l4"): ("5.000000", None),
        ("2024-09-01", "aws", "t4"): ("1.000000", "0.000000"),
    }


def test_gpu_hours_in_json_number_or_string(clean, server):
    doc = {"cost_data": [
        {"date": "2024-09-02", "provider": "gcp", "gpu_type": "l4", "cost_usd": 7.2, "gpu_hours": 9.6},
        {"date": "2024-09-02", "provider": "gcp", "gpu_type": "a100", "cost_usd": "30", "gpu_hours": "8.25"},
        {"date": "2024-09-02", "provider": "gcp", "gpu_type": "t4", "cost_usd": "1", "gpu_hours": None},
    ]}
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    assert stored(clean) == {
        ("2024-09-02", "gcp", "l4"): ("7.200000", "9.600000"),
        ("2024-09-02", "gcp", "a100"): ("30.000000", "8.250000"),
        ("2024-09-02", "gcp", "t4"): ("1.000000", None),
    }


def test_unchanged_means_cost_and_gpu_hours(clean, server):
    base = [rec("2024-09-03", "aws", "h100", "10", "1.5"),
            rec("2024-09-03", "aws", "a100", "10", None),
            rec("2024-09-03", "aws", "l4", "10", "2"),
            rec("2024-09-03", "aws", "t4", "10", "3"),
            rec("2024-09-03", "aws", "v100", "10", None)]
    hx.assert_counts(ingest(server, records=records(*base)), inserted=5)
    before = xmins(clean)
    again = [rec("2024-09-03", "aws", "h100", "10.000", "1.50"),   # same values: unchanged
             rec("2024-09-03", "aws", "a100", "10", ""),           # unknown == unknown
             rec("2024-09-03", "aws", "l4", "10", "2.000001"),     # hours changed
             rec("2024-09-03", "aws", "t4", "10", ""),             # known -> unknown
             rec("2024-09-03", "aws", "v100", "10", "4")]          # unknown -> known
    resp = ingest(server, records=records(*again))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=5, inserted=0, updated=3, unchanged=2, failed=0)
    after = xmins(clean)
    assert after[("2024-09-03", "aws", "h100")] == before[("2024-09-03", "aws", "h100")]
    assert after[("2024-09-03", "aws", "a100")] == before[("2024-09-03", "aws", "a100")]
    assert after[("2024-09-03", "aws", "l4")] != before[("2024-09-03", "aws", "l4")]
    s = stored(clean)
    assert s[("2024-09-03", "aws", "l4")] == ("10.000000", "2.000001")
    assert s[("2024-09-03", "aws", "t4")] == ("10.000000", None)
    assert s[("2024-09-03", "aws", "v100")] == ("10.000000", "4.000000")


@pytest.mark.parametrize("hours,desc", [
    ("-1", "must be 0 or greater"),
    ("-0.0000001", "must be 0 or greater"),
    ("1.0000001", "has more than 6 fractional digits"),
    ("1000000000000", "must be less than 1000000000000"),
    ("1e3", "must be a decimal number"),
    ("abc", "must be a decimal number"),
])
def test_gpu_hours_violations_records(clean, server, hours, desc):
    resp = ingest(server, records=records(rec("2024-09-01", "aws", "ok", "1", "1"),
                                          rec("2024-09-01", "aws", "h100", "1", hours)))
    assert_rejected(clean, server, resp, "records[1].gpu_hours", desc)
    assert clean.count() == 0


def test_gpu_hours_violations_json(clean, server):
    doc = {"cost_data": [
        {"date": "2024-09-01", "provider": "aws", "gpu_type": "a", "cost_usd": 1, "gpu_hours": True},
        {"date": "2024-09-01", "provider": "aws", "gpu_type": "b", "cost_usd": 1, "gpu_hours": -2},
        {"date": "2024-09-01", "provider": "aws", "gpu_type": "c", "cost_usd": 1, "gpu_hours": [1]},
    ]}
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert hx.violations(resp) == [
        ("cost_data[0].gpu_hours", "must be a number or a decimal string"),
        ("cost_data[1].gpu_hours", "must be 0 or greater"),
        ("cost_data[2].gpu_hours", "must be a number or a decimal string"),
    ]
    assert clean.count() == 0


# ------------------------------------------------------ restated data --

PRELIM = [
    # AWS, September 2024, preliminary: days 1-3, two GPU types
    rec("2024-09-01", "aws", "h100", "100.00", "10"),
    rec("2024-09-01", "aws", "a100", "50.00", "12"),
    rec("2024-09-02", "aws", "h100", "101.00", "10"),
    rec("2024-09-02", "aws", "a100", "51.00", "12"),
    rec("2024-09-03", "aws", "h100", "102.00", "10"),
    rec("2024-09-03", "aws", "a100", "52.00", "12"),
]
OTHERS = [
    # must never be touched by AWS's September window
    rec("2024-08-31", "aws", "h100", "99.00", "10"),      # AWS, outside the window
    rec("2024-10-01", "aws", "h100", "99.50", "10"),      # AWS, outside the window
    rec("2024-09-02", "azure", "a100", "70.00", "8"),     # other provider, inside the dates
]
FINAL = [
    # the final September bill: (09-02, a100) is gone (restated to nothing),
    # 09-01 h100 unchanged, 09-01 a100 and 09-03 both changed, 09-04 new
    rec("2024-09-01", "AWS", "h100", "100.00", "10"),
    rec("2024-09-01", "aws", "a100", "49.00", "12"),
    rec("2024-09-02", "aws", "h100", "101.00", "10"),
    rec("2024-09-03", "aws", "h100", "102.50", "10"),
    rec("2024-09-03", "aws", "a100", "52.00", "11.5"),
    rec("2024-09-04", "aws", "h100", "103.00", "10"),
]


def test_restatement_replaces_the_month(clean, server):
    hx.assert_counts(ingest(server, records=records(*OTHERS)), inserted=3)
    resp = ingest(server, records=records(*PRELIM), replace=[win("aws", "2024-09-01", "2024-09-30")])
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=6, inserted=6, updated=0, unchanged=0, failed=0)
    assert resp.ingest.deleted == 0
    others_before = {k: v for k, v in xmins(clean).items() if k[0] in ("2024-08-31", "2024-10-01") or k[1] == "azure"}

    rid = hx.rid("final")
    resp = server.call(request_id=rid, ingest=pb.IngestRequest(
        records=records(*FINAL), replace=[win(" AWS ", "2024-09-01", "2024-09-30")],
        provenance=pb.Provenance(format="focus-1.0", name="aws-2024-09-final.csv.gz",
                                 mapping_version="gpu-map-v1")))
    hx.assert_code(resp, "OK")
    # 6 received: 09-01 h100 and 09-02 h100 unchanged (2); 09-01 a100,
    # 09-03 h100, 09-03 a100 updated (3); 09-04 h100 inserted (1);
    # 09-02 a100 deleted (1, not part of received).
    hx.assert_counts(resp, received=6, inserted=1, updated=3, unchanged=2, failed=0)
    assert resp.ingest.deleted == 1
    s = stored(clean)
    assert ("2024-09-02", "aws", "a100") not in s
    assert s[("2024-09-01", "aws", "a100")] == ("49.000000", "12.000000")
    assert s[("2024-09-03", "aws", "a100")] == ("52.000000", "11.500000")
    assert s[("2024-09-04", "aws", "h100")] == ("103.000000", "10.000000")
    assert len(s) == 6 + 3
    others_after = {k: v for k, v in xmins(clean).items() if k in others_before}
    assert others_after == others_before, "rows of other providers and dates were written"
    run = last_run(clean)
    assert (run["request_id"], run["deleted"], run["inserted"], run["updated"], run["unchanged"]) == \
        (rid, 1, 1, 3, 2)
    assert (run["source_format"], run["source_name"], run["mapping_version"]) == \
        ("focus-1.0", "aws-2024-09-final.csv.gz", "gpu-map-v1")

    # the same request again: replayed, deleted reported from the first run
    again = server.call(request_id=rid, ingest=pb.IngestRequest(
        records=records(*FINAL), replace=[win(" AWS ", "2024-09-01", "2024-09-30")],
        provenance=pb.Provenance(format="focus-1.0", name="aws-2024-09-final.csv.gz",
                                 mapping_version="gpu-map-v1")))
    hx.assert_code(again, "OK")
    assert again.ingest.replayed and again.ingest.deleted == 1
    assert stored(clean) == s


def test_restatement_in_an_export_document(clean, server):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    doc = {"export_id": "x", "currency": "USD",
           "cost_data": [{"date": r.date, "provider": r.provider, "gpu_type": r.gpu_type,
                          "cost_usd": r.cost_usd, "gpu_hours": r.gpu_hours} for r in FINAL],
           "replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}],
           "provenance": {"format": "heliox", "name": "final.json", "mapping_version": "gpu-map-v1"}}
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=6, inserted=1, updated=3, unchanged=2, failed=0)
    assert resp.ingest.deleted == 1
    assert last_run(clean)["source_name"] == "final.json"


def test_empty_batch_with_window_empties_it(clean, server):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    resp = ingest(server, records=records(), replace=[win("aws", "2024-09-02", "2024-09-03")])
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=0, inserted=0, updated=0, unchanged=0, failed=0)
    assert resp.ingest.deleted == 4  # 09-02 and 09-03, h100 and a100
    resp = server.call(ingest=hx.ingest_json(
        {"cost_data": [], "replace": [{"provider": "aws", "from_date": "2024-09-01",
                                       "to_date": "2024-09-01"}]}))
    hx.assert_code(resp, "OK")
    assert resp.ingest.deleted == 2
    assert sorted(stored(clean)) == [("2024-08-31", "aws", "h100"), ("2024-09-02", "azure", "a100"),
                                     ("2024-10-01", "aws", "h100")]
    # without windows an empty batch is still refused
    resp = ingest(server, records=records())
    assert_rejected(clean, server, resp, "records", "must not be empty")


def test_dry_run_counts_deleted_and_writes_nothing(clean, server):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    snap = clean.snapshot()
    resp = ingest(server, records=records(*FINAL), dry_run=True,
                  replace=[win("aws", "2024-09-01", "2024-09-30")])
    hx.assert_code(resp, "OK")
    assert resp.ingest.dry_run
    hx.assert_counts(resp, received=6, inserted=1, updated=3, unchanged=2, failed=0)
    assert resp.ingest.deleted == 1
    assert clean.snapshot() == snap


def test_two_windows_two_providers(clean, server):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    resp = ingest(server, records=records(rec("2024-09-02", "azure", "h100", "1")),
                  replace=[win("aws", "2024-09-03", "2024-09-03"), win("azure", "2024-09-01", "2024-09-30")])
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=1, inserted=1)
    assert resp.ingest.deleted == 3  # aws 09-03 h100 + a100, azure 09-02 a100
    assert ("2024-09-02", "azure", "a100") not in stored(clean)


# ----------------------------------------------------- violation paths --

@pytest.mark.parametrize("windows,field,desc", [
    ([win("", "2024-09-01", "2024-09-30")], "replace[0].provider", "must not be empty"),
    ([win("a\x01ws", "2024-09-01", "2024-09-30")], "replace[0].provider", "control character"),
    ([win("aws", "2024-02-30", "2024-03-01")], "replace[0].from_date", "real calendar date"),
    ([win("aws", "2024-09-01", "")], "replace[0].to_date", "real calendar date"),
    ([win("aws", "2024-09-02", "2024-09-01")], "replace[0].to_date", "must not be before from_date"),
    ([win("aws", "2024-01-01", "2025-01-01")], "replace[0].to_date", "more than 366 days"),
    ([win("aws", "2024-09-01", "2024-09-30"), win(" AWS", "2024-10-01", "2024-10-31")],
     "replace[1].provider", "another window for provider aws: replace[0]"),
])
def test_window_violations(clean, server, windows, field, desc):
    hx.assert_counts(ingest(server, records=records(*OTHERS)), inserted=3)
    snap = clean.snapshot()
    resp = ingest(server, records=records(rec("2024-09-05", "gcp", "l4", "1")), replace=windows)
    assert_rejected(clean, server, resp, field, desc)
    assert clean.snapshot() == snap


def test_window_of_366_days_is_fine(clean, server):
    # 2024 is a leap year: 2024-01-01 .. 2024-12-31 is 366 days
    resp = ingest(server, records=records(rec("2024-12-31", "aws", "h100", "1")),
                  replace=[win("aws", "2024-01-01", "2024-12-31")])
    hx.assert_code(resp, "OK")


def test_record_outside_its_window(clean, server):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    snap = clean.snapshot()
    resp = ingest(server, records=records(rec("2024-09-05", "aws", "h100", "1"),
                                          rec("2024-10-01", "aws", "h100", "1"),
                                          rec("2024-10-01", "gcp", "h100", "1")),
                  replace=[win("aws", "2024-09-01", "2024-09-30")])
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert hx.violations(resp) == [
        ("records[1].date", "is outside the replace window for aws (2024-09-01 .. 2024-09-30)")]
    assert clean.snapshot() == snap
    resp = server.call(ingest=hx.ingest_json({
        "cost_data": [{"date": "2024-08-31", "provider": "AWS", "gpu_type": "x", "cost_usd": 1}],
        "replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}]}))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert hx.violation_fields(resp) == ["cost_data[0].date"]
    assert clean.snapshot() == snap


def test_replace_with_skip_invalid(clean, server):
    resp = ingest(server, records=records(rec("2024-09-01", "aws", "h100", "1")), skip_invalid=True,
                  replace=[win("aws", "2024-09-01", "2024-09-30")])
    assert_rejected(clean, server, resp, "replace", "skip_invalid")
    resp = server.call(ingest=hx.ingest_json({
        "cost_data": [{"date": "2024-09-01", "provider": "aws", "gpu_type": "x", "cost_usd": 1}],
        "replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}]},
        skip_invalid=True))
    assert_rejected(clean, server, resp, "replace", "skip_invalid")
    assert clean.count() == 0


@pytest.mark.parametrize("doc_extra,field,desc", [
    ({"replace": {"provider": "aws"}}, "replace", "must be an array"),
    ({"replace": ["aws"]}, "replace[0]", "must be an object"),
    ({"replace": [{"provider": "aws", "from_date": 20240901, "to_date": "2024-09-30"}]},
     "replace[0].from_date", "must be a string"),
    ({"provenance": "focus"}, "provenance", "must be an object"),
    ({"provenance": {"format": "focus\n1.0"}}, "provenance.format", "control character"),
    ({"provenance": {"name": "x" * 256}}, "provenance.name", "longer than 255 bytes"),
    ({"provenance": {"mapping_version": 1}}, "provenance.mapping_version", "must be a string"),
])
def test_document_violations(clean, server, doc_extra, field, desc):
    doc = {"cost_data": [{"date": "2024-09-01", "provider": "aws", "gpu_type": "x", "cost_usd": 1}]}
    doc.update(doc_extra)
    resp = server.call(ingest=hx.ingest_json(doc))
    assert_rejected(clean, server, resp, field, desc)
    assert clean.count() == 0


def test_windows_in_request_and_document(clean, server):
    resp = server.call(ingest=hx.ingest_json(
        {"cost_data": [{"date": "2024-09-01", "provider": "aws", "gpu_type": "x", "cost_usd": 1}],
         "replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}]},
        replace=[win("aws", "2024-09-01", "2024-09-30")]))
    assert_rejected(clean, server, resp, "replace", "both in the request and in the export document")


@pytest.mark.parametrize("prov,field,desc", [
    (pb.Provenance(format="f" * 65), "provenance.format", "longer than 64 bytes"),
    (pb.Provenance(name="bill\x7f.csv"), "provenance.name", "control character"),
    (pb.Provenance(mapping_version="v\x1b1"), "provenance.mapping_version", "control character"),
])
def test_provenance_violations(clean, server, prov, field, desc):
    resp = ingest(server, records=records(rec("2024-09-01", "aws", "h100", "1")), provenance=prov)
    assert_rejected(clean, server, resp, field, desc)
    assert clean.count() == 0


def test_provenance_limits_and_failed_audit(clean, server):
    prov = pb.Provenance(format="f" * 64, name="n" * 255, mapping_version=" gpu-map-v1 ")
    resp = ingest(server, records=records(rec("2024-09-01", "aws", "h100", "1")), provenance=prov)
    hx.assert_code(resp, "OK")
    run = last_run(clean)
    assert (run["source_format"], run["source_name"], run["mapping_version"]) == ("f" * 64, "n" * 255, "gpu-map-v1")
    # a refused request leaves its audit row with the provenance too
    resp = ingest(server, records=records(rec("2024-09-01", "aws", "h100", "0")),
                  provenance=pb.Provenance(format="focus-1.2"))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    run = last_run(clean)
    assert run["code_name"] == "INVALID_ARGUMENT" and run["source_format"] == "focus-1.2"
    assert run["deleted"] == 0


# --------------------------------------------------------- summary v2 --

def summary(server, **kw):
    resp = server.call(summary=pb.SummaryRequest(**kw))
    hx.assert_code(resp, "OK")
    return resp.summary.rows


def test_summary_gpu_hours_and_usd_per_gpu_hour(clean, server):
    hx.assert_counts(ingest(server, records=records(
        rec("2024-09-01", "aws", "h100", "98.32", "24"),
        rec("2024-09-02", "aws", "h100", "100.00", "23.5"),
        rec("2024-09-01", "aws", "a100", "40.00", ""),        # cost without hours
        rec("2024-09-01", "gcp", "l4", "10.00", "0"),         # hours known, zero
        rec("2024-09-01", "azure", "a100", "1.00", "3"),      # 1/3 = 0.33333...
        rec("2024-09-02", "azure", "a100", "2.00", "3"),      # 3/6 = 0.5
    )), inserted=6)
    rows = summary(server)
    assert len(rows) == 1
    r = rows[0]
    # total: 98.32 + 100 + 40 + 10 + 1 + 2 = 251.32
    # gpu_hours: 24 + 23.5 + 0 + 3 + 3 = 53.5 (the unknown one left out)
    # usd_per_gpu_hour: cost of the rows with hours (251.32 - 40 = 211.32) / 53.5
    #   = 3.94990654... -> 3.9499
    assert (r.records, r.total_usd, r.gpu_hours, r.usd_per_gpu_hour) == (6, "251.32", "53.50", "3.9499")

    by = {(x.provider, x.gpu_type): x for x in summary(server, group_by=pb.PROVIDER_GPU_TYPE)}
    # aws/h100: 198.32 / 47.5 = 4.17515789... -> 4.1752
    assert (by[("aws", "h100")].gpu_hours, by[("aws", "h100")].usd_per_gpu_hour) == ("47.50", "4.1752")
    # aws/a100: no hours known: both empty
    assert (by[("aws", "a100")].gpu_hours, by[("aws", "a100")].usd_per_gpu_hour) == ("", "")
    # gcp/l4: hours sum to 0: gpu_hours 0, no per-hour figure
    assert (by[("gcp", "l4")].gpu_hours, by[("gcp", "l4")].usd_per_gpu_hour) == ("0.00", "")
    # azure/a100: 3 / 6 = 0.5
    assert (by[("azure", "a100")].gpu_hours, by[("azure", "a100")].usd_per_gpu_hour) == ("6.00", "0.50")

    day = {x.date: x for x in summary(server, group_by=pb.DATE, provider="AZURE")}
    # azure 09-01: 1 / 3 = 0.333333... -> 0.3333
    assert day["2024-09-01"].usd_per_gpu_hour == "0.3333"


def test_summary_rounds_half_away_exactly(clean, server):
    # 0.00005 / 1 = 0.00005 -> 0.0001 (half away from zero), and
    # 1 / 0.000003 = 333333.3333333... -> 333333.3333
    hx.assert_counts(ingest(server, records=records(
        rec("2024-09-01", "x", "a", "0.00005", "1"),
        rec("2024-09-01", "y", "a", "1", "0.000003"))), inserted=2)
    by = {x.provider: x for x in summary(server, group_by=pb.PROVIDER)}
    assert by["x"].usd_per_gpu_hour == "0.0001"
    assert by["y"].usd_per_gpu_hour == "333333.3333"
    assert by["y"].gpu_hours == "0.000003"


# ---------------------------------------------------------------- CLI --

def cli(server, *args, timeout=120):
    p = hx.run_cli(["--url", server.url] + list(args), key=server.key, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_cli_window_document_goes_as_one_request(clean, server, tmp_path):
    hx.assert_counts(ingest(server, records=records(*PRELIM, *OTHERS)), inserted=9)
    doc = {"currency": "USD",
           "cost_data": [{"date": r.date, "provider": r.provider, "gpu_type": r.gpu_type,
                          "cost_usd": r.cost_usd, "gpu_hours": r.gpu_hours} for r in FINAL],
           "replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}],
           "provenance": {"format": "focus-1.0", "name": "sept.csv", "mapping_version": "gpu-map-v1"}}
    path = tmp_path / "final.json"
    path.write_text(json.dumps(doc))
    runs_before = len(clean.runs_json())
    rc, out, err = cli(server, "--json", "ingest", "--batch", "2", "--request-id", "sept-final", str(path))
    assert rc == 0, (out, err)
    j = json.loads(out)
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"], j["deleted"]) == (6, 1, 3, 2, 1)
    runs = clean.runs_json()[runs_before:]
    assert len(runs) == 1, "a document with windows must go as one request, not batches of 2"
    assert runs[0]["request_id"] == "sept-final-b1" and runs[0]["source_format"] == "focus-1.0"
    # run again: the one request is replayed, nothing changes
    rc, out, err = cli(server, "--json", "ingest", "--request-id", "sept-final", str(path))
    assert rc == 0, (out, err)
    assert json.loads(out)["deleted"] == 1


def test_cli_window_document_record_outside_sends_nothing(clean, server, tmp_path):
    hx.assert_counts(ingest(server, records=records(*PRELIM)), inserted=6)
    snap = clean.snapshot()
    runs_before = len(clean.runs_json())
    # replace after cost_data: the check cannot happen while reading cost_data
    text = ('{"cost_data": [{"date": "2024-09-01", "provider": "aws", "gpu_type": "h100", "cost_usd": 1},'
            '{"date": "2024-10-01", "provider": "aws", "gpu_type": "h100", "cost_usd": 1}],'
            '"replace": [{"provider": "aws", "from_date": "2024-09-01", "to_date": "2024-09-30"}]}')
    path = tmp_path / "bad.json"
    path.write_text(text)
    rc, out, err = cli(server, "--json", "ingest", str(path))
    assert rc == 3, (out, err)
    j = json.loads(out)
    assert [v["field"] for v in j["violations"]] == ["cost_data[1].date"]
    assert "nothing was sent" in j["message"]
    assert clean.snapshot() == snap and len(clean.runs_json()) == runs_before
    rc, out, err = cli(server, "--json", "ingest", "--skip-invalid", str(path))
    assert rc == 3, (out, err)
    assert "replace" in [v["field"] for v in json.loads(out)["violations"]]
    assert clean.snapshot() == snap and len(clean.runs_json()) == runs_before


def test_cli_window_document_without_records(clean, server, tmp_path):
    hx.assert_counts(ingest(server, records=records(*PRELIM)), inserted=6)
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"cost_data": [], "replace": [
        {"provider": "aws", "from_date": "2024-09-03", "to_date": "2024-09-30"}]}))
    rc, out, err = cli(server, "--json", "ingest", str(path))
    assert rc == 0, (out, err)
    assert json.loads(out)["deleted"] == 2
    assert clean.count() == 4


def test_cli_summary_shows_gpu_hours(clean, server):
    hx.assert_counts(ingest(server, records=records(
        rec("2024-09-01", "aws", "h100", "98.32", "24"),
        rec("2024-09-01", "aws", "a100", "40.00", ""))), inserted=2)
    rc, out, err = cli(server, "--json", "summary", "--group-by", "gpu_type")
    assert rc == 0, (out, err)
    rows = {r["gpu_type"]: r for r in json.loads(out)["rows"]}
    # h100: 98.32 / 24 = 4.09666... -> 4.0967
    assert (rows["h100"]["gpu_hours"], rows["h100"]["usd_per_gpu_hour"]) == ("24.00", "4.0967")
    assert (rows["a100"]["gpu_hours"], rows["a100"]["usd_per_gpu_hour"]) == ("", "")
    rc, out, err = cli(server, "summary", "--group-by", "gpu_type")
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert lines[0].split()[-2:] == ["gpu_hours", "usd_per_gpu_hour"]
    h100 = [ln for ln in lines if ln.startswith("h100")][0].split()
    a100 = [ln for ln in lines if ln.startswith("a100")][0].split()
    assert h100[-2:] == ["24.00", "4.0967"] and a100[-2:] == ["-", "-"]


# ---------------------------------------------------- migration v1 -> v2 --

# The v1 schema exactly as migration 1 of the v1 server (main at 232e6ab)
# created it, for the fixture-based test below; the real-binary test builds
# that server itself.
V1_COMMIT = "232e6ab942a0885ab9f94405ff18ec6babbceaf0"
V1_SCHEMA = """
CREATE TABLE schema_migrations (version int PRIMARY KEY, name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE cost_snapshots ( id bigserial PRIMARY KEY, date date NOT NULL, provider text NOT NULL,
  gpu_type text NOT NULL, cost_usd numeric(18,6) NOT NULL CHECK (cost_usd > 0),
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (date, provider, gpu_type));
CREATE INDEX cost_snapshots_date_idx ON cost_snapshots (date);
CREATE TABLE ingestion_runs ( id bigserial PRIMARY KEY, request_id text NOT NULL, source text NOT NULL,
  fingerprint bytea, dry_run bool NOT NULL, replayed bool NOT NULL, code int NOT NULL,
  code_name text NOT NULL, received int NOT NULL, inserted int NOT NULL, updated int NOT NULL,
  unchanged int NOT NULL, failed int NOT NULL, duration_us bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX ingestion_runs_idempotency ON ingestion_runs (request_id)
  WHERE code = 0 AND NOT dry_run AND NOT replayed;
CREATE INDEX ingestion_runs_created_at_idx ON ingestion_runs (created_at);
INSERT INTO schema_migrations (version, name) VALUES (1, 'cost_snapshots and ingestion_runs');
"""


def v1_server_binary():
    """heliox-ingestd as main was before v2, built once from git into
    build/v1-<commit> (cached: later runs reuse it)."""
    out = os.path.join(hx.BUILD_DIR, f"v1-{V1_COMMIT[:12]}")
    binary = os.path.join(out, "build", "heliox-ingestd")
    if os.access(binary, os.X_OK):
        return binary
    src = os.path.join(out, "src")
    os.makedirs(src, exist_ok=True)
    archive = subprocess.run(["git", "-C", hx.SOURCE_DIR, "archive", V1_COMMIT], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    subprocess.run(["cmake", "-S", src, "-B", os.path.join(out, "build"), "-DCMAKE_BUILD_TYPE=Release",
                    "-DHX_BUILD_TESTS=OFF"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", os.path.join(out, "build"), "-j2", "--target", "heliox-ingestd"],
                   check=True, capture_output=True)
    return binary


def check_upgraded(pg, v1_rows):
    """v1's rows are still there, unchanged, with the v2 columns added."""
    # v2's migration (2) applied, and the later ones (3: audit, 4: schema review,
    # 5: the name checks without translate())
    assert pg.scalar("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations") == "1,2,3,4,5"
    assert pg.rows() == v1_rows
    assert pg.scalar("SELECT count(*) FROM cost_snapshots WHERE gpu_hours IS NOT NULL") == "0"
    cols = dict(pg.psql("SELECT column_name, data_type || coalesce('(' || numeric_precision || ',' || "
                        "numeric_scale || ')', '') || ' ' || is_nullable FROM information_schema.columns "
                        "WHERE table_name = 'cost_snapshots' AND column_name = 'gpu_hours'"))
    assert cols == {"gpu_hours": "numeric(18,6) YES"}
    runs = pg.runs_json()
    assert runs and all(r["deleted"] == 0 and r["source_format"] is None for r in runs)
    # migration 3: v1's rows are their own base, with no key or peer known
    assert all(r["base_request_id"] == r["request_id"] and r["key_id"] is None and r["peer"] is None
               for r in runs), runs
    # the CHECKs hold, migration 5's on the rows v1 stored too
    with pytest.raises(RuntimeError, match="cost_snapshots_provider_normalised"):
        pg.psql("UPDATE cost_snapshots SET provider = upper(provider) WHERE id = (SELECT min(id) FROM cost_snapshots)")
    with pytest.raises(RuntimeError, match="cost_snapshots_gpu_hours_check"):
        pg.psql("UPDATE cost_snapshots SET gpu_hours = -1 WHERE id = (SELECT min(id) FROM cost_snapshots)")


def exercise_v2(srv, pg):
    # a re-ingest of the mock with hours: every row updated (hours unknown -> known)
    raw_bytes, doc = hx.load_mock()
    for r in doc["cost_data"]:
        r["gpu_hours"] = "24"
        r["cost_usd"] = str(r["cost_usd"])
    doc["replace"] = [{"provider": "aws", "from_date": "2026-01-01", "to_date": "2026-01-31"}]
    doc["cost_data"] = doc["cost_data"][1:]  # the first is dropped by the restatement
    resp = srv.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=27, inserted=0, updated=27, unchanged=0, failed=0)
    assert resp.ingest.deleted == 1
    assert pg.scalar("SELECT count(*) FROM cost_snapshots WHERE gpu_hours = 24") == "27"


def test_migration_from_v1_fixture():
    pg = hx.PgCluster()
    try:
        pg.start()
        pg.psql(V1_SCHEMA)
        pg.psql("INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd) VALUES "
                "('2026-01-01', 'aws', 'a100', 1245.67), ('2026-01-02', 'aws', 'h100', 2000)")
        pg.psql("INSERT INTO ingestion_runs (request_id, source, dry_run, replayed, code, code_name, "
                "received, inserted, updated, unchanged, failed, duration_us) "
                "VALUES ('old', 'records', false, false, 0, 'OK', 2, 2, 0, 0, 0, 10)")
        v1_rows = pg.rows()
        srv = hx.Server(pg.conninfo, keys=[hx.new_key()])
        try:
            srv.start()
            check_upgraded(pg, v1_rows)
            resp = srv.call(ingest=pb.IngestRequest(records=records(
                rec("2026-01-01", "aws", "a100", "1245.67", "10"))))
            hx.assert_counts(resp, received=1, updated=1)
            srv.stop()
        finally:
            srv.cleanup()
    finally:
        pg.destroy()


def test_migration_from_real_v1_server():
    v1 = v1_server_binary()
    pg = hx.PgCluster()
    key = hx.new_key()
    try:
        pg.start()
        old = hx.Server(pg.conninfo, keys=[key])
        old.args[0] = v1
        try:
            old.start()
            resp = old.call(ingest=hx.ingest_mock())
            hx.assert_counts(resp, received=28, inserted=28)
            resp = old.call(ingest=pb.IngestRequest(records=records(
                rec("2026-02-01", "gcp", "l4", "3.5"))))
            hx.assert_counts(resp, received=1, inserted=1)
            old.stop()
        finally:
            old.cleanup()
        assert pg.scalar("SELECT max(version) FROM schema_migrations") == "1"
        v1_rows = pg.rows()
        assert len(v1_rows) == 29
        srv = hx.Server(pg.conninfo, keys=[key])
        try:
            srv.start()
            check_upgraded(pg, v1_rows)
            exercise_v2(srv, pg)
            # gcp untouched by aws's window
            assert ("2026-02-01", "gcp", "l4", Decimal("3.5")) in pg.rows()
            rows = srv.call(summary=pb.SummaryRequest(provider="aws")).summary.rows
            # 27 rows with 24 h each = 648 h
            assert rows[0].gpu_hours == "648.00" and rows[0].records == 27
            srv.stop()
        finally:
            srv.cleanup()
    finally:
        pg.destroy()

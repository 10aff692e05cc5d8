"""Ingest sources (mock, export_json, records), dry_run, skip_invalid, the
counts, idempotent replay by request_id, and the ingestion_runs audit table
(SERVICE.md sections 3 and 5)."""

import json
import os
import re
from decimal import Decimal


import hxharness as hx
from hxharness import pb


def recs(n, provider="Prov", gpu="G1", base="100.25", day0=1):
    """n records on consecutive days of 2025 (Jan 1.. onwards)."""
    import datetime
    start = datetime.date(2025, 1, day0)
    out = []
    for i in range(n):
        d = (start + datetime.timedelta(days=i)).isoformat()
        out.append((d, provider, gpu, str(Decimal(base) + i)))
    return out


def db_map(pg):
    return {(d, p, g): c for d, p, g, c in pg.rows()}


# ------------------------------------------------------------- sources --

def test_mock_source(clean, server):
    resp = server.call(ingest=hx.ingest_mock())
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    assert clean.count() == 28


def test_export_json_source_equals_mock(clean, server):
    raw_bytes, doc = hx.load_mock()
    resp = server.call(ingest=hx.ingest_json(raw_bytes))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    want = sorted((r["date"], "aws", r["gpu_type"].lower(), Decimal(r["cost_usd"])) for r in doc["cost_data"])
    assert clean.rows() == want
    # the bundled mock is the same data: all unchanged
    resp = server.call(ingest=hx.ingest_mock())
    hx.assert_counts(resp, received=28, inserted=0, updated=0, unchanged=28, failed=0)


def test_records_source_normalises(clean, server):
    batch = [("2025-03-01", "  GCP\t", "\nL4 ", "0.000001"),
             ("2025-03-01", "gcp", "A100-80GB", "999999999999.999999"),
             ("2025-03-02", "Azure", "ND96asr_v4", "123456789.012345"),
             ("2025-03-02", "azure", "nd96ASR_V4 ", "1245.67")]
    # the last one duplicates the third after normalisation: not in this batch
    batch = batch[:3]
    resp = server.call(ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=3, inserted=3, updated=0, unchanged=0, failed=0)
    assert clean.rows() == [
        ("2025-03-01", "gcp", "a100-80gb", Decimal("999999999999.999999")),
        ("2025-03-01", "gcp", "l4", Decimal("0.000001")),
        ("2025-03-02", "azure", "nd96asr_v4", Decimal("123456789.012345")),
    ]


def test_json_numbers_kept_exactly(clean, server):
    doc = (b'{"cost_data": ['
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"a","cost_usd":1245.67},'
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"b","cost_usd":0.1},'
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"c","cost_usd":123456789.012345},'
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"d","cost_usd":"2189.45"},'
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"e","cost_usd":1.5e2},'
           b'{"date":"2025-04-01","provider":"aws","gpu_type":"f","cost_usd":7}'
           b']}')
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=6, inserted=6)
    got = {g: c for _, _, g, c in clean.rows()}
    assert got == {"a": Decimal("1245.67"), "b": Decimal("0.1"), "c": Decimal("123456789.012345"),
                   "d": Decimal("2189.45"), "e": Decimal("150"), "f": Decimal("7")}


def test_unknown_top_level_fields_ignored_and_usd_accepted(clean, server):
    doc = {"export_id": "x", "currency": "USD", "generated_by": {"tool": "t"}, "extra": [1, 2],
           "cost_data": [{"date": "2025-05-01", "provider": "aws", "gpu_type": "a100", "cost_usd": "10"}]}
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=1, inserted=1)
    # currency is optional
    doc2 = {"cost_data": [{"date": "2025-05-02", "provider": "aws", "gpu_type": "a100", "cost_usd": "10"}]}
    hx.assert_counts(server.call(ingest=hx.ingest_json(doc2)), received=1, inserted=1)
    assert clean.count() == 2


# ------------------------------------------------------------- dry_run --

def test_dry_run_on_empty_table_counts_and_writes_nothing(clean, server):
    before = clean.snapshot()
    resp = server.call(ingest=hx.ingest_mock(dry_run=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    assert resp.ingest.dry_run is True
    assert clean.snapshot() == before
    assert clean.count() == 0


def test_dry_run_with_changes_counts_each_kind_and_writes_nothing(clean, server):
    hx.assert_code(server.call(ingest=hx.ingest_records(recs(5))), "OK")
    before = clean.snapshot()
    batch = recs(5)
    batch[0] = batch[0][:3] + ("1.00",)          # updated
    batch[1] = batch[1][:3] + ("2.50",)          # updated
    batch[2] = batch[2][:3] + (batch[2][3] + "000",)  # same value, other text: unchanged
    batch.append(("2025-02-01", "prov", "g1", "9"))    # inserted
    resp = server.call(ingest=hx.ingest_records(batch, dry_run=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=6, inserted=1, updated=2, unchanged=3, failed=0)
    assert resp.ingest.dry_run is True
    assert clean.snapshot() == before


def test_dry_run_with_skip_invalid(clean, server):
    before = clean.snapshot()
    batch = recs(3) + [("2025-13-01", "p", "g", "1")]
    resp = server.call(ingest=hx.ingest_records(batch, dry_run=True, skip_invalid=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=4, inserted=3, failed=1)
    assert hx.violation_fields(resp) == ["records[3].date"]
    assert clean.snapshot() == before


# -------------------------------------------------------- skip_invalid --

def test_skip_invalid_records_writes_valid_ones(clean, server):
    batch = recs(6)
    batch[1] = batch[1][:3] + ("-5",)
    batch[4] = ("2023-02-29",) + batch[4][1:]
    resp = server.call(ingest=hx.ingest_records(batch, skip_invalid=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=6, inserted=4, updated=0, unchanged=0, failed=2)
    assert sorted(hx.violation_fields(resp)) == ["records[1].cost_usd", "records[4].date"]
    assert set(db_map(clean)) == {(batch[i][0], "prov", "g1") for i in (0, 2, 3, 5)}


def test_skip_invalid_json_document(clean, server):
    doc = {"cost_data": [
        {"date": "2025-06-01", "provider": "aws", "gpu_type": "a100", "cost_usd": 1},
        {"date": "2025-06-02", "provider": "", "gpu_type": "a100", "cost_usd": 1},
        {"date": "2025-06-03", "provider": "aws", "gpu_type": "a100", "cost_usd": 1},
        {"date": "2025-06-01", "provider": "AWS", "gpu_type": "A100", "cost_usd": 2},
    ]}
    resp = server.call(ingest=hx.ingest_json(doc, skip_invalid=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=4, inserted=2, failed=2)
    fields = hx.violation_fields(resp)
    assert "cost_data[1].provider" in fields
    dup = [(f, d) for f, d in hx.violations(resp) if f.startswith("cost_data[3]")]
    assert dup and "duplicate of cost_data[0]" in dup[0][1], hx.describe(resp)
    assert db_map(clean) == {("2025-06-01", "aws", "a100"): Decimal(1), ("2025-06-03", "aws", "a100"): Decimal(1)}


def test_without_skip_invalid_nothing_is_written(clean, server):
    hx.assert_code(server.call(ingest=hx.ingest_records(recs(3))), "OK")
    before = clean.snapshot()
    batch = [r[:3] + ("77",) for r in recs(3)] + recs(20, day0=10)
    batch.append(("2025-01-01", "p", "g", "0"))
    resp = server.call(ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert hx.violation_fields(resp) == ["records[23].cost_usd"]
    # the result still carries the counts (SERVICE.md section 3)
    hx.assert_counts(resp, received=24, inserted=0, updated=0)
    assert clean.snapshot() == before


def test_skip_invalid_all_invalid(clean, server):
    resp = server.call(ingest=hx.ingest_records([("x", "p", "g", "1"), ("2025-01-01", "p", "g", "abc")],
                                                skip_invalid=True))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=2, inserted=0, updated=0, unchanged=0, failed=2)
    assert clean.count() == 0


# -------------------------------------------------------------- counts --

def test_updated_and_unchanged_counts(clean, server):
    hx.assert_counts(server.call(ingest=hx.ingest_records(recs(4))), received=4, inserted=4)
    stamps = dict(((d, g), (x, u)) for d, g, x, u in clean.psql(
        "SELECT date::text, gpu_type, xmin::text, updated_at::text FROM cost_snapshots"))
    batch = recs(4)
    batch[0] = batch[0][:3] + ("5000.5",)            # updated
    batch[1] = batch[1][:3] + ("0.01",)              # updated
    batch[2] = batch[2][:3] + ("%s0" % batch[2][3],)  # same number, other text: unchanged
    batch.append(("2025-03-01", "prov", "g1", "1"))   # new
    resp = server.call(ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=5, inserted=1, updated=2, unchanged=2, failed=0)
    m = db_map(clean)
    assert m[(batch[0][0], "prov", "g1")] == Decimal("5000.5")
    assert m[(batch[1][0], "prov", "g1")] == Decimal("0.01")
    after = dict(((d, g), (x, u)) for d, g, x, u in clean.psql(
        "SELECT date::text, gpu_type, xmin::text, updated_at::text FROM cost_snapshots"))
    # unchanged rows were not rewritten at all; updated rows were, with a new updated_at
    for i in (2, 3):
        assert after[(batch[i][0], "g1")] == stamps[(batch[i][0], "g1")], f"unchanged row {i} was rewritten"
    for i in (0, 1):
        assert after[(batch[i][0], "g1")][1] != stamps[(batch[i][0], "g1")][1], f"updated_at of row {i} kept"


SCENARIOS = [
    dict(recs=recs(10), skip_invalid=False),
    dict(recs=recs(10) + [("2025-01-01", "x", "y", "0")], skip_invalid=True),
    dict(recs=[r[:3] + ("1",) for r in recs(10)] + recs(3, gpu="g2"), skip_invalid=False),
    dict(recs=recs(10) + [("bad", "", "", "")], skip_invalid=True, dry_run=True),
]


def test_counts_always_add_up(clean, server):
    hx.assert_code(server.call(ingest=hx.ingest_records(recs(5))), "OK")
    for sc in SCENARIOS:
        resp = server.call(ingest=hx.ingest_records(sc["recs"], skip_invalid=sc["skip_invalid"],
                                                    dry_run=sc.get("dry_run", False)))
        hx.assert_code(resp, "OK")
        hx.assert_counts(resp, received=len(sc["recs"]))


# ------------------------------------------------------ idempotent replay --

def test_replay_same_request_id_same_request(clean, server):
    r = hx.rid("replay")
    first = server.call(request_id=r, ingest=hx.ingest_mock())
    hx.assert_code(first, "OK")
    hx.assert_counts(first, received=28, inserted=28)
    assert first.ingest.replayed is False
    # remove the rows behind the server's back: a re-run would insert them again
    clean.psql("DELETE FROM cost_snapshots")
    again = server.call(request_id=r, ingest=hx.ingest_mock())
    hx.assert_code(again, "OK")
    assert again.request_id == r
    hx.assert_counts(again, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    assert again.ingest.replayed is True, hx.describe(again)
    assert clean.count() == 0, "a replayed request_id ran the ingest again"


def test_replay_same_request_id_other_request_is_invalid(clean, server):
    r = hx.rid("replay2")
    hx.assert_code(server.call(request_id=r, ingest=hx.ingest_records(recs(2))), "OK")
    before = clean.snapshot()
    for other in (hx.ingest_records(recs(3)), hx.ingest_mock(),
                  hx.ingest_records(recs(2), skip_invalid=True)):
        resp = server.call(request_id=r, ingest=other)
        hx.assert_code(resp, "INVALID_ARGUMENT")
        assert "request_id" in hx.violation_fields(resp), hx.describe(resp)
        assert clean.snapshot() == before


def test_request_id_of_failed_ingest_may_be_reused(clean, server):
    r = hx.rid("retry")
    bad = server.call(request_id=r, ingest=hx.ingest_records([("2025-01-01", "p", "g", "0")]))
    hx.assert_code(bad, "INVALID_ARGUMENT")
    good = server.call(request_id=r, ingest=hx.ingest_records(recs(2)))
    hx.assert_code(good, "OK")
    hx.assert_counts(good, received=2, inserted=2)
    assert good.ingest.replayed is False
    assert clean.count() == 2


def test_replay_of_a_different_request_id_runs(clean, server):
    hx.assert_counts(server.call(ingest=hx.ingest_records(recs(2))), inserted=2)
    resp = server.call(ingest=hx.ingest_records(recs(2)))
    hx.assert_counts(resp, inserted=0, unchanged=2)
    assert resp.ingest.replayed is False


def test_empty_request_id_is_generated(clean, server):
    ids = []
    for _ in range(2):
        resp = server.call(request_id="", ingest=hx.ingest_records(recs(1)))
        hx.assert_code(resp, "OK")
        assert resp.request_id != "", "the server must generate a request_id"
        assert resp.ingest.replayed is False
        ids.append(resp.request_id)
    assert ids[0] != ids[1]
    dumped = json.dumps(clean.runs_json())
    for i in ids:
        assert i in dumped, f"generated request_id {i} not in ingestion_runs"
    # health and summary get one too
    resp = server.call(request_id="", health=pb.HealthRequest())
    assert resp.request_id != ""


# ----------------------------------------------------------- audit table --

def test_ingestion_runs_row_per_authenticated_ingest(clean, server):
    ok_id, bad_id, dry_id = hx.rid("ok"), hx.rid("bad"), hx.rid("dry")
    noauth_id, wrong_id = hx.rid("noauth"), hx.rid("wrong")
    hx.assert_code(server.call(request_id=ok_id, ingest=hx.ingest_mock()), "OK")
    hx.assert_code(server.call(request_id=bad_id, ingest=hx.ingest_json(b"not json")), "INVALID_ARGUMENT")
    hx.assert_code(server.call(request_id=dry_id, ingest=hx.ingest_mock(dry_run=True)), "OK")
    hx.assert_code(server.call(key="", request_id=noauth_id, ingest=hx.ingest_mock()), "UNAUTHENTICATED")
    hx.assert_code(server.call(key="x" * 32, request_id=wrong_id, ingest=hx.ingest_mock()), "UNAUTHENTICATED")
    runs = clean.runs_json()
    dumped = [json.dumps(r) for r in runs]
    for i in (ok_id, bad_id, dry_id):
        assert sum(i in d for d in dumped) == 1, f"expected one ingestion_runs row for {i}: {runs}"
    for i in (noauth_id, wrong_id):
        assert not any(i in d for d in dumped), f"unauthenticated ingest {i} left an ingestion_runs row"
    assert len(runs) == 3, runs
    ok_row = next(r for r, d in zip(runs, dumped) if ok_id in d)
    values = list(ok_row.values())
    assert "mock" in values, f"the source is not recorded: {ok_row}"
    assert 28 in values, f"the counts are not recorded: {ok_row}"


# ------------------------------------------------------------- planning --

def jit_compiled_writes(log_text, pids):
    """The Query Texts of auto_explain entries, logged by one of pids, that
    are the store's write statements ("WITH prior ...") and were JIT-compiled."""
    out = []
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[\d+\])", log_text)
    for e in entries:
        m = re.match(r"\S+ \S+ \w+ \[(\d+)\] LOG:  duration: .*?Query Text: (.*?)\n", e, re.S)
        if m and m.group(1) in pids and m.group(2).startswith("WITH prior") and "JIT:" in e:
            out.append(m.group(2)[:60])
    return out


def test_no_write_statement_is_jit_compiled(pg, api_key):
    """store_write.c turns sequential scans off in the write transaction,
    which adds 1e10 to the cost of any plan that must still scan a table (the
    COPY path's temp table); Postgres JIT-compiled such a plan, 0.5 s of LLVM
    per 10,000-record request. The lock statement turns JIT off as well.
    Here JIT is made to compile everything it may (jit_above_cost = 0) and
    auto_explain logs every plan of a server started after: no write
    statement, in any form (arrays, COPY table, fast, plain, dry run, replace
    window), may show a JIT section."""
    # Debian's postgresql-15 ships its JIT provider (llvmjit.so, depending on
    # libllvm14), and scripts/deps.sh installs it: without it this test could
    # not tell the old lock statement from the new, so it fails instead.
    assert pg.scalar("SELECT pg_jit_available()") == "t", \
        "this PostgreSQL has no JIT provider (llvmjit.so from the postgresql-15 package)"
    role = pg.scalar("SELECT current_user")
    settings = {"session_preload_libraries": "auto_explain", "auto_explain.log_min_duration": "0",
                "jit": "on", "jit_above_cost": "0"}
    pg.psql("LOAD 'auto_explain'; " + " ".join(
        f"ALTER ROLE {role} SET {k} = '{v}';" for k, v in settings.items()))
    srv = hx.Server(pg.conninfo, keys=[api_key])
    log_path = os.path.join(pg.dir, "postgres.log")
    try:
        start = os.path.getsize(log_path)
        srv.start()
        pg.truncate()
        big = recs(12000, provider="jit", base="1.5")  # COPY path (>= 10,000)
        for kw in ({"records": big}, {"records": big[:1500], "dry_run": True},
                   {"records": [(d, p, g, "2.5") for d, p, g, _ in big[:1500]]},  # fast, changed
                   {"records": big[:28]}, {"records": big[:28]},               # plain, unchanged
                   {"records": big[:5], "replace": [pb.ReplaceWindow(
                       provider="jit", from_date=big[0][0], to_date=big[9][0])]}):
            if "records" in kw:
                kw["records"] = pb.RecordBatch(records=[hx.cost_record(r) for r in kw["records"]])
            hx.assert_code(srv.call(ingest=pb.IngestRequest(**kw)), "OK")
        pids = {r[0] for r in pg.psql(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{hx.APP_NAME}'")}
        with open(log_path, errors="replace") as f:
            f.seek(start)
            text = f.read()
        logged = text.count("Query Text: WITH prior")
        assert logged >= 6, f"auto_explain logged {logged} write statements"
        assert pids and not jit_compiled_writes(text, pids), jit_compiled_writes(text, pids)
    finally:
        srv.stop()
        srv.cleanup()
        pg.psql(f"ALTER ROLE {role} RESET ALL")

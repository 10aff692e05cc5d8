"""One truth in the audit (issue 11): ingestion_runs says what the user was
told. base_request_id ties the batches of one CLI import together, key_id
names the key (never the key itself), peer says from where, and duration_us
is one figure that the reply, the row and a replay all report."""

import hashlib
import json
import os
import re

import pytest

import hxharness as hx

pb = hx.pb

NAMED_KEY = "hx-named-" + "n" * 24


@pytest.fixture(scope="module")
def key_file(tmp_path_factory, api_key):
    d = tmp_path_factory.mktemp("keys")
    path = d / "keys"
    path.write_text(f"# ops\nops-team:{NAMED_KEY}\n")
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture(scope="module")
def server(pg, api_key, key_file):
    srv = hx.Server(pg.conninfo, keys=[api_key], key_file=key_file)
    try:
        srv.start()
        yield srv
        log = srv.stop()
        assert api_key not in log and NAMED_KEY not in log, "a key appears in the server log"
    finally:
        srv.cleanup()


def runs(pg, where):
    return [json.loads(r[0]) for r in pg.psql(
        f"SELECT row_to_json(r)::text FROM ingestion_runs r WHERE {where} ORDER BY id")]


def cli_json(server, *args, key=None):
    p = hx.run_cli(["--url", server.url, "--json", *args], key=key or server.key)
    out = p.stdout.decode()
    return p.returncode, json.loads(out), p.stderr.decode()


def write_doc(path, recs):
    path.write_text(json.dumps({"currency": "USD", "cost_data": recs}))
    return str(path)


def rec(day, cost, provider="aws", gpu="a100"):
    return {"date": f"2026-03-{day:02d}", "provider": provider, "gpu_type": gpu, "cost_usd": cost}


def test_schema_has_the_audit_columns(clean):
    cols = {r[0] for r in clean.psql("SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = 'ingestion_runs'")}
    assert {"base_request_id", "key_id", "peer", "duration_us"} <= cols, cols
    assert clean.scalar("SELECT count(*) FROM schema_migrations WHERE version = 3") == "1"


def test_skip_invalid_row_equals_what_the_cli_printed(clean, server, tmp_path):
    f = write_doc(tmp_path / "two.json", [rec(1, "10.5"), rec(2, "-3")])
    rc, j, err = cli_json(server, "--request-id", "skip-1", "ingest", f, "--skip-invalid")
    assert rc == 0, (j, err)
    assert (j["received"], j["inserted"], j["failed"]) == (2, 1, 1), j
    [row] = runs(clean, "base_request_id = 'skip-1'")
    assert (row["received"], row["inserted"], row["failed"]) == (2, 1, 1), row


def test_skip_invalid_all_invalid_still_audited(clean, server, tmp_path):
    f = write_doc(tmp_path / "bad.json", [rec(1, "0"), rec(2, "-1"), rec(3, "x")])
    rc, j, err = cli_json(server, "--request-id", "skip-0", "ingest", f, "--skip-invalid")
    assert rc == 0, (j, err)
    assert (j["received"], j["inserted"], j["failed"]) == (3, 0, 3), j
    [row] = runs(clean, "base_request_id = 'skip-0'")
    assert (row["received"], row["inserted"], row["failed"], row["code_name"]) == (3, 0, 3, "OK"), row
    assert clean.count() == 0


def test_skip_invalid_across_batches_sums_to_the_cli(clean, server, tmp_path):
    # invalid records first, between batches, inside one and last of all
    recs = [rec(1, "0"), rec(2, "1"), rec(3, "2"), rec(4, "x"), rec(5, "3"), rec(6, "4"),
            rec(7, "5"), rec(8, "-1"), rec(9, "6"), rec(10, "bad")]
    f = write_doc(tmp_path / "ten.json", recs)
    rc, j, err = cli_json(server, "--request-id", "skip-2", "ingest", f, "--skip-invalid",
                          "--batch", "2", "--inflight", "1")
    assert rc == 0, (j, err)
    assert (j["received"], j["inserted"], j["failed"]) == (10, 6, 4), j
    rows = runs(clean, "base_request_id = 'skip-2'")
    assert len(rows) == 3, rows
    assert sum(r["received"] for r in rows) == 10
    assert sum(r["failed"] for r in rows) == 4
    assert sum(r["inserted"] for r in rows) == 6


def test_request_id_base_finds_the_whole_import(clean, server, tmp_path):
    f = write_doc(tmp_path / "five.json", [rec(d, f"{d}.25") for d in range(1, 6)])
    rc, j, err = cli_json(server, "--request-id", "imp-42", "ingest", f, "--batch", "2")
    assert rc == 0, (j, err)
    assert j["request_id"] == "imp-42"
    rows = runs(clean, "base_request_id = 'imp-42'")
    assert sorted(r["request_id"] for r in rows) == ["imp-42-b1", "imp-42-b2", "imp-42-b3"]
    assert sum(r["inserted"] for r in rows) == 5
    # the log's lines carry the same ids
    lines = [ln for ln in server.log().splitlines() if "imp-42-b" in ln and "code=OK" in ln]
    assert len(lines) == 3, lines
    assert all("base_request_id=imp-42 " in ln for ln in lines), lines


def test_key_id_names_the_key_never_holds_it(clean, server, api_key):
    r1 = server.call(ingest=hx.ingest_records([("2026-04-01", "aws", "a100", "1")]))
    hx.assert_code(r1, "OK")
    r2 = server.call(key=NAMED_KEY, ingest=hx.ingest_records([("2026-04-02", "aws", "a100", "1")]))
    hx.assert_code(r2, "OK")
    [row1] = runs(clean, f"request_id = '{r1.request_id}'")
    [row2] = runs(clean, f"request_id = '{r2.request_id}'")
    assert row1["key_id"] == "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()[:8], row1
    assert row2["key_id"] == "ops-team", row2
    dump = clean.psql("SELECT row_to_json(r)::text FROM ingestion_runs r")
    assert not any(api_key in r[0] or NAMED_KEY in r[0] for r in dump)
    # the peer: where the call came from, as the log says it
    assert re.match(r"^127\.0\.0\.1(:\d+)?$", row1["peer"]), row1
    assert f"key_id=ops-team" in server.log()


def test_one_duration_in_reply_row_and_replay(clean, server):
    rid = hx.rid("dur")
    req = hx.ingest_records([("2026-05-01", "aws", "h100", "7.5"), ("2026-05-02", "aws", "h100", "8")])
    r1 = server.call(request_id=rid, ingest=req)
    hx.assert_code(r1, "OK")
    assert r1.ingest.duration_us > 0
    [row] = runs(clean, f"request_id = '{rid}' AND NOT replayed")
    assert row["duration_us"] == r1.ingest.duration_us, (row, r1.ingest)
    r2 = server.call(request_id=rid, ingest=req)
    hx.assert_code(r2, "OK")
    assert r2.ingest.replayed
    assert r2.ingest.duration_us == r1.ingest.duration_us
    replay_rows = runs(clean, f"request_id = '{rid}' AND replayed")
    assert [r["duration_us"] for r in replay_rows] == [r1.ingest.duration_us]


def test_failed_ingest_row_has_the_reply_duration(clean, server):
    rid = hx.rid("bad")
    r = server.call(request_id=rid, ingest=hx.ingest_records([("2026-13-01", "aws", "a100", "1")]))
    hx.assert_code(r, "INVALID_ARGUMENT")
    [row] = runs(clean, f"request_id = '{rid}'")
    assert row["duration_us"] == r.ingest.duration_us and row["code_name"] == "INVALID_ARGUMENT", row
    assert row["base_request_id"] == rid and row["key_id"].startswith("sha256:")


def test_client_failed_needs_skip_invalid(clean, server):
    r = server.call(ingest=pb.IngestRequest(
        records=pb.RecordBatch(records=[hx.cost_record(("2026-06-01", "aws", "a100", "1"))]),
        client_failed=3))
    hx.assert_code(r, "INVALID_ARGUMENT")
    assert "client_failed" in hx.violation_fields(r)

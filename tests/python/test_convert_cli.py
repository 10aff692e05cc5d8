"""heliox-ingest convert / ingest of billing files / sync (SERVICE.md sections 7
and 8) against a real server: the real FOCUS sample read in place from
../shared/samples/billing, the project's generated samples, bad bills, and
sync run twice."""

import json
import os
import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal

import pytest

import hxharness as hx

SAMPLES = os.path.join(os.environ.get("HX_SOURCE_DIR", ""), "..", "shared", "samples", "billing")
SPECIAL = os.path.join(SAMPLES, "focus", "focus_sample_1.0_special_rows.csv")
GEN = os.path.join(os.environ.get("HX_SOURCE_DIR", ""), "scripts", "gen_bills.py")


def cli(*args, key=None):
    p = hx.run_cli(list(args), key=key)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


# The top-level keys of a --json answer for a bill, in order: the stream report's
# (print_stream.c), then what the conversion adds (cmd_convert.c); sync puts "export" first.
STREAM_KEYS = ["code", "message", "request_id", "received", "inserted", "updated", "unchanged",
               "failed", "deleted", "duration_us", "records_per_s", "dry_run", "replayed",
               "resumable", "batches", "violations", "violations_total"]
CONV_KEYS = ["format", "mapping_version", "records", "report"]


def json_lines(so):
    """stdout as JSON Lines: each line exactly one JSON object, no key twice; returns
    [(keys in order, object)]."""
    out = []
    for line in so.splitlines():
        pairs = json.loads(line, object_pairs_hook=lambda kv: kv)  # raises on a second document
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        out.append((keys, json.loads(line)))
    return out


def one_json(so):
    """stdout holds exactly one JSON object, on one line."""
    docs = json_lines(so)
    assert len(docs) == 1 and so.endswith("\n"), so
    return docs[0]


def test_convert_real_focus_sample(tmp_path):
    """8 records and 3 windows, as derived by hand in tests/unit/test_convert.c."""
    out = tmp_path / "doc.json"
    rc, so, se = cli("--json", "convert", SPECIAL, "-o", str(out))
    assert rc == 0, se
    rep = json.loads(so)
    assert rep["code"] == "OK"
    assert rep["report"]["lines_read"] == 35 and rep["report"]["lines_counted"] == 10
    assert rep["report"]["lines_excluded"]["charge_category"] == 3
    assert len(rep["report"]["groups_not_sent"]) == 2
    doc = json.loads(out.read_text())
    assert doc["provenance"] == {"format": "focus-1.0", "name": "focus_sample_1.0_special_rows.csv",
                                 "mapping_version": "gpu-map-v1"}
    assert doc["replace"] == [
        {"provider": "aws", "from_date": "2024-09-04", "to_date": "2024-09-30"},
        {"provider": "azure", "from_date": "2024-09-03", "to_date": "2024-09-19"},
        {"provider": "oci", "from_date": "2024-09-03", "to_date": "2024-09-30"}]
    assert len(doc["cost_data"]) == 8
    # a10g: 2 + 1 + 2 + 2 + 2 + 2 = 11; m60: 1 + 1 = 2
    assert sum(Decimal(r["cost_usd"]) for r in doc["cost_data"]) == Decimal("13")
    assert {r["gpu_type"] for r in doc["cost_data"]} == {"a10g", "m60"}
    # the default text report goes to stderr, the document to stdout
    rc, so, se = cli("convert", SPECIAL)
    assert rc == 0 and "35 lines read, 10 counted, 8 records" in se
    assert json.loads(so)["cost_data"] == doc["cost_data"]


def test_convert_bad_bill_names_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,ProviderName,x_UsageType\n"
                   "2024-09-01T30:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge\n")
    rc, so, se = cli("convert", str(bad), "-o", str(tmp_path / "out.json"))
    assert rc == 3, se
    assert f"{bad}:2.1: ChargePeriodStart 2024-09-01T30:00:00Z is not a real time of day" in se
    assert not (tmp_path / "out.json").exists()


def test_ingest_real_focus_sample(clean, server):
    rc, so, se = cli("--url", server.url, "--json", "ingest", SPECIAL, key=server.key)
    assert rc == 0, (so, se)
    lines = [json.loads(x) for x in so.splitlines() if x.strip()]
    assert lines[-1]["code"] == "OK", lines
    rows = clean.rows()
    assert len(rows) == 8
    assert sum(r[3] for r in rows) == Decimal("13")
    assert ("2024-09-30", "aws", "m60", Decimal("1")) in rows


def test_ingest_generated_samples_as_one_export(clean, server, tmp_path):
    src = os.path.join(os.environ["HX_SOURCE_DIR"], "data", "samples")
    doc = tmp_path / "doc.json"
    rc, _, se = cli("convert", os.path.join(src, "focus_2026-01.csv"), "-o", str(doc))
    assert rc == 0, se
    want = {(r["date"], r["provider"], r["gpu_type"]): Decimal(r["cost_usd"])
            for r in json.loads(doc.read_text())["cost_data"]}
    # gzip, read by magic bytes whatever the name
    gz = tmp_path / "part.bin"
    with open(os.path.join(src, "focus_2026-01.csv"), "rb") as f:
        subprocess.run(["gzip", "-c"], stdin=f, stdout=open(gz, "wb"), check=True)
    rc, so, se = cli("--url", server.url, "ingest", str(gz), key=server.key)
    assert rc == 0, (so, se)
    got = {(d, p, g): c for d, p, g, c in clean.rows()}
    assert got == want


def test_sync_twice_sends_nothing_new(clean, server, tmp_path):
    d = tmp_path / "bills"
    (d / "2024-09").mkdir(parents=True)
    shutil.copy(SPECIAL, d / "2024-09" / "part1.csv")
    subprocess.run(["/usr/bin/python3", GEN, "cur2", "--lines", "300", "--seed", "3", "--month", "2026-02",
                    "-o", str(d / "cur-2026-02.csv")], check=True)
    os.utime(d / "2024-09", (1, 1))  # oldest first: the folder, then the file
    rc, so, se = cli("--url", server.url, "sync", str(d), key=server.key)
    assert rc == 0, (so, se)
    first = [x for x in so.splitlines() if x.strip()]
    assert first[0].startswith("2024-09: ") and first[1].startswith("cur-2026-02.csv: "), first
    n = clean.count()
    snap = clean.snapshot()
    assert n > 8
    rc, so2, se2 = cli("--url", server.url, "sync", str(d), key=server.key)
    assert rc == 0, (so2, se2)
    assert clean.snapshot() == snap, "the second sync wrote to cost_snapshots"
    # the same request ids (from the content): the server replays its earlier answers
    second = [x for x in so2.splitlines() if x.strip()]
    assert len(second) == 2
    for a, b in zip(first, second):
        rid = a.split("request_id=")[1].split()[0]
        assert rid.startswith("sync-") and f"request_id={rid}" in b
        assert "replayed" in b and "replayed" not in a, (a, b)


def test_billing_usage_errors_with_json_are_one_object(tmp_path):
    """A usage error of convert, sync or a bill's ingest options, with --json before or after the
    command: the one JSON object with "error": "usage" on stdout (as every other command gives),
    the message and the --help hint on stderr, exit 2; without --json, stdout stays empty."""
    cases = [
        (["convert", "--format", "bogus", SPECIAL], "--format must be auto, heliox, focus or aws-cur, not bogus"),
        (["convert"], "convert: give one or more FILEs (the parts of one export)"),
        (["sync"], "sync: give one DIR"),
        (["sync", str(tmp_path / "nowhere")], f"sync: cannot read {tmp_path / 'nowhere'}: No such file or directory"),
        (["ingest", "--format", "bogus", SPECIAL], "--format must be auto, heliox, focus or aws-cur, not bogus"),
        (["ingest", SPECIAL, "--gpu-map"], "option needs a value: --gpu-map"),
    ]
    for args, message in cases:
        for argv in (["--json"] + args, args[:1] + ["--json"] + args[1:]):
            rc, so, se = cli(*argv)
            assert rc == 2, (argv, so, se)
            keys, o = one_json(so)
            assert keys == ["code", "message", "request_id", "error", "violations"], (argv, keys)
            assert (o["code"], o["message"], o["error"]) == ("INVALID_ARGUMENT", message, "usage"), (argv, o)
            assert se.startswith(f"heliox-ingest: {message}\n") and "--help" in se, (argv, se)
        rc, so, se = cli(*args)
        assert (rc, so) == (2, "") and message in se, (args, so, se)


def test_sync_text_is_one_line_per_export_even_when_one_fails(clean, server, tmp_path):
    """sync without --json: stdout has exactly one line per export (SERVICE.md section 7). An
    export that fails says why on stderr, and its stdout line still ends, naming the failure, so
    the next export's line does not run on after it; the good export is sent."""
    d = tmp_path / "bills"
    d.mkdir()
    shutil.copy(SPECIAL, d / "a-good.csv")
    (d / "b-bad.csv").write_text("ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,"
                                 "ProviderName,x_UsageType\n"
                                 "2024-09-01T30:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge\n")
    (d / "c-bad.json").write_text('{"cost_data": ')
    os.utime(d / "a-good.csv", (1, 1))
    os.utime(d / "b-bad.csv", (2, 2))
    os.utime(d / "c-bad.json", (3, 3))
    rc, so, se = cli("--url", server.url, "sync", str(d), key=server.key)
    assert rc == 3, (so, se)
    lines = so.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("a-good.csv: ingest: OK "), lines
    assert lines[1] == "b-bad.csv: INVALID_ARGUMENT (exit 3); the error is on stderr", lines
    assert lines[2] == "c-bad.json: INVALID_ARGUMENT (exit 3); the error is on stderr", lines
    assert f"{d / 'b-bad.csv'}:2.1" in se and "c-bad.json" not in so.split("\n", 2)[1], se
    assert clean.count() == 8

    # the same with a GPU map that cannot be read: every export fails, each on its own line
    rc, so, se = cli("--url", server.url, "sync", "--gpu-map", str(tmp_path / "none.csv"), str(d),
                     key=server.key)
    assert rc == 2, (so, se)  # the first failure's status
    lines = so.splitlines()
    assert [x.split(": ", 1)[1] for x in lines[:2]] == ["usage error (exit 2); the error is on stderr"] * 2, lines
    assert len(lines) == 3 and "the GPU map cannot be used" in se, (so, se)


def test_sync_json_is_json_lines(clean, server, tmp_path):
    """sync --json: stdout is JSON Lines, one object per export with its name, the ingest
    result and the conversion report; a bad export is its own line with its violation path;
    ingest --json of a bill is one object."""
    d = tmp_path / "bills"
    (d / "2024-09").mkdir(parents=True)
    shutil.copy(SPECIAL, d / "2024-09" / "part1.csv")
    subprocess.run(["/usr/bin/python3", GEN, "cur2", "--lines", "300", "--seed", "3", "--month", "2026-02",
                    "-o", str(d / "cur-2026-02.csv")], check=True)
    (d / "zz-bad.csv").write_text("ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,"
                                  "ProviderName,x_UsageType\n"
                                  "2024-09-01T30:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge\n")
    os.utime(d / "2024-09", (1, 1))
    os.utime(d / "cur-2026-02.csv", (2, 2))
    rc, so, se = cli("--url", server.url, "--json", "sync", str(d), key=server.key)
    assert rc == 3, (so, se)  # the bad export's status; the others are sent
    keyed = json_lines(so)  # every line is one JSON object
    assert [k for k, _ in keyed] == [["export"] + STREAM_KEYS + CONV_KEYS] * 2 + [
        ["export", "code", "message", "violations"] + CONV_KEYS], keyed
    lines = [o for _, o in keyed]
    assert [x["export"] for x in lines] == ["2024-09", "cur-2026-02.csv", "zz-bad.csv"], lines
    focus, cur, bad = lines
    assert focus["code"] == "OK" and focus["request_id"].startswith("sync-"), focus
    assert focus["format"] == "focus-1.0" and focus["records"] == 8, focus
    assert focus["report"]["lines_counted"] > 0 and focus["replayed"] is False, focus
    assert cur["code"] == "OK" and cur["format"] == "aws-cur-2.0", cur
    assert bad["code"] == "INVALID_ARGUMENT", bad
    assert bad["violations"][0]["field"].endswith("zz-bad.csv:2.1"), bad
    rc, so2, _ = cli("--url", server.url, "--json", "sync", str(d), key=server.key)
    again = [json.loads(x) for x in so2.splitlines()]
    assert [x["request_id"] for x in again[:2]] == [focus["request_id"], cur["request_id"]]
    assert again[0]["replayed"] is True and again[1]["replayed"] is True, again

    rc, so, se = cli("--url", server.url, "--json", "ingest", SPECIAL, key=server.key)
    assert rc == 0, (so, se)
    keys, one = one_json(so)
    assert keys == STREAM_KEYS + CONV_KEYS, keys
    assert one["code"] == "OK" and one["records"] == 8 and "report" in one, one


def test_ingest_json_of_a_bill_that_fails_is_one_object(clean, server, tmp_path):
    """Each way a bill's ingest can fail still prints exactly one object on stdout: the
    stream's failure, a usage error of the JSON path, a bill that does not convert, no map."""
    rc, so, se = cli("--url", server.url, "--json", "ingest", SPECIAL, key="hx-wrong-key-0000")
    assert rc == 4, (so, se)
    keys, o = one_json(so)
    assert keys == STREAM_KEYS + CONV_KEYS, keys
    assert o["code"] == "UNAUTHENTICATED" and o["records"] == 8 and o["resumable"] is True, o
    assert o["batches"]["failed"][0]["code"] == "UNAUTHENTICATED", o

    rc, so, se = cli("--url", server.url, "--json", "ingest", "--batch", "abc", SPECIAL, key=server.key)
    assert rc == 2 and "--batch: 'abc'" in se, (so, se)
    keys, o = one_json(so)
    assert keys == ["code", "message", "request_id", "error", "violations"] + CONV_KEYS, keys
    assert o["code"] == "INVALID_ARGUMENT" and o["error"] == "usage" and o["records"] == 8, o

    bad = tmp_path / "bad.csv"
    bad.write_text("ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,ProviderName,x_UsageType\n"
                   "2024-09-01T30:00:00Z,Usage,1,USD,AWS,BoxUsage:g5.xlarge\n")
    rc, so, se = cli("--url", server.url, "--json", "ingest", str(bad), key=server.key)
    assert rc == 3, (so, se)
    keys, o = one_json(so)
    assert keys == ["code", "message", "violations"] + CONV_KEYS, keys
    assert o["violations"][0]["field"] == f"{bad}:2.1", o

    # A map that cannot be read: the answer names it, as JSON like every other answer
    rc, so, se = cli("--url", server.url, "--json", "ingest", "--gpu-map", str(tmp_path / "none.csv"),
                     SPECIAL, key=server.key)
    assert rc == 2 and se == "", (so, se)
    keys, o = one_json(so)
    assert keys == ["code", "message", "violations"], keys
    assert (o["code"], o["message"]) == ("INVALID_ARGUMENT", "the GPU map cannot be used"), o
    assert [v["field"] for v in o["violations"]] == [str(tmp_path / "none.csv")], o
    assert "No such file" in o["violations"][0]["description"], o
    assert clean.count() == 0

    # --help beside a bill: the help of ingest, as without one; nothing converted or sent
    rc, so, se = cli("--url", server.url, "--json", "ingest", "--help", SPECIAL, key=server.key)
    assert rc == 0 and so.startswith("usage: heliox-ingest [options] ingest") and se == "", (so, se)


def test_restated_export_replaces_its_window(clean, server):
    """The special rows, then head200 as a later delivery of AWS's September: head200's window
    (aws 2024-09-01..30) is the whole truth, so of the 8 AWS rows only 2024-09-24 m60 stays
    (cost 1.00 both times: unchanged) and 7 are deleted; GPU-hours travel with the records."""
    rc, so, se = cli("--url", server.url, "ingest", SPECIAL, key=server.key)
    assert rc == 0, (so, se)
    assert clean.scalar("SELECT gpu_hours::text FROM cost_snapshots WHERE date = '2024-09-30'") == "0.686667"
    head = os.path.join(SAMPLES, "focus", "focus_sample_1.0_head200.csv")
    rc, so, se = cli("--url", server.url, "--json", "ingest", head, key=server.key)
    assert rc == 0, (so, se)
    j = json.loads(so.splitlines()[-1])
    assert j["code"] == "OK" and int(j["deleted"]) == 7 and int(j["unchanged"]) == 1, j
    assert clean.rows() == [("2024-09-24", "aws", "m60", Decimal("1"))]
    # --no-replace: upsert only, nothing deleted
    rc, so, se = cli("--url", server.url, "--json", "ingest", "--no-replace", SPECIAL, key=server.key)
    assert rc == 0, (so, se)
    assert int(json.loads(so.splitlines()[-1]).get("deleted", 0)) == 0
    assert clean.count() == 8


# ---- a bill whose ingest never runs: the one object says why -------------------------------

# SERVICE.md section 7: the exit status a --json object's code goes with. 2 is a usage error,
# whose object is INVALID_ARGUMENT with "error": "usage" (output.c); 3 the same code without.
EXIT_CODES = {1: {"INTERNAL", "UNKNOWN", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "ABORTED",
                  "ALREADY_EXISTS", "NOT_FOUND", "OUT_OF_RANGE", "UNIMPLEMENTED", "DATA_LOSS",
                  "CANCELLED"},
              2: {"INVALID_ARGUMENT"}, 3: {"INVALID_ARGUMENT"},
              4: {"UNAUTHENTICATED", "PERMISSION_DENIED"}, 5: {"UNAVAILABLE", "DEADLINE_EXCEEDED"}}


def assert_failed_as(rc, o):
    """o is a failure's object and its code is the one the exit status rc stands for."""
    assert o["code"] != "OK" and o["code"] in EXIT_CODES[rc], (rc, o)
    assert (o.get("error") == "usage") == (rc == 2), (rc, o)


def big_bill(path, records):
    """A FOCUS bill of `records` GPU lines, each its own day and GPU type of AWS (16 types,
    one line a day each), so it converts to exactly `records` records and one replace window."""
    fams = ["g3", "g4ad", "g4dn", "g5", "g5g", "g6", "g6e", "g7", "g7e", "p2", "p3", "p4d", "p5",
            "p5e", "p6-b200", "p6-b300"]
    d0 = date(2016, 1, 1)
    with open(path, "w") as f:
        f.write("ChargePeriodStart,ChargeCategory,EffectiveCost,BillingCurrency,ProviderName,"
                "x_UsageType\n")
        for i in range(records):
            day = d0 + timedelta(days=i // len(fams))
            f.write(f"{day.isoformat()}T00:00:00Z,Usage,1,USD,AWS,"
                    f"BoxUsage:{fams[i % len(fams)]}.xlarge\n")


def test_bill_without_a_temp_file_says_so(clean, server, tmp_path):
    """The converted document cannot be written to a temporary file (TMPDIR does not exist):
    nothing is sent, the exit status is 1, and ingest --json's one object (sync --json's one
    line) carries that failure and names the directory, not the conversion's OK."""
    gone = tmp_path / "no-such-dir"
    env = {"TMPDIR": str(gone)}
    p = hx.run_cli(["--url", server.url, "--json", "ingest", SPECIAL], key=server.key, env=env)
    so, se = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 1, (so, se)
    keys, o = one_json(so)
    assert_failed_as(p.returncode, o)
    assert str(gone) in o["message"] and "temporary file" in o["message"], o
    assert keys[:2] == ["code", "message"] and keys[-4:] == CONV_KEYS, keys
    assert o["records"] == 8 and o["format"] == "focus-1.0", o
    assert str(gone) in se, se

    # without --json: the same cause on stderr, nothing on stdout
    p = hx.run_cli(["--url", server.url, "ingest", SPECIAL], key=server.key, env=env)
    assert p.returncode == 1, p
    se = p.stderr.decode()
    assert "cannot create a temporary file" in se and str(gone) in se, se
    assert p.stdout.decode() == "", p.stdout

    d = tmp_path / "bills"
    d.mkdir()
    shutil.copy(SPECIAL, d / "sept.csv")
    p = hx.run_cli(["--url", server.url, "--json", "sync", str(d)], key=server.key, env=env)
    so, se = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 1, (so, se)
    keys, o = one_json(so)
    assert keys[0] == "export" and o["export"] == "sept.csv", keys
    assert_failed_as(p.returncode, o)
    assert str(gone) in o["message"], o
    assert clean.count() == 0


def test_bill_over_the_one_request_limit_says_so(clean, server, tmp_path):
    """With replace windows an export goes as one request of at most 50,000 records; 50,016
    are refused before anything is sent: exit 2 (usage: --no-replace or fewer days), and the one
    object says so, in ingest --json and in sync --json."""
    d = tmp_path / "bills"
    d.mkdir()
    bill = d / "big.csv"
    big_bill(bill, 50016)
    rc, so, se = cli("--url", server.url, "--json", "ingest", str(bill), key=server.key)
    assert rc == 2, (so, se)
    keys, o = one_json(so)
    assert_failed_as(rc, o)
    assert "50016" in o["message"] and "50000" in o["message"], o
    assert "--no-replace" in o["message"], o
    assert keys[-4:] == CONV_KEYS and o["records"] == 50016, keys

    rc, so, se = cli("--url", server.url, "ingest", str(bill), key=server.key)
    assert rc == 2 and so == "", (so, se)
    assert "50016 records" in se and "(50000)" in se and "--no-replace" in se, se

    rc, so, se = cli("--url", server.url, "--json", "sync", str(d), key=server.key)
    assert rc == 2, (so, se)
    keys, o = one_json(so)
    assert keys[0] == "export" and o["export"] == "big.csv", keys
    assert_failed_as(rc, o)
    assert "50000" in o["message"], o
    assert clean.count() == 0

"""The command-line client heliox-ingest against a real server (SERVICE.md
section 7): output, --json, exit statuses, stdin, and that the key is never
printed."""

import json
import re
import time
from decimal import Decimal

import pytest

import hxharness as hx

BAD_DOC = json.dumps({"cost_data": [
    {"date": "2026-02-01", "provider": "aws", "gpu_type": "a100", "cost_usd": "10"},
    {"date": "2026-02-30", "provider": "aws", "gpu_type": "a100", "cost_usd": "10"},
    {"date": "2026-02-03", "provider": "aws", "gpu_type": "a100", "cost_usd": 0},
]}).encode()


class Cli:
    def __init__(self, server, tmp):
        self.server = server
        self.tmp = tmp

    def run(self, *args, key=..., url=..., stdin=None, env=None, timeout=120):
        """Runs heliox-ingest [--url URL] ARGS with ADMIN_API_KEY=key; checks
        that no key (the server's, or the one given) is ever printed."""
        if key is ...:
            key = self.server.key
        pre = [] if url is None else ["--url", self.server.url if url is ... else url]
        p = hx.run_cli(pre + list(args), key=key, stdin=stdin, env=env, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        for k in {self.server.key, key} - {None, ""}:
            assert k not in out and k not in err, f"the API key was printed by {args}"
        for a in args:
            if isinstance(a, str) and len(a) >= 16 and a.startswith("hx-"):
                assert a not in out and a not in err, "a key given on the command line was printed"
        return p.returncode, out, err

    def json(self, *args, expect_rc=0, **kw):
        rc, out, err = self.run("--json", *args, **kw)
        assert rc == expect_rc, f"exit {rc}, expected {expect_rc}; stdout={out!r} stderr={err!r}"
        try:
            return json.loads(out, parse_float=Decimal)
        except ValueError:
            pytest.fail(f"--json printed something that is not one JSON object: {out!r}")


@pytest.fixture
def cli(server, tmp_path):
    return Cli(server, tmp_path)


def number_before_or_after(text, word):
    m = re.search(r"\b%s\b[=: ]+(\d+)" % word, text) or re.search(r"(\d+)\s+%s\b" % word, text)
    assert m, f"no count for {word!r} in {text!r}"
    return int(m.group(1))


INGEST_KEYS = {"code", "message", "request_id", "received", "inserted", "updated", "unchanged",
               "failed", "duration_us", "violations"}


# ------------------------------------------------------------- ingest --

def test_ingest_mock_text_twice(clean, cli):
    rc, out, err = cli.run("ingest", "--mock")
    assert rc == 0, (out, err)
    assert number_before_or_after(out, "inserted") == 28, out
    rc, out, err = cli.run("ingest", "--mock")
    assert rc == 0, (out, err)
    assert number_before_or_after(out, "inserted") == 0, out
    assert number_before_or_after(out, "unchanged") == 28, out
    assert clean.count() == 28


def test_ingest_mock_json(clean, cli):
    j = cli.json("ingest", "--mock")
    assert INGEST_KEYS <= set(j), sorted(j)
    assert j["code"] == "OK"
    assert isinstance(j["request_id"], str) and j["request_id"]
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"], j["failed"]) == (28, 28, 0, 0, 0)
    assert isinstance(j["duration_us"], int) and j["duration_us"] > 0
    assert j["violations"] == []
    j = cli.json("ingest", "--mock")
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"], j["failed"]) == (28, 0, 0, 28, 0)


def test_ingest_file(clean, cli, tmp_path):
    f = tmp_path / "export.json"
    raw_bytes, _ = hx.load_mock()
    f.write_bytes(raw_bytes)
    j = cli.json("ingest", str(f))
    assert (j["code"], j["received"], j["inserted"]) == ("OK", 28, 28)
    assert clean.count() == 28


def test_ingest_bad_file_exit_3_with_paths(clean, cli, tmp_path):
    f = tmp_path / "bad.json"
    f.write_bytes(BAD_DOC)
    rc, out, err = cli.run("ingest", str(f))
    assert rc == 3, (rc, out, err)
    assert "cost_data[1].date" in out + err
    assert "cost_data[2].cost_usd" in out + err
    j = cli.json("ingest", str(f), expect_rc=3)
    assert j["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in j["violations"]] == ["cost_data[1].date", "cost_data[2].cost_usd"]
    assert all(v["description"] for v in j["violations"])
    assert clean.count() == 0


def test_ingest_not_json_exit_3(clean, cli, tmp_path):
    f = tmp_path / "bad.json"
    f.write_bytes(b"this is not json")
    j = cli.json("ingest", str(f), expect_rc=3)
    assert [v["field"] for v in j["violations"]] == ["$"]


def test_ingest_stdin(clean, cli):
    raw_bytes, _ = hx.load_mock()
    j = cli.json("ingest", "-", stdin=raw_bytes)
    assert (j["code"], j["received"], j["inserted"]) == ("OK", 28, 28)
    rc, out, err = cli.run("ingest", "-", stdin=BAD_DOC)
    assert rc == 3, (out, err)
    assert "cost_data[1].date" in out + err


def test_dry_run(clean, cli):
    j = cli.json("ingest", "--mock", "--dry-run")
    assert (j["code"], j["received"], j["inserted"]) == ("OK", 28, 28)
    assert j["dry_run"] is True
    assert clean.count() == 0


def test_skip_invalid(clean, cli, tmp_path):
    f = tmp_path / "bad.json"
    f.write_bytes(BAD_DOC)
    j = cli.json("ingest", str(f), "--skip-invalid")
    assert (j["code"], j["received"], j["inserted"], j["failed"]) == ("OK", 3, 1, 2)
    assert [v["field"] for v in j["violations"]] == ["cost_data[1].date", "cost_data[2].cost_usd"]
    assert clean.count() == 1


def test_request_id_is_sent_and_echoed(clean, cli):
    j = cli.json("--request-id", "cli-fixed-id-1", "ingest", "--mock")
    assert j["request_id"] == "cli-fixed-id-1"
    j2 = cli.json("--request-id", "cli-fixed-id-1", "ingest", "--mock")
    assert j2["request_id"] == "cli-fixed-id-1"
    assert j2["replayed"] is True
    assert (j2["inserted"], j2["unchanged"]) == (28, 0)


# ------------------------------------------------------- exit statuses --

def test_wrong_key_exit_4(cli):
    wrong = "hx-wrong-" + "z" * 30
    rc, out, err = cli.run("health", key=wrong)
    assert rc == 4, (rc, out, err)
    rc, out, err = cli.run("--api-key", wrong, "ingest", "--mock", key=None)
    assert rc == 4, (rc, out, err)
    j = cli.json("health", key=wrong, expect_rc=4)
    assert j["code"] == "UNAUTHENTICATED"
    assert j["message"] == "invalid api_key"


def test_key_from_option(cli):
    rc, out, err = cli.run("--api-key", cli.server.key, "health", key=None)
    assert rc == 0, (out, err)


def test_unreachable_exit_5(cli):
    url = f"tcp://127.0.0.1:{hx.free_port()}"
    t0 = time.monotonic()
    rc, out, err = cli.run("--timeout", "500", "health", url=url)
    assert rc == 5, (rc, out, err)
    assert time.monotonic() - t0 < 10
    rc, out, err = cli.run("--timeout", "500", "ingest", "--mock", url=url)
    assert rc == 5, (rc, out, err)


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["--bogus-option", "health"],
    ["ingest"],
    ["ingest", "--mock", "extra.json"],
    ["summary", "--group-by", "colour"],
    ["--timeout", "abc", "health"],
    ["health", "--dry-run"],
], ids=["nothing", "unknown_command", "unknown_option", "ingest_no_source", "ingest_two_sources",
        "bad_group_by", "bad_timeout", "option_of_other_command"])
def test_bad_usage_exit_2(cli, args):
    rc, out, err = cli.run(*args)
    assert rc == 2, (args, rc, out, err)
    assert err.strip(), "a usage error must say why on stderr"


def test_no_key_at_all_is_usage_error(cli):
    rc, out, err = cli.run("health", key=None)
    # refused before sending (usage) or by the server (UNAUTHENTICATED)
    assert rc in (2, 4), (rc, out, err)
    assert "key" in err.lower()


# ------------------------------------------------------ health, summary --

def test_health(cli):
    rc, out, err = cli.run("health")
    assert rc == 0, (out, err)
    j = cli.json("health")
    assert j["code"] == "OK"
    assert j["serving"] is True and j["database_ok"] is True
    assert isinstance(j["version"], str) and j["version"]


def test_summary_group_by_gpu_type(clean, cli):
    assert cli.json("ingest", "--mock")["inserted"] == 28
    _, doc = hx.load_mock()
    want = {}
    for r in doc["cost_data"]:
        want.setdefault(r["gpu_type"].lower(), []).append(Decimal(r["cost_usd"]))
    j = cli.json("summary", "--group-by", "gpu_type")
    assert j["code"] == "OK"
    rows = j["rows"]
    assert sorted(r["gpu_type"] for r in rows) == sorted(want), rows
    for r in rows:
        costs = want[r["gpu_type"]]
        assert int(r["records"]) == len(costs) == 14
        assert Decimal(str(r["total_usd"])) == sum(costs)
        assert Decimal(str(r["min_usd"])) == min(costs)
        assert Decimal(str(r["max_usd"])) == max(costs)
        assert Decimal(str(r["avg_usd"])) == hx.round2(sum(costs) / len(costs))
        assert r.get("provider", "") == "" and r.get("date", "") == ""
    assert sum(Decimal(str(r["total_usd"])) for r in rows) == Decimal("51185.19")


def test_summary_text_and_filters(clean, cli):
    assert cli.json("ingest", "--mock")["inserted"] == 28
    rc, out, err = cli.run("summary")
    assert rc == 0, (out, err)
    assert "51185.19" in out, out
    j = cli.json("summary", "--from", "2026-01-01", "--to", "2026-01-02", "--provider", "AWS",
                 "--gpu-type", "H100")
    assert len(j["rows"]) == 1
    _, doc = hx.load_mock()
    costs = [Decimal(r["cost_usd"]) for r in doc["cost_data"]
             if r["gpu_type"] == "H100" and r["date"] in ("2026-01-01", "2026-01-02")]
    assert int(j["rows"][0]["records"]) == 2
    assert Decimal(str(j["rows"][0]["total_usd"])) == sum(costs)

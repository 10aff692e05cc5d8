"""`heliox-ingest ingest FILE` on exports of any size (clients/stream/): the
file is checked whole, then sent as RecordBatch requests of --batch records,
--inflight at a time, each with request_id BASE-b<k>. Real server, real
Postgres (one cluster and one server for the module, as conftest.py sets up).

What must hold: counts exact across batches; all or nothing for the whole
file (a bad record anywhere = nothing sent, not one request); keys unique
across the whole file; paths into the original file; whole batches only after
an interruption, and the same --request-id resumes; bounded memory."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import tempfile
import time
from decimal import Decimal

import pytest

import hxharness as hx

DAY0 = 738000  # an ordinal: 2021-07-30


def rec_key(i):
    """The key of record i: 8 providers a day, one GPU type."""
    import datetime
    day = datetime.date.fromordinal(DAY0 + i // 8).isoformat()
    return day, f"p{i % 8}", "g"


def rec_cost(i, gen=0):
    """Exact decimal text of record i's cost; gen changes every cost."""
    return f"{1 + (i * 7 + gen * 13) % 99991}.{(i + gen) % 100:02d}"


def write_export(path, n, gen=0, bad=None, raw=None, currency='"USD"', indent=False):
    """Writes an export of n records to path, streaming (a million records
    never sit in a list). bad: {index: (field, json_value_text)} to replace
    one field; raw: {index: element_text} to replace a whole element.
    Returns the exact total of the valid costs written."""
    bad = bad or {}
    raw = raw or {}
    total = Decimal(0)
    sep = ",\n  " if indent else ","
    with open(path, "w", buffering=1 << 20) as f:
        f.write('{"export_id": "t", "currency": %s, "cost_data": [' % currency)
        for i in range(n):
            if i:
                f.write(sep)
            if i in raw:
                f.write(raw[i])
                continue
            d, p, g = rec_key(i)
            c = rec_cost(i, gen)
            fields = {"date": f'"{d}"', "provider": f'"{p}"', "gpu_type": f'"{g}"', "cost_usd": f'"{c}"'}
            if i in bad:
                field, value = bad[i]
                fields[field] = value
            else:
                total += Decimal(c)
            f.write("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}")
        f.write("]}\n")
    return total


class Cli:
    def __init__(self, server):
        self.server = server

    def run(self, *args, stdin=None, timeout=300):
        p = hx.run_cli(["--url", self.server.url] + list(args), key=self.server.key, stdin=stdin,
                       timeout=timeout)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        assert self.server.key not in out + err, "the API key was printed"
        return p.returncode, out, err

    def json(self, *args, expect_rc=0, **kw):
        rc, out, err = self.run("--json", *args, **kw)
        assert rc == expect_rc, f"exit {rc}, expected {expect_rc}: stdout={out[-3000:]!r} stderr={err[-3000:]!r}"
        try:
            j = json.loads(out)
        except ValueError:
            pytest.fail(f"--json printed something that is not one JSON object: {out[-3000:]!r}")
        assert j["inserted"] + j["updated"] + j["unchanged"] + j["failed"] == j["received"], j
        return j


@pytest.fixture
def cli(server):
    return Cli(server)


def db_totals(pg):
    n, s = pg.psql("SELECT count(*), coalesce(sum(cost_usd), 0) FROM cost_snapshots")[0]
    return int(n), Decimal(s)


def runs_count(pg):
    return pg.count("ingestion_runs")


def fields(j):
    return [v["field"] for v in j["violations"]]


# ------------------------------------------------------------ counts --

def test_counts_exact_across_batches(clean, cli, tmp_path):
    f = tmp_path / "e.json"
    total = write_export(f, 50000)
    j = cli.json("--request-id", hx.rid("s1"), "ingest", str(f), "--batch", "1000")
    assert j["code"] == "OK", j
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"], j["failed"]) == (50000, 50000, 0, 0, 0)
    assert j["batches"]["size"] == 1000
    assert j["batches"]["total"] == j["batches"]["committed"] == 50
    assert j["batches"]["failed"] == [] and j["violations"] == []
    assert db_totals(clean) == (50000, total)
    # one request per batch, named BASE-b<k>
    ids = sorted(r[0] for r in clean.psql("SELECT request_id FROM ingestion_runs"))
    assert ids == sorted(f"{j['request_id']}-b{k}" for k in range(1, 51))

    j = cli.json("ingest", str(f), "--batch", "1000", "--inflight", "3")
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"]) == (50000, 0, 0, 50000)
    assert j["replayed"] is False  # a fresh request id: run again, nothing to write

    total2 = write_export(f, 50000, gen=1)
    j = cli.json("ingest", str(f), "--batch", "1000")
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"]) == (50000, 0, 50000, 0)
    assert db_totals(clean) == (50000, total2)


def test_text_output_and_default_batch(clean, cli, tmp_path):
    f = tmp_path / "e.json"
    write_export(f, 12000, indent=True)
    rc, out, err = cli.run("--request-id", "text-base-1", "ingest", str(f))
    assert rc == 0, (out, err)
    assert "request_id=text-base-1" in out
    assert re.search(r"\breceived=12000 inserted=12000 updated=0 unchanged=0 failed=0\b", out), out
    assert re.search(r"\bbatches=3\b", out), out  # 5000 a batch by default
    assert err == ""  # no progress bar when stderr is not a terminal


# -------------------------------------------------- all or nothing --

def test_bad_record_deep_in_file_sends_nothing(clean, cli, tmp_path):
    f = tmp_path / "bad.json"
    write_export(f, 50000, bad={43210: ("cost_usd", '"-5"')})
    rc, out, err = cli.run("ingest", str(f), "--batch", "1000")
    assert rc == 3, (rc, out, err)
    assert "cost_data[43210].cost_usd" in err, err
    assert "nothing was sent" in err
    j = cli.json("ingest", str(f), "--batch", "1000", expect_rc=3)
    assert j["code"] == "INVALID_ARGUMENT"
    assert fields(j) == ["cost_data[43210].cost_usd"]
    assert j["violations"][0]["description"] == "must be greater than 0"
    assert (j["received"], j["failed"], j["inserted"]) == (50000, 50000, 0)
    assert j["batches"]["sent"] == 0 and j["batches"]["committed"] == 0
    assert clean.count() == 0
    assert runs_count(clean) == 0, "a request reached the server"


def test_every_violation_listed_with_a_cap(clean, cli, tmp_path):
    f = tmp_path / "bad.json"
    bad = {i: ("date", '"2026-02-30"') for i in range(100, 30000, 20)}  # 1495 bad dates
    bad[29999] = ("provider", '""')
    write_export(f, 30000, bad=bad)
    j = cli.json("ingest", str(f), expect_rc=3)
    assert j["violations_total"] == 1496
    assert len(j["violations"]) == 1000  # listed up to the cap, all counted
    assert fields(j)[:2] == ["cost_data[100].date", "cost_data[120].date"]
    assert "first 1000 listed" in j["message"]
    assert clean.count() == 0 and runs_count(clean) == 0


@pytest.mark.parametrize("doc,field", [
    ('{"cost_data": [{"date": "2026-01-01", "provider": "a", "gpu_type": "g", "cost_usd": 1}', "$"),
    ('{"cost_data": [{"date": "2026-01-01", "provider": "a", "gpu_type": "g", "cost_usd": 1}]} x', "$"),
    ('[{"date": "2026-01-01", "provider": "a", "gpu_type": "g", "cost_usd": 1}]', "$"),
    ('{"cost_data": []}', "cost_data"),
    ('{"currency": "USD"}', "cost_data"),
    ('{"cost_data": {"0": {}}}', "cost_data"),
], ids=["truncated", "trailing_junk", "top_level_array", "empty", "missing", "not_array"])
def test_document_level_problems(clean, cli, tmp_path, doc, field):
    f = tmp_path / "d.json"
    f.write_text(doc)
    j = cli.json("ingest", str(f), "--skip-invalid", expect_rc=3)  # even with --skip-invalid
    assert fields(j) == [field], j
    assert runs_count(clean) == 0


def test_currency_after_cost_data_stops_everything(clean, cli, tmp_path):
    """The server would refuse this document whole; so does the stream, though
    the currency comes after 20,000 records."""
    f = tmp_path / "eur.json"
    with open(f, "w") as out:
        items = ",".join('{"date":"%s","provider":"%s","gpu_type":"%s","cost_usd":"1.00"}' % rec_key(i)
                         for i in range(20000))
        out.write('{"cost_data": [%s], "currency": "EUR"}' % items)
    j = cli.json("ingest", str(f), "--batch", "1000", "--skip-invalid", expect_rc=3)
    assert fields(j) == ["currency"]
    assert clean.count() == 0 and runs_count(clean) == 0


def test_duplicates_across_batches(clean, cli, tmp_path):
    f = tmp_path / "dup.json"
    d, p, g = rec_key(7)
    dup = '{"date":"%s","provider":" %s ","gpu_type":"%s","cost_usd":"2.50"}' % (d, p.upper(), g.upper())
    write_export(f, 20000, raw={15007: dup})  # batch 16 repeats a key of batch 1
    j = cli.json("ingest", str(f), "--batch", "1000", expect_rc=3)
    assert j["violations"] == [{"field": "cost_data[15007]", "description": "duplicate of cost_data[7]"}]
    assert clean.count() == 0 and runs_count(clean) == 0
    j = cli.json("ingest", str(f), "--batch", "1000", "--skip-invalid")
    assert (j["received"], j["inserted"], j["failed"]) == (20000, 19999, 1)
    assert fields(j) == ["cost_data[15007]"]
    assert clean.count() == 19999
    # the first one won
    assert clean.scalar(f"SELECT cost_usd::text FROM cost_snapshots WHERE date = '{d}' "
                        f"AND provider = '{p}'") == "%s" % Decimal(rec_cost(7)).quantize(Decimal("0.000001"))


# ----------------------------------------------------- skip, dry run --

def test_skip_invalid_across_batches(clean, cli, tmp_path):
    f = tmp_path / "mixed.json"
    bad = {5: ("cost_usd", "0"), 12345: ("date", '"2026-13-01"'), 29999: ("gpu_type", "null"),
           30000: ("cost_usd", '"1.1234567"')}
    d, p, g = rec_key(3)
    raw = {40000: '{"date":"%s","provider":"%s","gpu_type":"%s","cost_usd":"9"}' % (d, p, g),
           40001: '"not an object"'}
    total = write_export(f, 50000, bad=bad, raw=raw)
    j = cli.json("ingest", str(f), "--batch", "1000", "--skip-invalid")
    assert j["code"] == "OK", j
    assert (j["received"], j["inserted"], j["failed"]) == (50000, 49994, 6)
    assert fields(j) == ["cost_data[5].cost_usd", "cost_data[12345].date", "cost_data[29999].gpu_type",
                         "cost_data[30000].cost_usd", "cost_data[40000]", "cost_data[40001]"]
    assert j["violations"][4]["description"] == "duplicate of cost_data[3]"
    assert j["batches"]["total"] == 50  # 49994 valid records, 1000 a batch
    # the valid rows, every one, with their exact costs
    assert db_totals(clean) == (49994, total)


def test_dry_run_across_batches(clean, cli, tmp_path):
    f = tmp_path / "e.json"
    write_export(f, 30000)
    j = cli.json("ingest", str(f), "--batch", "1000", "--dry-run")
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"]) == (30000, 30000, 0, 0)
    assert j["dry_run"] is True and j["batches"]["committed"] == 30
    assert clean.count() == 0
    cli.json("ingest", str(f), "--batch", "7000")
    snap = clean.snapshot()
    write_export(f, 30000, bad={i: ("cost_usd", '"7.77"') for i in range(0, 30000, 3)})
    j = cli.json("ingest", str(f), "--batch", "1000", "--dry-run")
    assert (j["inserted"], j["updated"], j["unchanged"]) == (0, 10000, 20000)
    assert clean.snapshot() == snap, "a dry run wrote"


# -------------------------------------------- interruption, resume --

def wait_stable_count(pg, seconds=3.0):
    """The row count once it stops moving (the server finishes a batch it
    was given before the client died)."""
    last, since = -1, time.monotonic()
    while True:
        n = pg.count()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return n
        time.sleep(0.1)


def first_rows_are_whole_batches(pg, n_rows, batch):
    """Rows are exactly records 0..n_rows-1 of the file: whole batches, in order."""
    assert n_rows % batch == 0, f"{n_rows} rows is not a whole number of {batch}-record batches"
    if n_rows == 0:
        return
    d_last = rec_key(n_rows - 1)[0]
    d_next = rec_key(n_rows)[0]
    # batch sizes are multiples of 8 here, so batches end on a day boundary
    assert d_last != d_next
    assert pg.scalar(f"SELECT max(date)::text FROM cost_snapshots") == d_last


def test_killed_client_leaves_whole_batches_and_resumes(clean, cli, server, tmp_path):
    f = tmp_path / "e.json"
    total = write_export(f, 100000)
    base = hx.rid("kill")
    args = [hx.CLI_BIN, "--url", server.url, "--request-id", base, "ingest", str(f), "--batch", "200",
            "--inflight", "1"]
    env = dict(os.environ, ADMIN_API_KEY=server.key)
    p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while clean.count() < 2000 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert p.poll() is None, "the CLI finished before it could be killed: make the file bigger"
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    n = wait_stable_count(clean)
    assert 2000 <= n < 100000, n
    first_rows_are_whole_batches(clean, n, 200)

    j = cli.json("--request-id", base, "ingest", str(f), "--batch", "200", "--inflight", "1")
    assert j["code"] == "OK", j
    # the committed batches were answered from the first run, with its counts
    assert j["batches"]["replayed"] == n // 200
    assert (j["received"], j["inserted"], j["updated"], j["unchanged"]) == (100000, 100000, 0, 0)
    assert db_totals(clean) == (100000, total)
    # once more: every batch replayed, nothing run again, nothing written
    snap = clean.snapshot()
    j = cli.json("--request-id", base, "ingest", str(f), "--batch", "200", "--inflight", "4")
    assert j["batches"]["replayed"] == 500 and j["replayed"] is True
    assert (j["inserted"], j["unchanged"]) == (100000, 0)
    assert clean.snapshot() == snap


def test_interrupted_client_stops_cleanly_and_resumes(clean, cli, server, tmp_path):
    """Ctrl-C: no new batch, the ones in flight are waited for, and the
    output says what committed and how to resume."""
    f = tmp_path / "e.json"
    total = write_export(f, 100000)
    base = hx.rid("int")
    args = [hx.CLI_BIN, "--url", server.url, "--json", "--request-id", base, "ingest", str(f),
            "--batch", "200", "--inflight", "2"]
    p = subprocess.Popen(args, env=dict(os.environ, ADMIN_API_KEY=server.key), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while clean.count() < 2000 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.02)
    assert p.poll() is None, "the CLI finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1, (p.returncode, out, err)
    j = json.loads(out)
    assert (j["code"], j["message"], j["resumable"]) == ("CANCELLED", "interrupted", True), j
    n = clean.count()  # the batches in flight were waited for: nothing moves now
    assert n == j["batches"]["committed"] * 200 == j["inserted"], (n, j)
    first_rows_are_whole_batches(clean, n, 200)
    assert wait_stable_count(clean, 1.0) == n
    j = cli.json("--request-id", base, "ingest", str(f), "--batch", "200", "--inflight", "2")
    assert j["batches"]["replayed"] == n // 200
    assert (j["received"], j["inserted"]) == (100000, 100000)
    assert db_totals(clean) == (100000, total)


def test_server_stopped_mid_run_then_resume(pg, api_key, tmp_path):
    """A server that goes away: the batch in flight fails with its range, no
    new batch is sent, the output says how to resume, and resuming works."""
    srv = hx.Server(pg.conninfo, keys=[api_key], log_level="info")
    try:
        srv.start()  # first: it creates the tables when this test runs alone
        pg.truncate()
        f = tmp_path / "e.json"
        total = write_export(f, 40000)
        base = hx.rid("stop")
        args = [hx.CLI_BIN, "--url", srv.url, "--timeout", "3000", "--request-id", base, "ingest", str(f),
                "--batch", "400", "--inflight", "2"]
        env = dict(os.environ, ADMIN_API_KEY=api_key)
        p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while pg.count() < 4000 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.02)
        assert p.poll() is None, "the CLI finished before the server could be stopped"
        srv.stop()  # SIGTERM: in-flight requests finish, then it exits
        out, err = p.communicate(timeout=60)
        out, err = out.decode(), err.decode()
        assert p.returncode == 5, (p.returncode, out, err)
        m = re.search(r"batch (\d+) of 100 \(cost_data\[(\d+)\.\.(\d+)\]\) failed", err)
        assert m, err
        k, first, last = map(int, m.groups())
        assert (first, last) == ((k - 1) * 400, k * 400 - 1)
        # only the batches in flight failed: none was sent after the first failure
        assert 1 <= err.count("(cost_data[") <= 2, err
        m = re.search(r"(\d+) of 100 batches committed; re-run with --request-id (\S+) to resume", err)
        assert m and m.group(2) == base, err
        n = wait_stable_count(pg, 1.0)
        assert n == int(m.group(1)) * 400, (n, err)
        first_rows_are_whole_batches(pg, n, 400)

        srv.start()
        rc, out, err = Cli(srv).run("--request-id", base, "ingest", str(f), "--batch", "400",
                                    "--inflight", "2")
        assert rc == 0, (out, err)
        assert "received=40000 inserted=40000 updated=0 unchanged=0 failed=0" in out, out
        assert db_totals(pg) == (40000, total)
    finally:
        srv.stop(check=False)
        srv.cleanup()


# ------------------------------------------------------------- stdin --

def test_stdin(clean, cli, tmp_path):
    f = tmp_path / "e.json"
    total = write_export(f, 20000)
    data = f.read_bytes()
    j = cli.json("ingest", "-", "--batch", "1500", stdin=data)  # a pipe: spooled, read twice
    assert (j["received"], j["inserted"], j["batches"]["total"]) == (20000, 20000, 14)
    assert db_totals(clean) == (20000, total)
    with open(f, "rb") as fh:  # a regular file as stdin: read twice in place
        p = subprocess.run([hx.CLI_BIN, "--url", cli.server.url, "--json", "ingest", "-"], stdin=fh,
                           capture_output=True, env=dict(os.environ, ADMIN_API_KEY=cli.server.key))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["unchanged"] == 20000
    # all or nothing holds for stdin too: the bad record is at the very end
    clean.truncate()
    write_export(f, 20000, bad={19999: ("date", '"2026-02-29"')})
    j = cli.json("ingest", "-", "--batch", "1000", stdin=f.read_bytes(), expect_rc=3)
    assert fields(j) == ["cost_data[19999].date"]
    assert clean.count() == 0 and runs_count(clean) == 0


# ------------------------------------------------- progress, output --

def test_progress_on_a_terminal(clean, server, tmp_path):
    f = tmp_path / "e.json"
    write_export(f, 200000)
    master, slave = pty.openpty()
    p = subprocess.Popen([hx.CLI_BIN, "--url", server.url, "ingest", str(f), "--batch", "2000"],
                         stdout=subprocess.PIPE, stderr=slave, env=dict(os.environ, ADMIN_API_KEY=server.key))
    os.close(slave)
    seen = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    out = p.communicate(timeout=120)[0].decode()
    os.close(master)
    assert p.returncode == 0, seen
    assert "inserted=200000" in out
    text = seen.decode("utf-8", "replace")
    assert "\r" in text and "rec/s" in text and "ETA" in text, text[-2000:]
    assert re.search(r"sending [\d,]+ records", text), text[-2000:]
    assert re.search(r"sending 100 batches as request ids \S+-b1\.\.b100", text), text[:500]
    assert text.endswith("\r\x1b[K"), "the progress line is not cleared at the end"
    # every other line starts on a cleared line, never after a progress frame
    for m in re.finditer(r"sending \d+ batches", text):
        assert text[:m.start()].endswith("\r\x1b[K"), text[max(0, m.start() - 200):m.end()]
    # each phase's last frame says 100%, with every record counted
    frames = [f for f in text.split("\r") if f.startswith(("checking", "sending"))]
    last_check = [f for f in frames if f.startswith("checking")][-1]
    last_send = [f for f in frames if f.startswith("sending 2")][-1]
    assert "100%" in last_check and "200,000 records" in last_check, last_check
    assert "100%" in last_send and "200,000 records" in last_send and "batch 100/100" in last_send, \
        last_send


def test_json_shape(clean, cli, tmp_path):
    f = tmp_path / "e.json"
    write_export(f, 2500)
    j = cli.json("--request-id", "shape-1", "ingest", str(f), "--batch", "1000")
    for k in ("code", "message", "request_id", "received", "inserted", "updated", "unchanged", "failed",
              "duration_us", "records_per_s", "dry_run", "replayed", "batches", "violations"):
        assert k in j, k
    assert j["request_id"] == "shape-1"
    assert j["batches"] == {"size": 1000, "total": 3, "sent": 3, "committed": 3, "replayed": 0, "failed": []}
    j = cli.json("--request-id", "shape-1", "ingest", str(f), "--batch", "1000")
    assert j["replayed"] is True and j["batches"]["replayed"] == 3
    # a different batch size makes different requests under the same ids: refused, said why
    j = cli.json("--request-id", "shape-1", "ingest", str(f), "--batch", "500", "--inflight", "1",
                 expect_rc=3)
    assert j["batches"]["failed"][0]["request_id"] == "shape-1-b1"
    assert "request_id" in fields(j)
    assert "same file and --batch" in j["message"]
    assert j["resumable"] is False  # running it again would be refused again


@pytest.mark.parametrize("args", [
    ["ingest", "x.json", "--batch", "0"],
    ["ingest", "x.json", "--batch", "50001"],
    ["ingest", "x.json", "--inflight", "0"],
    ["ingest", "--mock", "--batch", "10"],
    ["--request-id", "has space", "ingest", "x.json"],
    ["--request-id", "x" * 101, "ingest", "x.json"],
], ids=["batch_0", "batch_too_big", "inflight_0", "batch_with_mock", "id_space", "id_too_long"])
def test_stream_usage_errors(cli, args):
    rc, out, err = cli.run(*args)
    assert rc == 2, (rc, out, err)
    assert err.strip()


# ---------------------------------------------------------- memory --

def peak_rss_kib(args, env):
    """Runs a command; returns (exit status, its peak RSS in KiB, stdout,
    stderr). The peak is the process's own VmHWM, read from /proc while it
    runs: wait4()'s ru_maxrss would not do, as Linux folds in the high-water
    mark of the pytest process it was forked from. VmHWM only grows, and the
    peak is held for seconds (the key set, the batches), so polling sees it."""
    out_f = tempfile.TemporaryFile()
    err_f = tempfile.TemporaryFile()
    p = subprocess.Popen(args, env=env, stdout=out_f, stderr=err_f)
    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as st:
                for line in st:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.02)
    out_f.seek(0)
    err_f.seek(0)
    return p.returncode, peak, out_f.read().decode(), err_f.read().decode()


def sanitized(binary):
    """Built with -DHX_SANITIZE=ON (the ASan runtime is linked in)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def test_memory_bounded_for_a_million_records(clean, server, tmp_path):
    # The bound is the plain build's (the 64 MiB for 1M records).
    # Under ASan the server runs several times slower and every byte is
    # shadowed, so the sanitized run checks the same path on 200k records
    # (its point there is memory errors, not the RSS figure).
    san = sanitized(hx.CLI_BIN) or sanitized(hx.SERVER_BIN)
    n = 200000 if san else 1000000
    f = tmp_path / "big.json"
    total = write_export(f, n)
    assert f.stat().st_size > n * 70
    env = dict(os.environ, ADMIN_API_KEY=server.key)
    t0 = time.monotonic()
    rc, rss, out, err = peak_rss_kib([hx.CLI_BIN, "--url", server.url, "--json", "ingest", str(f)], env)
    secs = time.monotonic() - t0
    assert rc == 0, f"exit {rc}; stdout: {out[-2000:]}; stderr: {err[-2000:]}"
    j = json.loads(out)
    assert (j["received"], j["inserted"], j["batches"]["total"]) == (n, n, n // 5000)
    assert db_totals(clean) == (n, total)
    # ASan keeps freed memory in quarantine and shadows all of it: bound the
    # plain build tightly, the sanitized one only loosely.
    limit = 64 * 1024 if not san else 1024 * 1024
    print(f"{n} records: peak RSS {rss / 1024:.1f} MiB, {secs:.1f} s, {n / secs:.0f} records/s")
    assert rss < limit, f"peak RSS {rss} KiB for 1,000,000 records"

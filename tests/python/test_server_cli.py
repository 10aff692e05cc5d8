"""The server's command line and process behaviour (SERVICE.md sections 5-7):
refusing to start without a good key, key files, key rotation, signals,
logs, listeners, migrations under concurrency."""

import json
import os
import re
import signal
import threading
import time

import pytest

import hxharness as hx
from hxharness import pb


def refused(srv, must_mention):
    """Starts srv expecting it to refuse: non-zero exit soon, a reason on
    stderr matching must_mention, no key in it."""
    srv.start(wait=False)
    try:
        rc = srv.wait(30)
    except AssertionError:
        srv.kill()
        raise
    log = srv.log()
    assert rc != 0, f"server started (exit {rc}) when it should have refused; log:\n{log}"
    assert re.search(must_mention, log, re.I), f"no reason matching {must_mention!r} on stderr:\n{log}"
    return log


@pytest.fixture
def make(pg):
    made = []

    def factory(**kw):
        srv = hx.Server(pg.conninfo, **kw)
        made.append(srv)
        return srv

    yield factory
    for s in made:
        s.cleanup()


# --------------------------------------------------------------- keys --

def test_refuses_without_key(make):
    refused(make(keys=[]), r"key")


def test_refuses_with_empty_key_variable(make):
    refused(make(keys=[], env={"ADMIN_API_KEY": ""}), r"key")


def test_refuses_15_char_key(make):
    short = "K7q!x9Zr2mW4pL0"
    assert len(short) == 15
    log = refused(make(keys=[short]), r"16|short")
    assert short not in log


def test_refuses_when_one_rotated_key_is_short(make):
    good, short = hx.new_key(), "Sh0rtKeyAbcdEf1"
    log = refused(make(keys=[good, short]), r"16|short")
    assert good not in log and short not in log


def test_accepts_16_char_key(make):
    key = "Ab3dEf6hIj9lMn2p"
    assert len(key) == 16
    srv = make(keys=[key]).start()
    srv.assert_healthy()
    assert key not in srv.stop()


def test_key_file_readable_by_others_refused(make, tmp_path):
    key = hx.new_key()
    f = tmp_path / "keys"
    f.write_text(key + "\n")
    os.chmod(f, 0o644)
    log = refused(make(keys=[], key_file=str(f)), r"mode|permission|readable|0644|group|others")
    assert key not in log


def test_key_file_0600_works_with_comments_and_env(make, tmp_path):
    k_file1, k_file2, k_env = hx.new_key(), hx.new_key(), hx.new_key()
    f = tmp_path / "keys"
    f.write_text(f"# heliox keys\n\n{k_file1}\n{k_file2}\n")
    os.chmod(f, 0o600)
    srv = make(keys=[k_env], key_file=str(f)).start()
    for k in (k_file1, k_file2, k_env):
        hx.assert_code(srv.health(key=k), "OK")
    hx.assert_code(srv.health(key="# heliox keys"), "UNAUTHENTICATED")
    hx.assert_code(srv.health(key=hx.new_key()), "UNAUTHENTICATED")
    log = srv.stop()
    for k in (k_file1, k_file2, k_env):
        assert k not in log


def test_key_rotation_two_keys_in_env(make):
    old, new = hx.new_key(), hx.new_key()
    srv = make(keys=[old, new]).start()
    for k in (old, new):
        resp = srv.health(key=k)
        hx.assert_code(resp, "OK")
        resp = srv.call(key=k, ingest=hx.ingest_mock(dry_run=True))
        hx.assert_code(resp, "OK")
    for k in (old + "," + new, old[:-1], new + "x", "", " " + old):
        resp = srv.health(key=k)
        hx.assert_code(resp, "UNAUTHENTICATED")
    log = srv.stop()
    assert old not in log and new not in log


# ------------------------------------------------------------ signals --

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0(make, sig):
    srv = make().start()
    srv.assert_healthy()
    srv.stop(sig=sig)  # asserts exit status 0
    # and it really stopped listening
    with hx.NngClient(srv.url) as c:
        with pytest.raises(hx.NngTimeout):
            hx.call(c, api_key=srv.key, health=pb.HealthRequest(), recv_timeout_ms=500)


def test_sigterm_finishes_request_in_flight(pg, make):
    srv = make(max_message_bytes=64 * 1024 * 1024).start()
    pg.truncate()
    n = 100_000
    doc = hx.big_export(n)
    box = {}

    def send():
        with srv.client(timeout_ms=120000) as c:
            box["resp"] = hx.call(c, api_key=srv.key, request_id="inflight-1", ingest=hx.ingest_json(doc),
                                  recv_timeout_ms=120000)

    def lines_about_it():
        return sum("inflight-1" in ln for ln in srv.log().splitlines())

    t = threading.Thread(target=send)
    t.start()
    # signal as soon as the server has started on the request (it logs with
    # the request id at debug level), not before it has it
    deadline = time.monotonic() + 60
    while lines_about_it() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    at_signal = lines_about_it()
    assert at_signal > 0, "the server never logged the request"
    srv.send_signal(signal.SIGTERM)
    t.join(150)
    assert not t.is_alive()
    rc = srv.wait(60)
    assert rc == 0, srv.log()
    resp = box.get("resp")
    assert resp is not None, "no reply to the request in flight"
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=n, inserted=n)
    assert pg.count() == n
    assert lines_about_it() > at_signal, "the request was already finished when the signal came"


# --------------------------------------------------------------- logs --

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_logs_carry_request_ids_and_never_keys(pg, make, fmt):
    srv = make(extra=["--log-format", fmt])
    srv.start()
    wrong = hx.new_key()
    ids = {name: hx.rid(name) for name in ("health", "ingest", "summary", "badjson", "noauth", "wrongkey")}
    hx.assert_code(srv.call(request_id=ids["health"], health=pb.HealthRequest()), "OK")
    hx.assert_code(srv.call(request_id=ids["ingest"], ingest=hx.ingest_mock()), "OK")
    hx.assert_code(srv.call(request_id=ids["summary"], summary=pb.SummaryRequest()), "OK")
    hx.assert_code(srv.call(request_id=ids["badjson"], ingest=hx.ingest_json(b"{")), "INVALID_ARGUMENT")
    hx.assert_code(srv.call(key="", request_id=ids["noauth"], ingest=hx.ingest_mock()), "UNAUTHENTICATED")
    hx.assert_code(srv.call(key=wrong, request_id=ids["wrongkey"], ingest=hx.ingest_mock()), "UNAUTHENTICATED")
    log = srv.stop()
    lines = log.splitlines()
    for name, r in ids.items():
        mine = [ln for ln in lines if r in ln]
        assert mine, f"request id of the {name} call not in the log:\n{log}"
    ingest_lines = [ln for ln in lines if ids["ingest"] in ln]
    assert any("28" in ln for ln in ingest_lines), f"the ingest's counts are not logged: {ingest_lines}"
    # every ingest call is logged, auth failures included; no key, right or wrong
    assert srv.key not in log
    assert wrong not in log
    assert srv.key[8:24] not in log, "a piece of the key is in the log"
    if fmt == "json":
        objs = [json.loads(ln) for ln in lines]  # every line parses, or the test fails here
        for o in objs:
            assert {"ts", "level", "msg"} <= o.keys(), o
            assert RFC3339_UTC.match(o["ts"]), o["ts"]
            assert o["level"] in ("debug", "info", "warn", "error"), o
        by_id = {o.get("request_id"): o for o in objs if "code" in o}
        ing = by_id[ids["ingest"]]
        # (the module's database may hold the mock already: unchanged then)
        assert (ing["method"], ing["code"], ing["received"]) == ("ingest", "OK", 28), ing
        assert ing["inserted"] + ing["updated"] + ing["unchanged"] + ing["failed"] == 28, ing
        assert isinstance(ing["duration_us"], int) and ing["duration_us"] > 0, ing
        assert ing["peer"].startswith("127.0.0.1:"), ing
        assert by_id[ids["wrongkey"]]["code"] == "UNAUTHENTICATED"
        assert by_id[ids["summary"]]["method"] == "summary" and "received" not in by_id[ids["summary"]]


def test_log_level_info_is_quieter_than_debug(pg, make):
    srv = make(log_level="info").start()
    hx.assert_code(srv.call(ingest=hx.ingest_mock()), "OK")
    info_log = srv.stop()
    srv2 = make(log_level="debug").start()
    hx.assert_code(srv2.call(ingest=hx.ingest_mock()), "OK")
    debug_log = srv2.stop()
    assert len(debug_log.splitlines()) > len(info_log.splitlines())


@pytest.mark.parametrize("extra", [["--log-level", "loud"], ["--workers", "0"], ["--workers", "abc"],
                                   ["--max-message-bytes", "-5"], ["--no-such-flag"],
                                   ["--listen", "bogus://x"]],
                         ids=["log_level", "workers_0", "workers_abc", "max_message_negative", "unknown_flag",
                              "bad_url"])
def test_bad_command_line_refused(make, extra):
    srv = make(extra=extra, log_level=None)
    refused(srv, r".")


def test_bad_data_dir_makes_mock_fail_not_the_server(pg, make, tmp_path):
    # a server without the mock file still serves everything else
    srv = make(data_dir=str(tmp_path)).start()
    srv.assert_healthy()
    resp = srv.call(ingest=hx.ingest_mock())
    assert resp.status.code != 0, hx.describe(resp)
    hx.assert_code(srv.call(ingest=hx.ingest_records([("2025-01-01", "p", "g", "1")])), "OK")
    srv.stop()


# ---------------------------------------------------------- listeners --

def test_ipc_and_several_listeners(make, tmp_path):
    ipc = f"ipc://{tmp_path}/hx.sock"
    tcp = f"tcp://127.0.0.1:{hx.free_port()}"
    srv = make(listen=[ipc, tcp]).start()
    for url in (ipc, tcp):
        with hx.NngClient(url) as c:
            resp = hx.call(c, api_key=srv.key, request_id="lst", health=pb.HealthRequest())
            hx.assert_code(resp, "OK")
    srv.stop()


def test_port_in_use_refused(make):
    first = make().start()
    second = make(listen=[first.url])
    refused(second, r".")
    first.assert_healthy()
    first.stop()


# --------------------------------------------------------- migrations --

def test_three_servers_start_at_once_on_a_fresh_database(pg, make):
    pg.psql("DROP DATABASE IF EXISTS fresh")
    pg.psql("CREATE DATABASE fresh")
    conninfo = pg.conninfo.replace("dbname=heliox", "dbname=fresh")
    assert conninfo != pg.conninfo
    key = hx.new_key()
    servers = [hx.Server(conninfo, keys=[key]) for _ in range(3)]
    try:
        for s in servers:
            s.start(wait=False)
        for s in servers:
            s.wait_ready(60)
        for i, s in enumerate(servers):
            resp = s.call(ingest=hx.ingest_mock())
            hx.assert_code(resp, "OK")
            hx.assert_counts(resp, received=28, inserted=28 if i == 0 else 0)
        for s in servers:
            s.stop()
    finally:
        for s in servers:
            s.cleanup()
    # a restart finds the schema in place and keeps the data
    again = hx.Server(conninfo, keys=[key])
    try:
        again.start()
        hx.assert_counts(again.call(ingest=hx.ingest_mock()), inserted=0, unchanged=28)
        again.stop()
    finally:
        again.cleanup()

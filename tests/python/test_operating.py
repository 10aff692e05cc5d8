"""Operating the server (SERVICE.md sections 5, 6, 9): /metrics checked by
Debian's promtool and scraped by a real Prometheus server, /healthz
following the database, SIGHUP reloading keys, start-time database errors,
--migrate-only / --no-migrate / --check-config, a least-privilege role,
and the schema's CHECKs (migration 4)."""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import hxharness as hx
from hxharness import pb

D0 = datetime.date(2003, 1, 1)
SLOW = getattr(hx, "WRAPPER_SLOWDOWN", 1)


def recs(provider, n, cost="3.5"):
    return [((D0 + datetime.timedelta(days=i // 4)).isoformat(), provider, f"g{i % 4}", cost)
            for i in range(n)]


def http_get(port, path, timeout=5):
    """(status, body text, seconds taken)."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), time.monotonic() - t0


def samples(text):
    """{'name{labels}': float} of an exposition text."""
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, v = ln.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metrics_server(pg, key, **kw):
    port = hx.free_port()
    extra = ["--metrics-listen", f"127.0.0.1:{port}"] + list(kw.pop("extra", []))
    srv = hx.Server(pg.conninfo, keys=[key], extra=extra, **kw)
    srv.metrics_port = port
    return srv


@pytest.fixture
def msrv(pg, api_key):
    srv = metrics_server(pg, api_key)
    try:
        srv.start()
        yield srv
        log = srv.stop()
        assert api_key not in log
    finally:
        srv.cleanup()


# ------------------------------------------------------------ metrics --

def test_metrics_agree_with_replies_and_audit_and_promtool_accepts_them(clean, msrv):
    pg = clean
    sent = 0
    for i in range(5):
        r = recs(f"m{i}", 10 + i)
        resp = msrv.call(ingest=hx.ingest_records(r))
        hx.assert_code(resp, "OK")
        sent += len(r)
    rid = hx.rid("again")
    r = recs("m0", 10)
    hx.assert_code(msrv.call(request_id=rid, ingest=hx.ingest_records(r)), "OK")      # unchanged
    hx.assert_code(msrv.call(request_id=rid, ingest=hx.ingest_records(r)), "OK")      # replayed
    hx.assert_code(msrv.call(ingest=hx.ingest_records(recs("m9", 4), dry_run=True)), "OK")
    hx.assert_code(msrv.call(key="", health=pb.HealthRequest()), "UNAUTHENTICATED")
    hx.assert_code(msrv.call(key=hx.new_key(), health=pb.HealthRequest()), "UNAUTHENTICATED")
    hx.assert_code(msrv.call(summary=pb.SummaryRequest()), "OK")
    hx.assert_code(msrv.call(ingest=hx.ingest_json(b"{")), "INVALID_ARGUMENT")
    # a replace window over m4's first day, sending one of its four records: 3 deleted
    day = D0.isoformat()
    resp = msrv.call(ingest=hx.ingest_records([(day, "m4", "g0", "3.5")],
                                              replace=[pb.ReplaceWindow(provider="m4", from_date=day, to_date=day)]))
    hx.assert_code(resp, "OK")
    assert (resp.ingest.unchanged, resp.ingest.deleted) == (1, 3), hx.describe(resp)

    status, text, _ = http_get(msrv.metrics_port, "/metrics")
    assert status == 200
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, f"promtool: {p.stdout}{p.stderr}\n{text}"
    s = samples(text)
    # the audit table and the metrics count the same records
    audit = pg.psql("SELECT sum(inserted), sum(updated), sum(unchanged), sum(failed), sum(deleted) "
                    "FROM ingestion_runs WHERE NOT dry_run AND NOT replayed")[0]
    assert [int(x) for x in audit] == [s['heliox_ingest_records_total{outcome="inserted"}'],
                                       s['heliox_ingest_records_total{outcome="updated"}'],
                                       s['heliox_ingest_records_total{outcome="unchanged"}'],
                                       s['heliox_ingest_records_total{outcome="failed"}'],
                                       s['heliox_ingest_records_total{outcome="deleted"}']]
    assert s['heliox_ingest_records_total{outcome="inserted"}'] == sent
    assert s['heliox_ingest_records_total{outcome="unchanged"}'] == 11
    assert s['heliox_ingest_records_total{outcome="deleted"}'] == 3
    assert s['heliox_rpc_requests_total{method="ingest",code="OK"}'] == 9
    assert s['heliox_rpc_requests_total{method="ingest",code="INVALID_ARGUMENT"}'] == 1
    assert s['heliox_rpc_requests_total{method="health",code="UNAUTHENTICATED"}'] == 2
    assert s['heliox_rpc_requests_total{method="summary",code="OK"}'] == 1
    assert s["heliox_auth_failures_total"] == 2
    ingest_rows = int(pg.scalar("SELECT count(*) FROM ingestion_runs"))
    assert ingest_rows == 10  # 9 OK + 1 INVALID_ARGUMENT, as the metrics say
    # histogram: cumulative buckets, +Inf == _count == requests of the method
    b = [(k, v) for k, v in s.items() if k.startswith('heliox_rpc_duration_seconds_bucket{method="ingest"')]
    assert [v for _, v in b] == sorted(v for _, v in b)
    assert s['heliox_rpc_duration_seconds_bucket{method="ingest",le="+Inf"}'] == 10
    assert s['heliox_rpc_duration_seconds_count{method="ingest"}'] == 10
    assert s['heliox_rpc_duration_seconds_sum{method="ingest"}'] > 0
    assert s["heliox_db_up"] == 1 and s['heliox_build_info{version="0.1.0"}'] == 1
    assert s["heliox_inflight_requests"] == 0
    assert s["process_resident_memory_bytes"] > 1e6 and s["process_open_fds"] > 3
    assert abs(s["process_start_time_seconds"] - time.time()) < 600
    for name, typ in [("heliox_rpc_requests_total", "counter"), ("heliox_rpc_duration_seconds", "histogram"),
                      ("heliox_ingest_records_total", "counter"), ("heliox_auth_failures_total", "counter"),
                      ("heliox_inflight_requests", "gauge"), ("heliox_db_up", "gauge"),
                      ("heliox_build_info", "gauge")]:
        assert f"# TYPE {name} {typ}\n" in text and f"# HELP {name} " in text
    assert msrv.key not in text
    # nothing else is served
    assert http_get(msrv.metrics_port, "/")[0] == 404
    assert http_get(msrv.metrics_port, "/metrics/x")[0] == 404


def test_a_real_prometheus_scrapes_the_records_sent(clean, msrv):
    sent = 0
    for i in range(7):
        r = recs(f"p{i}", 20 + i)
        hx.assert_code(msrv.call(ingest=hx.ingest_records(r)), "OK")
        sent += len(r)
    tmp = tempfile.mkdtemp(prefix="hxprom-")
    prom_port = hx.free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: heliox\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{msrv.metrics_port}']\n")
    log = open(os.path.join(tmp, "prom.log"), "wb")
    prom = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp}/data",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=log, stderr=log)
    try:
        q = urllib.parse.quote("sum(heliox_ingest_records_total)")
        deadline, got = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            assert prom.poll() is None, open(os.path.join(tmp, "prom.log")).read()
            try:
                status, body, _ = http_get(prom_port, f"/api/v1/query?query={q}")
                res = json.loads(body)["data"]["result"] if status == 200 else []
                if res:
                    got = float(res[0]["value"][1])
                    if got == sent:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        assert got == sent, f"Prometheus says {got}, sent {sent}"
        status, body, _ = http_get(prom_port, "/api/v1/targets")
        t = json.loads(body)["data"]["activeTargets"]
        assert t and t[0]["health"] == "up", t
    finally:
        prom.terminate()
        prom.wait(30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_healthz_follows_the_database(api_key):
    pg = hx.PgCluster()
    pg.start()
    srv = metrics_server(pg, api_key)
    try:
        srv.start()
        port = srv.metrics_port
        st, body, _ = http_get(port, "/healthz")
        assert (st, body) == (200, "ok\n")
        pg.stop()
        t0 = time.monotonic()
        seen = []
        while time.monotonic() - t0 < 10:
            st, _, took = http_get(port, "/healthz")
            assert took < 0.5, f"/healthz took {took:.3f}s with the database down"
            seen.append(st)
            if st == 503:
                break
            time.sleep(0.1)
        assert seen[-1] == 503, seen
        assert time.monotonic() - t0 < 3.5 * SLOW, "503 came too late"
        # requests meanwhile: UNAVAILABLE, and no per-request ERROR lines
        for _ in range(5):
            hx.assert_code(srv.call(ingest=hx.ingest_records(recs("down", 2))), "UNAVAILABLE")
        _, text, _ = http_get(port, "/metrics")
        assert samples(text)["heliox_db_up"] == 0
        pg.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15:
            st, _, _ = http_get(port, "/healthz")
            if st == 200:
                break
            time.sleep(0.1)
        assert st == 200
        hx.assert_code(srv.call(ingest=hx.ingest_records(recs("up", 2))), "OK")
        log = srv.stop()
        assert log.count("database unreachable") == 1, log[-4000:]
        assert log.count("database reachable again") == 1, log[-4000:]
        assert len([ln for ln in log.splitlines() if " ERROR " in ln]) == 1, log[-4000:]
    finally:
        srv.cleanup()
        pg.destroy()


# ------------------------------------------------------------ SIGHUP --

def write_keys(path, keys):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("\n".join(keys) + "\n")
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def test_sighup_reloads_keys_without_dropping_requests(pg, tmp_path):
    a, b = hx.new_key(), hx.new_key()
    kf = str(tmp_path / "keys")
    write_keys(kf, [a])
    srv = hx.Server(pg.conninfo, keys=[], key_file=kf)
    srv.key = a
    stop = threading.Event()
    failures, done = [], [0]

    def hammer():
        with srv.client() as c:
            while not stop.is_set():
                key = a if done[0] % 2 == 0 else b
                resp = hx.call(c, api_key=key, request_id=hx.rid("h"), health=pb.HealthRequest())
                if resp.status.code not in (hx.CODE["OK"], hx.CODE["UNAUTHENTICATED"]):
                    failures.append(hx.describe(resp))
                done[0] += 1

    try:
        srv.start()
        th = threading.Thread(target=hammer)
        th.start()
        write_keys(kf, [a, b])
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        write_keys(kf, [b])
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        stop.set()
        th.join(30)
        assert not failures, failures[:5]
        assert done[0] > 20
        assert srv.proc.poll() is None, "SIGHUP killed the server"
        hx.assert_code(srv.call(key=b, health=pb.HealthRequest()), "OK")
        hx.assert_code(srv.call(key=a, health=pb.HealthRequest()), "UNAUTHENTICATED")
        # an invalid new set (a short key) is refused and the old one kept
        write_keys(kf, ["short"])
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        hx.assert_code(srv.call(key=b, health=pb.HealthRequest()), "OK")
        srv.key = b
        log = srv.stop()
        assert "2 key(s) active" in log and "1 key(s) active" in log, log[-3000:]
        assert re.search(r"ERROR .*SIGHUP: new API keys refused, keeping the 1 active", log), log[-3000:]
        assert a not in log and b not in log
    finally:
        srv.cleanup()


# ------------------------------------------------- start-time failures --

def start_and_wait(srv, limit):
    t0 = time.monotonic()
    srv.start(wait=False)
    rc = srv.wait(limit)
    return rc, time.monotonic() - t0, srv.log()


@pytest.mark.parametrize("conninfo,mention", [
    ("host=/tmp port=5432 dbname", r"invalid connection string"),
    ("postgresql://[::1", r"invalid connection string"),
])
def test_conninfo_syntax_error_exits_2_at_once(conninfo, mention):
    srv = hx.Server(conninfo)
    try:
        rc, took, log = start_and_wait(srv, 20)
        assert rc == 2, log
        assert took < 3, f"took {took:.1f}s"
        assert re.search(mention, log), log
    finally:
        srv.cleanup()


def test_wrong_password_and_unknown_role_fail_at_once(pg):
    # a role that logs in with a password, on this cluster's socket
    hba = os.path.join(pg.dir, "data", "pg_hba.conf")
    pg.psql("DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN PASSWORD 'right-password'")
    with open(hba) as f:
        orig = f.read()
    with open(hba, "w") as f:
        f.write("local all pwuser scram-sha-256\n" + orig)
    pg.psql("SELECT pg_reload_conf()")
    time.sleep(0.3)
    before = open(os.path.join(pg.dir, "postgres.log")).read().count("password authentication failed")
    try:
        base = pg.conninfo.replace("user=postgres", "")
        srv = hx.Server(base + " user=pwuser password=wrong-password")
        try:
            rc, took, log = start_and_wait(srv, 20)
            assert rc == 2, log
            assert took < 3, f"took {took:.1f}s"
            assert "password authentication failed" in log, log
            assert "wrong-password" not in log
        finally:
            srv.cleanup()
        after = open(os.path.join(pg.dir, "postgres.log")).read().count("password authentication failed")
        assert after - before == 1, f"{after - before} failed logins"
        srv = hx.Server(base + " user=nosuchrole")
        try:
            rc, took, log = start_and_wait(srv, 20)
            assert rc == 2 and took < 3, log
        finally:
            srv.cleanup()
    finally:
        with open(hba, "w") as f:
            f.write(orig)
        pg.psql("SELECT pg_reload_conf()")


def test_a_database_not_up_yet_is_retried_with_a_line_per_try(tmp_path):
    srv = hx.Server(f"host={tmp_path} port=1 dbname=x user=x")
    try:
        srv.start(wait=False)
        time.sleep(2.5)
        assert srv.proc.poll() is None, srv.log()
        retries = [ln for ln in srv.log().splitlines() if "database not reachable yet" in ln]
        assert 2 <= len(retries) <= 8, retries
        assert "retrying in" in retries[0]
    finally:
        srv.cleanup()


# -------------------------------------------- migrations and privileges --

def run_server_once(conninfo, *flags, key=None, timeout=60):
    env = dict(os.environ)
    env["ADMIN_API_KEY"] = key or hx.new_key()
    p = subprocess.run([hx.SERVER_BIN, "--db", conninfo, "--listen", f"tcp://127.0.0.1:{hx.free_port()}",
                        *flags], capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stderr


APP_GRANTS = """
GRANT CONNECT, TEMPORARY ON DATABASE heliox TO hxapp;
GRANT USAGE ON SCHEMA public TO hxapp;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hxapp;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO hxapp;
"""


def test_migrate_only_then_a_least_privilege_role_serves(api_key):
    pg = hx.PgCluster()
    pg.start()
    try:
        pg.psql("CREATE ROLE hxapp LOGIN")
        app = pg.conninfo.replace("user=postgres", "user=hxapp")
        # --no-migrate on an empty database: refused, with the way out
        rc, err = run_server_once(pg.conninfo, "--no-migrate")
        assert rc == 2 and "--migrate-only" in err, err
        assert int(pg.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")) == 0
        # the owner applies the migrations and exits 0
        rc, err = run_server_once(pg.conninfo, "--migrate-only")
        assert rc == 0, err
        assert int(pg.scalar("SELECT max(version) FROM schema_migrations")) >= 4
        pg.psql(APP_GRANTS)
        # an older schema (a migration missing) is refused under --no-migrate
        v = pg.scalar("SELECT max(version) FROM schema_migrations")
        pg.psql(f"DELETE FROM schema_migrations WHERE version = {v}")
        rc, err = run_server_once(app, "--no-migrate")
        assert rc == 2 and "older than this binary" in err and f"missing migration {v}" in err, err
        pg.psql(f"INSERT INTO schema_migrations (version, name) VALUES ({v}, 'restored')")
        # the app role serves: ingest, replay, summary
        srv = hx.Server(app, keys=[api_key], extra=["--no-migrate"])
        try:
            srv.start()
            rid = hx.rid("lp")
            r = recs("lp", 12)
            resp = srv.call(request_id=rid, ingest=hx.ingest_records(r))
            hx.assert_code(resp, "OK")
            hx.assert_counts(resp, received=12, inserted=12)
            resp = srv.call(request_id=rid, ingest=hx.ingest_records(r))
            hx.assert_code(resp, "OK")
            assert resp.ingest.replayed
            hx.assert_code(srv.call(ingest=hx.ingest_mock()), "OK")
            resp = srv.call(summary=pb.SummaryRequest())
            hx.assert_code(resp, "OK")
            log = srv.stop()
            assert "permission denied" not in log, log
        finally:
            srv.cleanup()
        # the role really has no CREATE: DDL fails for it
        p = subprocess.run(["psql", "-X", "-d", app, "-c", "CREATE TABLE x (i int)"], capture_output=True, text=True)
        assert p.returncode != 0 and "permission denied" in p.stderr, p.stderr
    finally:
        pg.destroy()


def test_check_config(pg, tmp_path):
    key = hx.new_key()
    rc, err = run_server_once(pg.conninfo, "--check-config", key=key)
    assert rc == 0 and "configuration OK" in err, err
    rc, err = run_server_once(f"host={tmp_path} port=1 dbname=x", "--check-config", key=key, timeout=20)
    assert rc == 2 and "database" in err, err
    rc, err = run_server_once(pg.conninfo, "--check-config", key="short")
    assert rc == 2, err
    rc, err = run_server_once(pg.conninfo, "--check-config", "--metrics-listen", "nonsense", key=key)
    assert rc == 2, err
    rc, err = run_server_once(pg.conninfo, "--migrate-only", "--no-migrate", key=key)
    assert rc == 2, err


def test_schema_checks_normalised_names(clean):
    pg = clean
    hx_ok = "INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd) VALUES ('2020-01-01', '{p}', '{g}', 1)"
    pg.psql(hx_ok.format(p="aws", g="h100"))
    for p_, g in [("AWS", "h100"), (" aws", "h100"), ("aws ", "h100"), ("aws", "H100"), ("", "h100"),
                  ("a" * 65, "h100"), ("aws", "h100\t")]:
        with pytest.raises(RuntimeError, match="normalised"):
            pg.psql(hx_ok.format(p=p_, g=g))
    # names the server accepts (non-ASCII letters are not folded) are accepted
    pg.psql(hx_ok.format(p="Ünï", g="h100").replace("Ünï", "ünï"))
    pg.psql(hx_ok.format(p="ÉÉ", g="a100"))
    assert pg.scalar("SELECT to_regclass('cost_snapshots_date_idx') IS NULL") == "t"
    assert pg.scalar("SELECT col_description('cost_snapshots'::regclass, 4)") is not None

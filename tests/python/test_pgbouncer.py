"""heliox-ingestd behind Debian's PgBouncer (1.18). Each store connection
keeps prepared statements and a temporary table between transactions, so it
needs a server session of its own: session pooling works; transaction (and
statement) pooling is detected at start and refused, naming the cause, so
that no call ever meets "prepared statement already exists" as INTERNAL."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

import hxharness as hx
from hxharness import pb

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class Bouncer:
    def __init__(self, pg, mode):
        self.dir = tempfile.mkdtemp(prefix="hxpgb-")
        os.chmod(self.dir, 0o755)
        self.port = hx.free_port()
        sock = pg.conninfo.split("host=")[1].split()[0]
        ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write(f"""[databases]
heliox = host={sock} port=5432 dbname=heliox user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = any
pool_mode = {mode}
max_client_conn = 200
default_pool_size = 20
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        shutil.chown(self.dir, "postgres")
        shutil.chown(ini, "postgres")
        self.ini = ini
        self.conninfo = f"host=127.0.0.1 port={self.port} dbname=heliox user=postgres sslmode=disable"
        self.proc = None

    def start(self):
        # PgBouncer refuses to run as root.
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", PGBOUNCER, self.ini],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            p = subprocess.run(["psql", "-X", "-At", "-d", self.conninfo, "-c", "SELECT 1"],
                               capture_output=True, text=True)
            if p.returncode == 0:
                return self
            time.sleep(0.2)
        raise AssertionError("pgbouncer did not come up: " + self.log())

    def log(self):
        try:
            return open(os.path.join(self.dir, "pgbouncer.log")).read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bouncer(pg):
    made = []

    def factory(mode):
        b = Bouncer(pg, mode).start()
        made.append(b)
        return b

    yield factory
    for b in made:
        b.stop()


def test_session_pooling_serves_every_call(pg, bouncer, api_key):
    b = bouncer("session")
    srv = hx.Server(b.conninfo, keys=[api_key], workers=2)
    try:
        srv.start()
        for i in range(6):  # several calls per worker connection: statements are reused
            resp = srv.call(ingest=hx.ingest_records([("2004-01-0%d" % (i % 9 + 1), "pgb", "g", "1.5")]))
            hx.assert_code(resp, "OK")
            hx.assert_code(srv.call(summary=pb.SummaryRequest()), "OK")
        rid = hx.rid("pgb")
        hx.assert_code(srv.call(request_id=rid, ingest=hx.ingest_mock()), "OK")
        resp = srv.call(request_id=rid, ingest=hx.ingest_mock())
        hx.assert_code(resp, "OK")
        assert resp.ingest.replayed
        log = srv.stop()
        assert "INTERNAL" not in log, log[-3000:]
    finally:
        srv.cleanup()


@pytest.mark.parametrize("mode", ["transaction", "statement"])
def test_transaction_pooling_is_refused_at_start_naming_the_cause(pg, bouncer, api_key, mode):
    b = bouncer(mode)
    srv = hx.Server(b.conninfo, keys=[api_key])
    try:
        srv.start(wait=False)
        rc = srv.wait(60)
        log = srv.log()
        assert rc == 2, log
        assert "pool_mode=session" in log, log
        assert ("pooled per transaction" if mode == "transaction" else "pool_mode=statement") in log, log
    finally:
        srv.cleanup()


def test_ssl_required_but_not_offered_fails_at_once(pg, bouncer, api_key):
    b = bouncer("session")
    srv = hx.Server(b.conninfo.replace("sslmode=disable", "sslmode=require"), keys=[api_key])
    try:
        t0 = time.monotonic()
        srv.start(wait=False)
        rc = srv.wait(20)
        assert rc == 2, srv.log()
        assert time.monotonic() - t0 < 3
        assert "SSL" in srv.log(), srv.log()
        assert "retrying" not in srv.log()
    finally:
        srv.cleanup()

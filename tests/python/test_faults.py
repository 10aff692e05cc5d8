"""Faults (SERVICE.md section 5): the database going away and coming back, a
backend killed mid-transaction, the server SIGKILLed or SIGTERMed mid-call,
servers racing to migrate, deadlines shorter than the write, nng's REQ side
resending a slow request, and idempotency across a server restart.

Every test runs against a real PostgreSQL and a real heliox-ingestd. A call
is held inside its transaction by a table lock that a psql session holds
(hx.LockHolder), so the fault always lands where it is meant to."""

import copy
import datetime
import signal
import threading
import time

import pytest

import hxharness as hx
from hxharness import pb

D0 = datetime.date(2001, 1, 1)
BIG = 64 * 1024 * 1024  # --max-message-bytes for servers that take big batches
# Slack on time bounds: 1 normally, more when the harness runs every server
# under a wrapper such as valgrind (scripts/valgrind.sh).
SLOW = getattr(hx, "WRAPPER_SLOWDOWN", 1)


def recs(provider, n, cost="7.25", gpus=4):
    """n records with distinct keys, all with the given provider (its own key
    range): gpus GPU types a day, from D0 on."""
    return [((D0 + datetime.timedelta(days=i // gpus)).isoformat(), provider, f"g{i % gpus}", cost)
            for i in range(n)]


def count_provider(pg, provider):
    return int(pg.scalar(f"SELECT count(*) FROM cost_snapshots WHERE provider = '{provider}'"))


def runs_of(pg, request_id):
    """(code, replayed, dry_run, inserted) of every ingestion_runs row of a request."""
    return [(int(c), r == "t", d == "t", int(i)) for c, r, d, i in pg.psql(
        "SELECT code, replayed, dry_run, inserted FROM ingestion_runs "
        f"WHERE request_id = '{request_id}' ORDER BY id")]


def ok_runs(pg, request_id):
    """The successful real (not replayed, not dry) runs of a request."""
    return [r for r in runs_of(pg, request_id) if r[0] == 0 and not r[1] and not r[2]]


def timed_call(client, key, recv_timeout_ms=60000, **kw):
    """A call on client; returns (response, seconds from send to reply).
    The request is serialized before the clock starts."""
    req = hx.make_request(key, kw.pop("request_id", None) or hx.rid(), kw.pop("timeout_ms", 0), **kw)
    data = req.SerializeToString()
    t0 = time.monotonic()
    resp = hx.raw(client, data, recv_timeout_ms)
    return resp, time.monotonic() - t0


class Bg:
    """Runs fn() in a thread; join() returns its result or raises its error."""

    def __init__(self, fn):
        self.result = self.error = None
        self.t = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.t.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised by join()
            self.error = e

    def done(self):
        return not self.t.is_alive()

    def join(self, timeout=60):
        self.t.join(timeout)
        assert not self.t.is_alive(), "a background call hung"
        if self.error is not None:
            raise self.error
        return self.result


def parallel(fns, timeout=60):
    bgs = [Bg(f) for f in fns]
    return [b.join(timeout) for b in bgs]


class Started:
    """A heliox-ingestd of the test's own: stopped (exit 0 required unless it
    was killed or already stopped) and cleaned up on leaving."""

    def __init__(self, conninfo, **opts):
        self.srv = hx.Server(conninfo, **opts)

    def __enter__(self):
        try:
            self.srv.start()
        except BaseException:
            self.srv.cleanup()
            raise
        return self.srv

    def __exit__(self, exc_type, *rest):
        try:
            if self.srv.proc is not None and self.srv.proc.poll() is None:
                self.srv.stop(check=exc_type is None)
        finally:
            self.srv.cleanup()


@pytest.fixture(scope="module")
def srv4(pg):
    """Four workers: the concurrency the contract's examples assume."""
    with Started(pg.conninfo, workers=4, max_message_bytes=BIG) as s:
        yield s


@pytest.fixture(scope="module")
def srv1(pg):
    """One worker, so that "the same worker" is unambiguous."""
    with Started(pg.conninfo, workers=1, max_message_bytes=BIG) as s:
        yield s


# ------------------------------------------------------- database down --

def test_postgres_down_then_every_worker_recovers(pg, srv4):
    workers = 4
    pg.truncate()
    hx.assert_code(srv4.call(ingest=hx.ingest_records(recs("down", 3))), "OK")
    clients = [srv4.client() for _ in range(4 * workers)]
    try:
        pg.stop()
        try:
            # one call at a time, timed: UNAVAILABLE well within the deadline
            for method in ("ingest", "summary"):
                kw = ({"ingest": hx.ingest_records(recs("down2", 3))} if method == "ingest"
                      else {"summary": pb.SummaryRequest()})
                resp, secs = timed_call(clients[0], srv4.key, timeout_ms=2000,
                                        recv_timeout_ms=10000, **kw)
                hx.assert_code(resp, "UNAVAILABLE")
                assert resp.status.message, hx.describe(resp)
                assert secs < 2.0 + 1.0 * SLOW, f"{method}: UNAVAILABLE after {secs:.2f}s, deadline 2s"
            resp = srv4.health()
            hx.assert_code(resp, "OK")
            assert resp.health.serving and not resp.health.database_ok, hx.describe(resp)

            # every worker answers, none hangs: 4x the workers at once
            def down_call(i):
                def f():
                    kw = ({"ingest": hx.ingest_records(recs(f"down{i}", 2))} if i % 2
                          else {"summary": pb.SummaryRequest()})
                    return timed_call(clients[i], srv4.key, timeout_ms=2000, recv_timeout_ms=15000,
                                      **kw)
                return f
            for resp, secs in parallel([down_call(i) for i in range(len(clients))]):
                hx.assert_code(resp, "UNAVAILABLE")
                # queued behind at most 3 others on its worker, each instant
                assert secs < 2.0 + 1.0 * SLOW, f"UNAVAILABLE after {secs:.2f}s"
        finally:
            pg.start()
        t_up = time.monotonic()

        # no restart: within 10 s every call of a whole parallel round is OK
        def up_call(i, rnd):
            def f():
                c = clients[i]
                if i % 3 == 0:
                    return hx.call(c, api_key=srv4.key, timeout_ms=5000,
                                   ingest=hx.ingest_records(recs(f"up{rnd}x{i}", 2)))
                if i % 3 == 1:
                    return hx.call(c, api_key=srv4.key, timeout_ms=5000, summary=pb.SummaryRequest())
                return hx.call(c, api_key=srv4.key, health=pb.HealthRequest())
            return f
        rnd, last = 0, None
        while True:
            replies = parallel([up_call(i, rnd) for i in range(len(clients))])
            bad = [r for r in replies if r.status.code != 0 or
                   (r.WhichOneof("result") == "health" and not r.health.database_ok)]
            for r in bad:
                assert r.status.code in (0, hx.CODE["UNAVAILABLE"]), hx.describe(r)
            if not bad:
                break
            last = bad
            assert time.monotonic() - t_up < 10 * SLOW, \
                f"not every worker recovered within {10 * SLOW}s: {[hx.describe(r) for r in last]}"
            rnd += 1
            time.sleep(0.1)
        print(f"all workers OK {time.monotonic() - t_up:.2f}s after Postgres came back")

        # Proof that each worker has its connection back: one ingest per
        # worker held at once by a table lock - each waits in its own backend.
        with hx.LockHolder(pg) as lock:
            bgs = [Bg(lambda i=i: hx.call(clients[i], api_key=srv4.key, timeout_ms=20000,
                                          recv_timeout_ms=30000,
                                          ingest=hx.ingest_records(recs(f"held{i}", 3))))
                   for i in range(workers)]
            try:
                hx.wait_until(lambda: len(hx.lock_waiters(pg)) == workers or
                              any(b.done() for b in bgs), 10, what="every worker waiting on the lock")
                done_early = [hx.describe(b.join()) for b in bgs if b.done()]
                assert not done_early, f"a worker answered without waiting on the lock: {done_early}"
            finally:
                lock.release()
            for b in bgs:
                resp = b.join()
                hx.assert_code(resp, "OK")
                hx.assert_counts(resp, received=3, inserted=3)
        for i in range(workers):
            assert count_provider(pg, f"held{i}") == 3
    finally:
        for c in clients:
            c.close()


# ------------------------------------------- backend killed mid-transaction --

def test_backend_terminated_mid_transaction(pg, srv1):
    """The worker's backend is terminated while the ingest waits inside its
    transaction. The lock stays held until the reply has come: the reply
    must not wait for it (the call's deadline is 5 s)."""
    pg.truncate()
    r = hx.rid("term")
    deadline_s = 5.0
    with hx.LockHolder(pg) as lock:
        c = srv1.client()
        bg = Bg(lambda: timed_call(c, srv1.key, request_id=r, timeout_ms=int(deadline_s * 1000),
                                   recv_timeout_ms=30000, ingest=hx.ingest_records(recs("term", 20))))
        try:
            waiting = hx.wait_until(lambda: hx.lock_waiters(pg), 10, what="the ingest waiting on the lock")
            assert len(waiting) == 1, waiting
            assert pg.scalar(f"SELECT pg_terminate_backend({waiting[0][0]})") == "t"
            bg.t.join(deadline_s + 1.0 * SLOW)
            answered_under_lock = bg.done()
        finally:
            lock.release()
            resp, secs = bg.join(30)
            c.close()
    hx.assert_code(resp, "UNAVAILABLE")
    assert resp.request_id == r
    assert count_provider(pg, "term") == 0
    assert pg.count() == 0
    assert ok_runs(pg, r) == [], runs_of(pg, r)
    # the next calls all succeed, on the same (only) worker
    for i in range(5):
        resp2 = srv1.call(ingest=hx.ingest_records(recs(f"after{i}", 4)))
        hx.assert_code(resp2, "OK")
        hx.assert_counts(resp2, received=4, inserted=4)
        hx.assert_code(srv1.call(summary=pb.SummaryRequest()), "OK")
        resp2 = srv1.health()
        assert resp2.health.database_ok, hx.describe(resp2)
    # and the failed request, retried under its id, runs for real now
    resp2 = srv1.call(request_id=r, ingest=hx.ingest_records(recs("term", 20)))
    hx.assert_code(resp2, "OK")
    hx.assert_counts(resp2, received=20, inserted=20)
    assert not resp2.ingest.replayed
    assert count_provider(pg, "term") == 20
    # last, so that everything above is checked whatever this says
    assert answered_under_lock, (
        f"the UNAVAILABLE reply took {secs:.1f}s and came only once the table lock was released, "
        f"past the call's {deadline_s:.0f}s deadline: after losing its connection the worker "
        "reconnected and waited for the table lock with no deadline")


# ------------------------------------------------------------- deadlines --

def test_deadline_while_locked_small_batch(pg, srv1):
    check_deadline_while_locked(pg, srv1, 10, "dls")


def test_deadline_while_locked_copy_sized_batch(pg, srv1):
    # big enough for the store's COPY path (>= 1000 records)
    check_deadline_while_locked(pg, srv1, 5000, "dlc")


def check_deadline_while_locked(pg, srv, n, provider):
    pg.truncate()
    r = hx.rid(provider)
    batch = recs(provider, n)
    with hx.LockHolder(pg):
        with srv.client() as c:
            resp, secs = timed_call(c, srv.key, request_id=r, timeout_ms=500, recv_timeout_ms=20000,
                                    ingest=hx.ingest_records(batch))
        hx.assert_code(resp, "DEADLINE_EXCEEDED")
        assert secs < 0.5 + 1.0 * SLOW, f"DEADLINE_EXCEEDED after {secs:.2f}s for a 500 ms deadline"
        hx.assert_counts(resp, received=n, inserted=0, updated=0, unchanged=0, failed=n)
        # the worker is not stuck behind the lock any more: Health answers
        resp = srv.health(recv_timeout_ms=5000)
        hx.assert_code(resp, "OK")
        # a summary under the same lock times out the same way
        with srv.client() as c:
            resp, secs = timed_call(c, srv.key, timeout_ms=300, recv_timeout_ms=20000,
                                    summary=pb.SummaryRequest())
        hx.assert_code(resp, "DEADLINE_EXCEEDED")
        assert secs < 0.3 + 1.0 * SLOW, f"summary DEADLINE_EXCEEDED after {secs:.2f}s"
    assert pg.count() == 0
    assert ok_runs(pg, r) == []
    assert [x[0] for x in runs_of(pg, r)] == [hx.CODE["DEADLINE_EXCEEDED"]], runs_of(pg, r)
    # the same worker, usable at once: the same request with time to spare
    resp = srv.call(request_id=r, timeout_ms=60000, ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=n, inserted=n)
    assert count_provider(pg, provider) == n
    resp = srv.call(summary=pb.SummaryRequest())
    hx.assert_code(resp, "OK")
    assert resp.summary.rows[0].records == n


def test_deadline_shorter_than_a_huge_write(pg, srv1):
    pg.truncate()
    n = 300_000
    data = hx.make_request(srv1.key, hx.rid("huge"), 50,
                           ingest=hx.ingest_records(recs("huge", n, gpus=8))).SerializeToString()
    with srv1.client() as c:
        t0 = time.monotonic()
        resp = hx.raw(c, data, 120000)
        secs = time.monotonic() - t0
    hx.assert_code(resp, "DEADLINE_EXCEEDED")
    print(f"300k records, timeout_ms=50: DEADLINE_EXCEEDED after {secs:.2f}s")
    assert pg.count() == 0
    assert ok_runs(pg, resp.request_id) == []
    # the same worker right after
    resp = srv1.call(ingest=hx.ingest_records(recs("small", 8)))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=8, inserted=8)
    assert pg.count() == 8
    assert srv1.health().health.database_ok


# -------------------------------------------------------- nng REQ resends --

def test_req_resend_of_a_slow_ingest_runs_once(pg, srv4):
    pg.truncate()
    r = hx.rid("resend")
    n = 50
    # the resending socket lives in a child process (hx.resending_call says why)
    req = hx.make_request(srv4.key, r, 20000, ingest=hx.ingest_records(recs("resend", n)))
    # Held by a row, not a table lock: the ingest blocks on the uncommitted
    # row after its statement has begun, so its copies, taken up meanwhile by
    # the other workers, are kept out only by the server's own serialisation
    # of one request_id (a table lock would serialise them for it).
    row_lock = ("INSERT INTO cost_snapshots (date, provider, gpu_type, cost_usd) "
                f"VALUES ('{D0.isoformat()}', 'resend', 'g0', 1)")
    with hx.LockHolder(pg, row_lock) as lock:
        bg = Bg(lambda: hx.resending_call(srv4.url, req, 200, 30000))
        try:
            hx.wait_until(lambda: hx.lock_waiters(pg), 10, what="the ingest waiting on the lock")
            time.sleep(1.5)  # ~7 resends of 200 ms
            assert not bg.done(), hx.describe(bg.join())
        finally:
            lock.release()
        resp = bg.join(60)
    assert resp.request_id == r, hx.describe(resp)
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=n, inserted=n, updated=0, unchanged=0, failed=0)
    # the copies that reached the server have all been answered by now
    time.sleep(0.5)
    hx.wait_until(lambda: not hx.server_backends(pg, "state = 'active'"), 10, what="server idle")
    runs = runs_of(pg, r)
    copies = srv4.log().count(f"req={r} ingest ")
    print(f"copies of the request served: {copies}; runs: {runs}")
    assert copies >= 2, f"the request was never resent (only {copies} served): the test tested nothing"
    assert ok_runs(pg, r) == [(0, False, False, n)], runs
    assert all(code == 0 and (replayed or inserted == n) for code, replayed, _, inserted in runs), runs
    assert count_provider(pg, "resend") == n
    # one transaction wrote every row, once
    assert int(pg.scalar("SELECT count(DISTINCT xmin::text) FROM cost_snapshots")) == 1
    assert int(pg.scalar("SELECT count(*) FROM cost_snapshots WHERE updated_at <> created_at")) == 0


# --------------------------------------------------- SIGKILL mid-ingest --

def test_sigkill_during_large_ingests_is_all_or_nothing(pg):
    pg.truncate()
    others = {row[0] for row in hx.server_backends(pg)}  # the module's servers
    sizes = [8_000, 40_000, 40_000, 40_000, 40_000, 40_000]
    reqs = []
    with Started(pg.conninfo, workers=4, max_message_bytes=BIG, log_level="info") as srv:
        for i, n in enumerate(sizes):
            r = hx.rid(f"kill{i}")
            req = hx.make_request(srv.key, r, 120000, ingest=hx.ingest_records(recs(f"kill{i}", n, gpus=8)))
            reqs.append((r, n, req.SerializeToString()))
        clients = [srv.client() for _ in sizes]
        replies = [None] * len(sizes)
        first = threading.Event()

        def send(i):
            def f():
                try:
                    replies[i] = hx.raw(clients[i], reqs[i][2], 60000)
                    first.set()
                except hx.NngError:
                    pass  # the server died under it
            return f
        bgs = [Bg(send(i)) for i in range(len(sizes))]
        assert first.wait(60), "no ingest finished"

        def open_tx():  # the server's transactions open in the database now
            return [row for row in hx.server_backends(pg, "state IN ('active', 'idle in transaction')")
                    if row[0] not in others]
        # kill while at least one ingest is inside its transaction
        in_tx = hx.wait_until(lambda: open_tx() or all(b.done() for b in bgs), 60, interval=0.01,
                              what="an ingest inside its transaction")
        srv.proc.kill()
        srv.proc.wait()
        for c in clients:  # wakes the receivers still waiting
            c.close()
        for b in bgs:
            b.join(30)
        answered = [i for i in range(len(sizes)) if replies[i] is not None]
        for i in answered:
            hx.assert_code(replies[i], "OK")
        print(f"answered before SIGKILL: {answered}")
        assert len(answered) < len(sizes), "every ingest finished before the kill: nothing was in flight"
        assert in_tx is not True, "no transaction was open in the database when the server was killed"

    # the killed server's backends finish or roll back by themselves
    hx.wait_until(lambda: not {row[0] for row in hx.server_backends(pg)} - others, 30, what="the killed server's backends to go")
    present = []
    for i, (r, n, _) in enumerate(reqs):
        got = count_provider(pg, f"kill{i}")
        assert got in (0, n), f"request {i} ({n} records) left {got} rows: not all-or-nothing"
        runs = ok_runs(pg, r)
        if got == n:
            present.append(i)
            assert runs == [(0, False, False, n)], f"request {i}: rows present, runs {runs_of(pg, r)}"
        else:
            assert runs == [], f"request {i}: no rows but runs {runs_of(pg, r)}"
    print(f"present after the kill: {present} of {list(range(len(sizes)))}")
    for i in answered:
        assert i in present, f"request {i} was answered OK but its rows are gone"
    assert pg.count() == sum(sizes[i] for i in present)

    # after a restart every request, retried under its id, completes exactly once
    with Started(pg.conninfo, workers=4, max_message_bytes=BIG, log_level="info") as srv:
        for i, (r, n, _) in enumerate(reqs):
            resp = srv.call(request_id=r, timeout_ms=120000,
                            ingest=hx.ingest_records(recs(f"kill{i}", n, gpus=8)))
            hx.assert_code(resp, "OK")
            hx.assert_counts(resp, received=n, inserted=n, updated=0, unchanged=0)
            assert resp.ingest.replayed == (i in present), (i, present, hx.describe(resp))
    for i, (r, n, _) in enumerate(reqs):
        assert count_provider(pg, f"kill{i}") == n
        assert len(ok_runs(pg, r)) == 1
    assert pg.count() == sum(sizes)


# ------------------------------------------------------ SIGTERM mid-call --

def test_sigterm_during_a_call_answers_it_and_exits_0(pg):
    pg.truncate()
    with Started(pg.conninfo, workers=2) as srv:
        c = srv.client()
        try:
            with hx.LockHolder(pg) as lock:
                bg = Bg(lambda: hx.call(c, api_key=srv.key, timeout_ms=20000, recv_timeout_ms=30000,
                                        ingest=hx.ingest_records(recs("term15", 30))))
                try:
                    hx.wait_until(lambda: hx.lock_waiters(pg), 10, what="the ingest waiting on the lock")
                    srv.send_signal(signal.SIGTERM)
                    time.sleep(0.7)
                    assert srv.proc.poll() is None, \
                        f"exited {srv.proc.returncode} with a call in flight; log:\n{srv.log()[-3000:]}"
                    assert not bg.done(), hx.describe(bg.join())
                finally:
                    lock.release()
                resp = bg.join(30)
        finally:
            c.close()
        hx.assert_code(resp, "OK")
        hx.assert_counts(resp, received=30, inserted=30)
        rc = srv.wait(20)
        assert rc == 0, f"exit status {rc}; log:\n{srv.log()[-3000:]}"
    assert count_provider(pg, "term15") == 30


# ------------------------------------------------- servers racing to migrate --

@pytest.mark.parametrize("round_", range(3))
def test_two_servers_at_once_on_an_empty_database(pg, round_):
    db = f"hx_race_{round_}_{int(time.time() * 1000) % 100000}"
    pg.psql(f"CREATE DATABASE {db}")
    conninfo = hx.conninfo_with_db(pg.conninfo, db)
    servers = [hx.Server(conninfo, workers=2) for _ in range(2)]
    try:
        for s in servers:
            s.start(wait=False)
        for s in servers:
            s.wait_ready(60)
        for k, s in enumerate(servers):
            resp = s.call(ingest=hx.ingest_records(recs(f"race{k}", 5)))
            hx.assert_code(resp, "OK")
            hx.assert_counts(resp, received=5, inserted=5)
        other = copy.copy(pg)
        other.conninfo = conninfo
        versions = other.psql(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version")
        assert versions, "schema_migrations is empty"
        assert all(cnt == "1" for _, cnt in versions), versions
        for s in servers:
            s.stop()
    finally:
        for s in servers:
            s.cleanup()
        pg.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", check=False)


# ------------------------------------------------ replay after a restart --

def test_request_id_replay_survives_a_restart(pg):
    pg.truncate()
    r = hx.rid("restart")
    batch = recs("restart", 12, cost="42.123456")
    with Started(pg.conninfo, workers=2) as srv:
        first = srv.call(request_id=r, ingest=hx.ingest_records(batch))
        hx.assert_code(first, "OK")
        hx.assert_counts(first, received=12, inserted=12)
        key = srv.key
    before = pg.snapshot()
    with Started(pg.conninfo, keys=[key], workers=2) as srv:
        again = srv.call(request_id=r, ingest=hx.ingest_records(batch))
        hx.assert_code(again, "OK")
        assert again.ingest.replayed, hx.describe(again)
        hx.assert_counts(again, received=12, inserted=12, updated=0, unchanged=0, failed=0)
        other = srv.call(request_id=r, ingest=hx.ingest_records(recs("restart", 12, cost="1")))
        hx.assert_code(other, "INVALID_ARGUMENT")
        assert "request_id" in hx.violation_fields(other), hx.describe(other)
    assert pg.snapshot() == before
    assert len(ok_runs(pg, r)) == 1

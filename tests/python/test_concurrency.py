"""Many clients at once against --workers 4 (SERVICE.md section 5,
Concurrency): ingests of disjoint and overlapping keys, replays racing each
other, health from many threads. Every thread has its own req0 socket."""

import datetime
import random
import threading
import time
from decimal import Decimal


import hxharness as hx
from hxharness import pb

SERVER_OPTS = {"workers": 4}

THREADS = 8
ROUNDS = 4
DISJOINT = 40
SHARED = 60
D0 = datetime.date(2026, 6, 1)


def disjoint_cost(t, i, r):
    return Decimal(1000 + 10 * t + i) + Decimal(r) / 4


def shared_cost(k, r):
    return Decimal(500 + k) + Decimal(r) / 10 + Decimal("0.000001")


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a client thread hung"
    assert not errors, errors


def test_concurrent_disjoint_and_overlapping_ingests(clean, server):
    barrier = threading.Barrier(THREADS, timeout=120)
    results = {}  # (t, r, "d"|"s") -> IngestResult
    lock = threading.Lock()

    def worker(t):
        rng = random.Random(t)
        with server.client(timeout_ms=120000) as c:
            for r in range(ROUNDS):
                barrier.wait()
                mine = [((D0 + datetime.timedelta(days=i)).isoformat(), f"Thread{t}", "G",
                         str(disjoint_cost(t, i, r))) for i in range(DISJOINT)]
                shared = [((D0 + datetime.timedelta(days=k)).isoformat(), "SHARED", f"s{k % 3}",
                           str(shared_cost(k, r))) for k in range(SHARED)]
                rng.shuffle(shared)  # every thread locks the shared rows in another order
                for kind, batch in (("s", shared), ("d", mine)) if t % 2 else (("d", mine), ("s", shared)):
                    resp = hx.call(c, api_key=server.key, request_id=hx.rid(f"c{t}{kind}{r}"),
                                   ingest=hx.ingest_records(batch))
                    hx.assert_code(resp, "OK")
                    hx.assert_counts(resp, received=len(batch), failed=0)
                    with lock:
                        results[(t, r, kind)] = resp.ingest

    run_threads(THREADS, worker)

    for t in range(THREADS):
        first = results[(t, 0, "d")]
        assert (first.inserted, first.updated, first.unchanged) == (DISJOINT, 0, 0), (t, str(first))
        for r in range(1, ROUNDS):
            x = results[(t, r, "d")]
            assert (x.inserted, x.updated, x.unchanged) == (0, DISJOINT, 0), (t, r, str(x))
    # overlapping keys: within a round, exactly one writer per key changes it;
    # the others find it already at that value
    for r in range(ROUNDS):
        xs = [results[(t, r, "s")] for t in range(THREADS)]
        ins = sum(x.inserted for x in xs)
        upd = sum(x.updated for x in xs)
        unch = sum(x.unchanged for x in xs)
        if r == 0:
            assert (ins, upd, unch) == (SHARED, 0, SHARED * (THREADS - 1)), (r, ins, upd, unch)
        else:
            assert (ins, upd, unch) == (0, SHARED, SHARED * (THREADS - 1)), (r, ins, upd, unch)

    last = ROUNDS - 1
    want = {}
    for t in range(THREADS):
        for i in range(DISJOINT):
            want[((D0 + datetime.timedelta(days=i)).isoformat(), f"thread{t}", "g")] = disjoint_cost(t, i, last)
    for k in range(SHARED):
        want[((D0 + datetime.timedelta(days=k)).isoformat(), "shared", f"s{k % 3}")] = shared_cost(k, last)
    got = {(d, p, g): c for d, p, g, c in clean.rows()}
    assert len(got) == THREADS * DISJOINT + SHARED
    assert got == want
    total = sum(want.values(), Decimal(0))
    assert Decimal(clean.scalar("SELECT sum(cost_usd) FROM cost_snapshots")) == total
    resp = server.call(summary=pb.SummaryRequest(group_by=pb.NONE))
    hx.assert_code(resp, "OK")
    assert resp.summary.rows[0].records == len(want)
    assert Decimal(resp.summary.rows[0].total_usd) == total
    resp = server.call(summary=pb.SummaryRequest(group_by=pb.PROVIDER, provider="SHARED"))
    hx.assert_code(resp, "OK")
    assert [(r.provider, r.records) for r in resp.summary.rows] == [("shared", SHARED)]
    assert Decimal(resp.summary.rows[0].total_usd) == sum((shared_cost(k, last) for k in range(SHARED)), Decimal(0))


def test_same_request_id_racing_runs_once(clean, server):
    r = hx.rid("race")
    barrier = threading.Barrier(THREADS, timeout=60)
    replies = []
    lock = threading.Lock()

    def worker(t):
        with server.client(timeout_ms=60000) as c:
            barrier.wait()
            resp = hx.call(c, api_key=server.key, request_id=r, ingest=hx.ingest_mock())
            with lock:
                replies.append(resp)

    run_threads(THREADS, worker)
    for resp in replies:
        hx.assert_code(resp, "OK")
        hx.assert_counts(resp, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    assert sorted(x.ingest.replayed for x in replies) == [False] + [True] * (THREADS - 1), \
        [hx.describe(x) for x in replies]
    assert clean.count() == 28


def test_health_from_many_threads_during_ingests(clean, server):
    stop = threading.Event()
    counts = {"health": 0}
    lock = threading.Lock()

    def ingester(i):
        with server.client(timeout_ms=60000) as c:
            n = 0
            while not stop.is_set() and n < 40:
                batch = [((D0 + datetime.timedelta(days=d)).isoformat(), f"bg{i}", "x", f"{n + 1}.5")
                         for d in range(50)]
                hx.assert_code(hx.call(c, api_key=server.key, ingest=hx.ingest_records(batch)), "OK")
                n += 1

    def checker(i):
        with server.client(timeout_ms=30000) as c:
            for _ in range(25):
                resp = hx.call(c, api_key=server.key, request_id=hx.rid(f"h{i}"), health=pb.HealthRequest())
                hx.assert_code(resp, "OK")
                assert resp.health.serving and resp.health.database_ok, hx.describe(resp)
                with lock:
                    counts["health"] += 1

    bg_errors = []

    def background():
        try:
            run_threads(2, ingester)
        except BaseException as e:  # noqa: BLE001 - asserted below
            bg_errors.append(repr(e))

    bg = threading.Thread(target=background)
    bg.start()
    t0 = time.monotonic()
    try:
        run_threads(16, checker)
    finally:
        stop.set()
        bg.join(300)
    assert not bg_errors, bg_errors
    assert counts["health"] == 16 * 25
    assert time.monotonic() - t0 < 120
    assert clean.count() == 100


def worker_backends_since(pg, t0):
    """Pids of the server's database backends whose last transaction ended
    after t0 (a timestamp from pg's own clock): one per worker that served
    an ingest since, as each worker has its own connection."""
    rows = pg.psql(f"SELECT pid FROM pg_stat_activity WHERE application_name = '{hx.APP_NAME}' "
                   f"AND query = 'COMMIT' AND state_change > '{t0}' ORDER BY pid")
    return [r[0] for r in rows]


def test_calls_in_turn_stay_on_one_worker_and_a_busy_one_is_passed_over(clean, server):
    """dispatch.c: a client calling one call after another is served by the
    worker that went idle last - one worker, one warm database backend - not
    by each of the four in turn, as rep0's own order (the longest-waiting
    context first) would have it. And a request that arrives while that
    worker is held goes to another: held here on purpose, by the advisory
    lock a request takes on its request_id, so nothing depends on timing."""
    def batch(tag, i):
        return hx.ingest_records([((D0 + datetime.timedelta(days=d)).isoformat(), tag, "x",
                                   f"{i + 1}.25") for d in range(3)])

    t0 = clean.scalar("SELECT clock_timestamp()")
    with server.client() as c:
        for i in range(12):
            hx.assert_code(hx.call(c, api_key=server.key, ingest=batch("seq", i)), "OK")
    used = worker_backends_since(clean, t0)
    assert len(used) == 1, f"12 calls in turn ran on backends {used}"

    held_rid = hx.rid("held")
    done = {}
    # the store's own lock on a request_id (store_write.c), taken first
    lock = f"DO $$BEGIN PERFORM pg_advisory_xact_lock(hashtextextended('{held_rid}', 0)); END$$"
    with hx.LockHolder(clean, lock):
        def held():
            with server.client(timeout_ms=60000) as c:
                done["resp"] = hx.call(c, api_key=server.key, request_id=held_rid,
                                       ingest=batch("held", 0))

        t = threading.Thread(target=held)
        t.start()
        waiting = hx.wait_until(lambda: hx.lock_waiters(clean), 30, what="the held request")
        t1 = clean.scalar("SELECT clock_timestamp()")
        with server.client(timeout_ms=20000) as c:
            for i in range(3):
                hx.assert_code(hx.call(c, api_key=server.key, ingest=batch("free", i)), "OK")
        others = worker_backends_since(clean, t1)
        assert "resp" not in done, "the held request finished while its lock was held"
        assert len(waiting) == 1, waiting
        held_pid = waiting[0][0]
        assert len(others) == 1 and others[0] != held_pid, (others, waiting)
    t.join(60)
    assert not t.is_alive()
    hx.assert_code(done["resp"], "OK")
    assert clean.count() == 3 * 3

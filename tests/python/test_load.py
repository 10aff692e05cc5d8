"""Load and soak: 32 client threads, each with its own req0 socket, mix
ingest, health and summary against --workers 4 for HX_LOAD_SECONDS seconds
(default 10; the full soak is HX_LOAD_SECONDS=60).

Asserted: not one error (every reply OK, every count as expected, no
timeout); every acknowledged row present afterwards with its exact cost;
each acknowledged real ingest has its one successful ingestion_runs row;
the server's RSS and open file descriptors flat from the first to the last
quarter of the run. Printed, never asserted: calls/s and p50/p99 per method.
"""

import datetime
import os
import random
import statistics
import threading
import time
from decimal import Decimal

import hxharness as hx
from hxharness import pb

THREADS = 32
WORKERS = 4
SECONDS = float(os.environ.get("HX_LOAD_SECONDS", "10"))
MAX_CALLS_PER_THREAD = 200_000  # a bound by count as well as by time
SAMPLE_EVERY = 0.5
WARMUP = 1.0  # seconds before resource sampling starts (first connections, arenas)

SERVER_OPTS = {"workers": WORKERS, "log_level": "info"}

D0 = datetime.date(2010, 1, 1)


class ThreadState:
    """What one client thread has had acknowledged. Its keys are its own
    (provider lt<t>), so the last acknowledged cost of each is exact."""

    def __init__(self, t):
        self.t = t
        self.provider = f"lt{t}"
        self.rng = random.Random(1000 + t)
        self.acked = {}          # (date, provider, gpu) -> Decimal
        self.next_day = 0
        self.done_ingests = []   # (request_id, IngestRequest, IngestResult) of real runs
        self.real_rids = set()   # request_ids whose real run was acknowledged
        self.lat = {"ingest": [], "health": [], "summary": []}
        self.ends = []          # monotonic time each call's reply came
        self.errors = []
        self.calls = 0

    def cost(self):
        """A decimal with 0 to 6 fractional digits, as text would carry it."""
        n, k = self.rng.randrange(100, 10**9), self.rng.randrange(0, 7)
        return Decimal(f"{n // 10**k}.{n % 10**k:0{k}d}" if k else str(n))

    def new_batch(self):
        n = self.rng.randrange(3, 16)
        out = []
        for _ in range(n):
            d = (D0 + datetime.timedelta(days=self.next_day // 4)).isoformat()
            out.append((d, self.provider, f"g{self.next_day % 4}", str(self.cost())))
            self.next_day += 1
        return out

    def update_batch(self):
        keys = self.rng.sample(sorted(self.acked), min(len(self.acked), self.rng.randrange(1, 8)))
        out = []
        for d, p, g in keys:
            c = self.cost()
            while c == self.acked[(d, p, g)]:
                c = self.cost()
            out.append((d, p, g, str(c)))
        return out


def client_thread(server, st, clock, start):
    with server.client(timeout_ms=30000) as c:
        start.wait()
        while time.monotonic() < clock["stop_at"] and st.calls < MAX_CALLS_PER_THREAD:
            st.calls += 1
            roll = st.rng.random()
            try:
                if roll < 0.55:
                    one_ingest(server, c, st)
                elif roll < 0.75:
                    one_summary(server, c, st)
                else:
                    one_health(server, c, st)
            except Exception as e:  # noqa: BLE001 - every error is counted and shown
                st.errors.append(repr(e))
            if len(st.errors) > 20:
                return


def timed(st, method, c, key, **kw):
    r = hx.rid(f"l{st.t}")
    req = hx.make_request(key, r, kw.pop("timeout_ms", 0), **kw)
    data = req.SerializeToString()
    t0 = time.monotonic()
    resp = hx.raw(c, data)
    st.lat[method].append(time.monotonic() - t0)
    st.ends.append(time.monotonic())
    assert resp.request_id == r, (r, resp.request_id)
    return resp, r, req


def one_ingest(server, c, st):
    roll = st.rng.random()
    if roll < 0.10 and st.done_ingests:
        # the same request again under its request_id: replayed, same counts
        r, req, res = st.rng.choice(st.done_ingests)
        t0 = time.monotonic()
        resp = hx.raw(c, hx.make_request(server.key, r, 0, ingest=req).SerializeToString())
        st.lat["ingest"].append(time.monotonic() - t0)
        st.ends.append(time.monotonic())
        if resp.status.code != 0 or not resp.ingest.replayed or \
                (resp.ingest.inserted, resp.ingest.updated, resp.ingest.unchanged) != \
                (res.inserted, res.updated, res.unchanged):
            st.errors.append(f"replay of {r}: {hx.describe(resp)}; first {res}")
        return
    if roll < 0.20 and st.done_ingests:
        # the last acknowledged batch again, fresh request_id: nothing changes
        _, req, _ = st.done_ingests[-1]
        batch = [(x.date, x.provider, x.gpu_type, x.cost_usd) for x in req.records.records]
        want = ("unchanged", len(batch))
    elif roll < 0.45 and st.acked:
        batch = st.update_batch()
        want = ("updated", len(batch))
    else:
        batch = st.new_batch()
        want = ("inserted", len(batch))
    ingest = hx.ingest_records(batch)
    resp, r, _ = timed(st, "ingest", c, server.key, ingest=ingest)
    if resp.status.code != 0:
        st.errors.append(f"ingest {want}: {hx.describe(resp)}")
        return
    res = resp.ingest
    got = {"inserted": res.inserted, "updated": res.updated, "unchanged": res.unchanged}
    if res.replayed or res.received != len(batch) or res.failed or got[want[0]] != want[1]:
        st.errors.append(f"ingest expected {want}: {hx.describe(resp)}")
        return
    for d, p, g, cost in batch:
        st.acked[(d, p, g)] = Decimal(cost)
    st.done_ingests.append((r, ingest, res))
    st.real_rids.add(r)
    if len(st.done_ingests) > 50:
        st.done_ingests.pop(0)


def one_summary(server, c, st):
    # the thread's own provider: it alone writes it, so the answer is exact
    resp, _, _ = timed(st, "summary", c, server.key,
                       summary=pb.SummaryRequest(group_by=pb.PROVIDER, provider=st.provider.upper()))
    if resp.status.code != 0:
        st.errors.append(f"summary: {hx.describe(resp)}")
        return
    rows = [(x.provider, x.records, Decimal(x.total_usd) if x.total_usd else Decimal(0))
            for x in resp.summary.rows]
    want = [(st.provider, len(st.acked), sum(st.acked.values(), Decimal(0)))] if st.acked else []
    if rows != want:
        st.errors.append(f"summary {rows} != {want}")


def one_health(server, c, st):
    resp, _, _ = timed(st, "health", c, server.key, health=pb.HealthRequest())
    if resp.status.code != 0 or not resp.health.serving or not resp.health.database_ok:
        st.errors.append(f"health: {hx.describe(resp)}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def test_load_and_soak(clean, server):
    pid = server.proc.pid
    asan = hx.proc_has_asan(pid)
    states = [ThreadState(t) for t in range(THREADS)]
    clock = {}

    def go():
        clock["t_begin"] = time.monotonic()
        clock["stop_at"] = clock["t_begin"] + SECONDS

    start = threading.Barrier(THREADS + 1, action=go, timeout=60)
    samples = []  # (seconds since start, rss KiB, fds)
    sampler_stop = threading.Event()

    def sampler():
        while not sampler_stop.wait(SAMPLE_EVERY):
            samples.append((time.monotonic() - clock["t_begin"], hx.proc_rss_kib(pid), hx.proc_fd_count(pid)))

    threads = [threading.Thread(target=client_thread, args=(server, st, clock, start), daemon=True)
               for st in states]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.monotonic()
    smp = threading.Thread(target=sampler, daemon=True)
    smp.start()
    for th in threads:
        th.join(SECONDS + 120)
    elapsed = time.monotonic() - t0
    sampler_stop.set()
    smp.join(5)
    assert not any(th.is_alive() for th in threads), "a client thread hung"

    # ---- figures (printed, never asserted) ----
    lat = {m: [x for st in states for x in st.lat[m]] for m in ("ingest", "health", "summary")}
    total = sum(len(v) for v in lat.values())
    print(f"\nload: {THREADS} threads, --workers {WORKERS}, {elapsed:.1f}s{' (ASan)' if asan else ''}: "
          f"{total} calls, {total / elapsed:.0f} calls/s")
    for m, xs in lat.items():
        print(f"  {m:8s} {len(xs):7d} calls {len(xs) / elapsed:7.0f}/s  "
              f"p50 {pct(xs, 50) * 1000:7.2f} ms  p99 {pct(xs, 99) * 1000:7.2f} ms")
    ends = sorted(x - clock["t_begin"] for st in states for x in st.ends)
    quarter = SECONDS / 4
    per_q = [sum(1 for x in ends if k * quarter <= x < (k + 1) * quarter) / quarter for k in range(4)]
    print("  calls/s by quarter: " + ", ".join(f"{x:.0f}" for x in per_q) +
          f"; rows at the end: {clean.count()}")

    # ---- zero errors ----
    errors = [(st.t, e) for st in states for e in st.errors]
    assert not errors, f"{len(errors)} errors, first: {errors[:10]}"
    assert all(lat[m] for m in lat), {m: len(v) for m, v in lat.items()}

    # ---- every acknowledged row, with its exact cost ----
    want = {}
    for st in states:
        want.update(st.acked)
    got = {(d, p, g): c for d, p, g, c in clean.rows()}
    assert len(got) == len(want), (len(got), len(want))
    assert got == want, [k for k in want if got.get(k) != want[k]][:10]
    # each acknowledged real ingest: exactly one successful real run row
    real = set().union(*(st.real_rids for st in states))
    runs = {}
    for (r,) in clean.psql("SELECT request_id FROM ingestion_runs WHERE code = 0 AND NOT dry_run "
                           "AND NOT replayed"):
        runs[r] = runs.get(r, 0) + 1
    assert set(runs) == real, (len(set(runs) - real), len(real - set(runs)))
    assert all(v == 1 for v in runs.values())
    assert int(clean.scalar("SELECT count(*) FROM ingestion_runs WHERE code <> 0")) == 0

    # ---- RSS and file descriptors flat ----
    steady = [s for s in samples if s[0] >= WARMUP]
    assert len(steady) >= 8, f"too few samples: {len(samples)}"
    q = max(1, len(steady) // 4)
    first, last = steady[:q], steady[-q:]
    rss0, rss1 = statistics.median(s[1] for s in first), statistics.median(s[1] for s in last)
    fd0, fd1 = statistics.median(s[2] for s in first), statistics.median(s[2] for s in last)
    print(f"  server RSS first quarter {rss0 / 1024:.1f} MiB, last quarter {rss1 / 1024:.1f} MiB "
          f"(max {max(s[1] for s in samples) / 1024:.1f}); fds {fd0:.0f} -> {fd1:.0f} "
          f"(max {max(s[2] for s in samples)})")
    # ASan's quarantine holds freed memory by design (up to 256 MiB) and fills
    # during the run: under ASan only the descriptors are held to the bound.
    if not asan and not getattr(hx, "SERVER_WRAPPER", None):  # nor valgrind's own heap
        assert rss1 <= rss0 * 1.25 + 4 * 1024, \
            f"server RSS grew from {rss0 / 1024:.1f} to {rss1 / 1024:.1f} MiB: {samples}"
    assert fd1 <= fd0 + 4, f"server fds grew from {fd0} to {fd1}: {samples}"

    # and the server is still in good shape
    server.assert_healthy()
    hx.assert_code(server.call(ingest=hx.ingest_records([("2009-12-31", "lt-end", "g", "1")])), "OK")

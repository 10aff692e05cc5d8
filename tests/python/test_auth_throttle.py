"""Repeated auth failures from one peer are slowed down, and no one else is.

Peers are told apart by address (the port does not count) or, on ipc://, by
connection. Every test plays its guesser from its own loopback address
(nng's "tcp://SRC;HOST:PORT" dial form; all of 127/8 is loopback on Linux),
so the peers are as distinct to the server as two machines would be, and the
tests do not feed each other's counts. The well-behaved client dials from
127.0.0.1 and never fails.

The server runs with only two workers: were a delay to hold a worker, a
handful of throttled requests would stall every other client for seconds,
and the latency checks below would fail.
"""

import threading
import time

import pytest

import hxharness as hx

pb = hx.pb
SERVER_OPTS = dict(workers=2)

FREE = 5              # failures without delay (HX_THROTTLE_FREE)
BASE_S = 1.0          # the first delay (HX_THROTTLE_BASE_MS)
CAP_S = 5.0           # the longest (HX_THROTTLE_CAP_MS)
DEFER_SLOTS = 64      # delayed replies held at once (DEFER_SLOTS in src/server/server.c)
GOOD_P99_S = 0.200
WRONG_KEY = "not-the-key-" + "g" * 24


def timed(sock, key, **kw):
    t0 = time.monotonic()
    resp = hx.call(sock, api_key=key, health=pb.HealthRequest(), **kw)
    return resp, time.monotonic() - t0


def fail_n(sock, n):
    """n wrong-key calls in a row; returns their durations."""
    out = []
    for _ in range(n):
        resp, dt = timed(sock, WRONG_KEY, recv_timeout_ms=int((CAP_S + 5) * 1000))
        hx.assert_code(resp, "UNAUTHENTICATED")
        out.append(dt)
    return out


class Guessers:
    """n threads, each on its own connection from src, sending wrong keys
    back to back until stop()."""

    def __init__(self, url, src, n):
        self.url, self.src = hx.from_source(url, src), src
        self.results = []  # (started, duration, code or None for no answer)
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self):
        with hx.NngClient(self.url) as c:
            while not self.halt.is_set():
                t0 = time.monotonic()
                try:
                    code = hx.call(c, api_key=WRONG_KEY, health=pb.HealthRequest(),
                                   recv_timeout_ms=int((CAP_S + 5) * 1000)).status.code
                except hx.NngTimeout:
                    code = None
                with self.lock:
                    self.results.append((t0, time.monotonic() - t0, code))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(CAP_S + 10)
        assert not any(t.is_alive() for t in self.threads), "a guesser thread hung"
        return sorted(self.results)


def good_latencies(url, key, seconds):
    """Health calls with the right key from 127.0.0.1 for `seconds`."""
    lat = []
    with hx.NngClient(url) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            resp, dt = timed(c, key, recv_timeout_ms=5000)
            hx.assert_code(resp, "OK")
            lat.append(dt)
            time.sleep(0.01)
    return lat


def test_guesser_is_slowed_and_others_are_not(server):
    guessers = Guessers(server.url, "127.0.0.2", 8).start()
    try:
        time.sleep(0.5)  # past the free allowance: every guesser now waits
        lat = good_latencies(server.url, server.key, 5.0)
    finally:
        results = guessers.stop()

    codes = {code for _, _, code in results}
    assert codes <= {hx.CODE["UNAUTHENTICATED"]}, f"a guess was not refused: {codes}"
    fast = [dt for _, dt, _ in results if dt < BASE_S * 0.9]
    assert len(fast) <= FREE, f"{len(fast)} guesses answered without delay: {fast}"
    assert len(results) >= FREE + 8, f"too few guesses answered: {len(results)}"
    # unthrottled, 8 connections would make thousands of guesses in 5.5 s
    assert len(results) <= FREE + 8 * 6 / BASE_S, f"{len(results)} guesses: not throttled"

    assert len(lat) >= 50, f"only {len(lat)} health calls in 5 s"
    p99 = hx.percentile(lat, 99)
    assert p99 < GOOD_P99_S, f"well-behaved client slowed: p99 {p99 * 1000:.0f} ms over {len(lat)} calls"
    log = server.log()
    assert "peer=127.0.0.2:" in log, "the guesses did not come from 127.0.0.2"
    assert "peer 127.0.0.2:" in log and "delayed" in log, "no log line about the throttled peer"


def test_penalty_is_per_peer_and_never_delays_success(server):
    guesser = hx.NngClient(hx.from_source(server.url, "127.0.0.3"))
    other = hx.NngClient(hx.from_source(server.url, "127.0.0.4"))
    try:
        durations = fail_n(guesser, FREE + 1)
        assert max(durations[:FREE]) < BASE_S * 0.5, durations
        assert durations[FREE] >= BASE_S * 0.9, f"the failure past the allowance was not delayed: {durations}"
        # Another peer's wrong key is its own business: answered at once.
        assert max(fail_n(other, FREE)) < GOOD_P99_S
        # The throttled peer with the right key is never delayed.
        for _ in range(5):
            resp, dt = timed(guesser, server.key)
            hx.assert_code(resp, "OK")
            assert dt < GOOD_P99_S, f"a successful call from a throttled peer took {dt:.3f} s"
    finally:
        guesser.close()
        other.close()


def test_forgiven_after_a_quiet_spell(server):
    with hx.NngClient(hx.from_source(server.url, "127.0.0.5")) as c:
        durations = fail_n(c, FREE + 1)
        assert durations[FREE] >= BASE_S * 0.9, durations
        # The count decays at FREE failures per 10 s: after 6 s quiet the
        # next failure is within the allowance again.
        time.sleep(6)
        assert fail_n(c, 1)[0] < BASE_S * 0.5


def test_delayed_replies_are_bounded(server):
    src = "127.0.0.6"
    with hx.NngClient(hx.from_source(server.url, src)) as c:
        fail_n(c, FREE + 1)  # now throttled
    n = DEFER_SLOTS + 36
    socks = [hx.NngClient(hx.from_source(server.url, src)) for _ in range(n)]
    results = [None] * n

    def one(i):
        try:
            results[i] = hx.call(socks[i], api_key=WRONG_KEY, health=pb.HealthRequest(),
                                 recv_timeout_ms=int((CAP_S + 3) * 1000)).status.code
        except hx.NngTimeout:
            results[i] = "no answer"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        lat = good_latencies(server.url, server.key, 3.0)
        for t in threads:
            t.join(CAP_S + 10)
    finally:
        for s in socks:
            s.close()
    answered = [r for r in results if r != "no answer"]
    assert set(answered) <= {hx.CODE["UNAUTHENTICATED"]}, results
    # All n arrive within the shortest delay, so all but DEFER_SLOTS are dropped.
    assert len(answered) <= DEFER_SLOTS, f"{len(answered)} delayed replies held at once"
    assert len(answered) >= DEFER_SLOTS // 2, f"only {len(answered)} delayed replies answered"
    assert hx.percentile(lat, 99) < GOOD_P99_S, f"p99 {hx.percentile(lat, 99):.3f} s"
    server.assert_healthy()


@pytest.fixture(scope="module")
def ipc_server(pg, api_key):
    srv = hx.Server(pg.conninfo, keys=[api_key], ipc=True, workers=2)
    try:
        srv.start()
        yield srv
        assert api_key not in srv.stop()
    finally:
        srv.cleanup()


def test_ipc_counts_per_connection(ipc_server):
    # ipc:// carries no address: each connection is its own peer.
    with hx.NngClient(ipc_server.url) as a, hx.NngClient(ipc_server.url) as b:
        durations = fail_n(a, FREE + 1)
        assert durations[FREE] >= BASE_S * 0.9, durations
        assert max(fail_n(b, FREE)) < GOOD_P99_S
        resp, dt = timed(a, ipc_server.key)
        hx.assert_code(resp, "OK")
        assert dt < GOOD_P99_S


def test_shutdown_with_delayed_replies_pending(pg, api_key):
    # Delayed replies are stopped, not waited for, at shutdown: the server
    # exits 0 at once (and, under ASan or valgrind, without a leak).
    srv = hx.Server(pg.conninfo, keys=[api_key], workers=2)
    try:
        srv.start()
        url = hx.from_source(srv.url, "127.0.0.7")
        with hx.NngClient(url) as c:
            fail_n(c, FREE + 1)
        guessers = Guessers(srv.url, "127.0.0.7", 6).start()
        time.sleep(0.5)  # all six now wait out their delays
        t0 = time.monotonic()
        log = srv.stop()  # asserts exit status 0
        assert time.monotonic() - t0 < CAP_S * hx.WRAPPER_SLOWDOWN, "shutdown waited for the delays"
        assert api_key not in log
        guessers.stop()
    finally:
        srv.cleanup()

"""Fast, named failures (issue 11): when nobody can be reached, the client
library says why at once, as UNAVAILABLE, naming the URL and the cause; a
server that took the request and is slow still gets DEADLINE_EXCEEDED.

Every case runs the real CLI (which uses libheliox-client) against real
sockets with a long --timeout, and asserts the code, the cause in the
message, and an elapsed time far below the timeout.
"""

import json
import os
import re
import signal
import socket
import time

import pytest

import hxharness as hx

TIMEOUT_MS = 20000
FAST_S = 3.0  # "well within the timeout": a failure must come faster than this


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return hx.make_tls_certs(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def tls_server(pg, api_key, certs):
    plain = hx.free_port()
    port = hx.free_port()
    srv = hx.Server(pg.conninfo, keys=[api_key],
                    listen=[f"tcp://127.0.0.1:{plain}", f"tls+tcp://127.0.0.1:{port}"],
                    extra=["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"]])
    srv.plain_port, srv.tls_port = plain, port
    try:
        srv.start()
        yield srv
        srv.stop()
    finally:
        srv.cleanup()


def cli(urls, *args, key="k" * 24, timeout_ms=TIMEOUT_MS):
    argv = []
    for u in urls:
        argv += ["--url", u]
    t0 = time.monotonic()
    p = hx.run_cli(argv + ["--timeout", str(timeout_ms), "--json", *args, "health"], key=key)
    elapsed = time.monotonic() - t0
    out = p.stdout.decode()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON object on stdout, got {out!r} / {p.stderr!r}"
    return p.returncode, json.loads(lines[0]), elapsed


def assert_fast_unavailable(rc, doc, elapsed, *needles):
    assert rc == 5, (rc, doc)
    assert doc["code"] == "UNAVAILABLE", doc
    for n in needles:
        assert n in doc["message"], f"{n!r} not in {doc['message']!r}"
    assert elapsed < FAST_S, f"took {elapsed:.2f}s (timeout {TIMEOUT_MS} ms): {doc['message']}"


def test_connection_refused():
    url = f"tcp://127.0.0.1:{hx.free_port()}"
    assert_fast_unavailable(*cli([url]), url, "connection refused")


def test_ipc_without_server(tmp_path):
    url = f"ipc://{tmp_path}/none.sock"
    assert_fast_unavailable(*cli([url]), url, "connection refused", "no socket file")


def test_name_not_resolved():
    url = "tcp://ingest.invalid:7407"  # .invalid never resolves (RFC 6761)
    assert_fast_unavailable(*cli([url]), url, "name not resolved", "ingest.invalid")


def test_tls_unknown_ca(tls_server, certs):
    url = f"tls+tcp4://localhost:{tls_server.tls_port}"
    assert_fast_unavailable(*cli([url], "--tls-ca", certs["other.pem"]), url,
                            "TLS handshake failed", "unknown CA", certs["other.pem"])


def test_tls_name_mismatch(tls_server, certs):
    url = f"tls+tcp4://localhost:{tls_server.tls_port}"
    assert_fast_unavailable(*cli([url], "--tls-ca", certs["ca.pem"], "--tls-server-name",
                                 "other.example"),
                            url, "TLS handshake failed", "name mismatch", "other.example")


def test_plain_tcp_to_a_tls_port(tls_server):
    url = f"tcp://127.0.0.1:{tls_server.tls_port}"
    assert_fast_unavailable(*cli([url]), url, "not TLS", f"tls+{url}")


def test_tls_to_a_plain_port(tls_server, certs):
    url = f"tls+tcp4://localhost:{tls_server.plain_port}"
    assert_fast_unavailable(*cli([url], "--tls-ca", certs["ca.pem"]), url,
                            "TLS handshake failed", "not TLS")


def test_tls_good_still_answers(tls_server, certs):
    rc, doc, _ = cli([f"tls+tcp4://localhost:{tls_server.tls_port}"], "--tls-ca", certs["ca.pem"],
                     key=tls_server.key)
    assert rc == 0 and doc["code"] == "OK" and doc["serving"] is True, doc


def test_server_logs_failed_tls_handshakes(tls_server, certs):
    url = f"tls+tcp4://localhost:{tls_server.tls_port}"
    cli([url], "--tls-ca", certs["other.pem"])
    log = hx.wait_until(lambda: "TLS handshake" in tls_server.log() and tls_server.log(), 15,
                        what="a failed-handshake line in the server log")
    line = [ln for ln in log.splitlines() if "TLS handshake" in ln][0]
    assert "WARN" in line.upper() and f"tls+tcp://127.0.0.1:{tls_server.tls_port}" in line, line
    assert re.search(r": [1-9][0-9]* TLS handshake\(s\) failed .*, from 127\.0\.0\.1:[0-9]+",
                     line), line


def not_tls_from(port):
    """A connection to the TLS port that sends plain bytes, from a local
    port the kernel picks: returns that port once the server hung up."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 8)
        try:
            while s.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        return s.getsockname()[1]
    finally:
        s.close()


def test_server_names_the_peer_of_a_failed_handshake_and_nobody_else(pg, api_key, certs):
    """The failed handshake's own address and count, and neither the good
    client before it nor the server's own reload nudge (SIGHUP)."""
    port = hx.free_port()
    # The harness's readiness probe speaks plain nng: it gets a listener of its own.
    srv = hx.Server(pg.conninfo, keys=[api_key],
                    listen=[f"tcp://127.0.0.1:{hx.free_port()}", f"tls+tcp://127.0.0.1:{port}"],
                    extra=["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"]])
    try:
        srv.start()
        rc, doc, _ = cli([f"tls+tcp4://localhost:{port}"], "--tls-ca", certs["ca.pem"],
                         key=api_key)
        assert rc == 0 and doc["code"] == "OK", doc
        srv.send_signal(signal.SIGHUP)
        hx.wait_until(lambda: "TLS certificate and key reloaded" in srv.log(), 10,
                      what="the SIGHUP reload")
        time.sleep(2.5)  # two sweeps: the nudge would have been named by now
        assert "TLS handshake" not in srv.log(), srv.log()
        bad = not_tls_from(port)
        log = hx.wait_until(lambda: f"127.0.0.1:{bad}" in srv.log() and srv.log(), 15,
                            what="the failed handshake's peer in the server log")
        lines = [ln for ln in log.splitlines() if "TLS handshake" in ln]
        assert len(lines) == 1, lines
        assert re.search(rf": 1 TLS handshake\(s\) failed .*, from 127\.0\.0\.1:{bad} \(",
                         lines[0]), lines[0]
    finally:
        srv.stop()
        srv.cleanup()


def test_plain_listener_on_all_interfaces_warns(pg, api_key):
    srv = hx.Server(pg.conninfo, keys=[api_key], listen=[f"tcp://127.0.0.1:{hx.free_port()}",
                                                         f"tcp://0.0.0.0:{hx.free_port()}"])
    try:
        srv.start()
        log = srv.stop()
    finally:
        srv.cleanup()
    warned = [ln for ln in log.splitlines() if "in clear" in ln]
    assert len(warned) == 1 and "tcp://0.0.0.0:" in warned[0], log


def test_several_urls_name_each_cause():
    refused = f"tcp://127.0.0.1:{hx.free_port()}"
    unresolved = "tcp://nowhere.invalid:7407"
    rc, doc, elapsed = cli([refused, unresolved])
    assert_fast_unavailable(rc, doc, elapsed, f"{refused}: connection refused",
                            f"{unresolved}: name not resolved")


def test_one_url_down_one_up(server):
    refused = f"tcp://127.0.0.1:{hx.free_port()}"
    rc, doc, elapsed = cli([refused, server.url], key=server.key)
    assert rc == 0 and doc["code"] == "OK", doc
    assert elapsed < FAST_S


def test_slow_server_is_deadline_exceeded():
    slow = hx.SilentRep()
    try:
        rc, doc, elapsed = cli([slow.url], timeout_ms=1500)
        assert rc == 5, doc
        assert doc["code"] == "DEADLINE_EXCEEDED", doc
        assert "no answer" in doc["message"] and "1500 ms" in doc["message"], doc
        assert elapsed >= 1.4, f"gave up after {elapsed:.2f}s, before its 1.5 s timeout"
        assert slow.requests >= 1, "the request never reached the slow server"
    finally:
        slow.close()


_LOST_CHILD = """
import json, sys, time
import hxharness as hx
url, key = sys.argv[1], sys.argv[2]
out = []
with hx.ClientLib(url, key, 20000) as c:
    for step in sys.stdin:
        t0 = time.monotonic()
        code, msg = c.health_reply()
        out.append([hx.code_name(code), msg, time.monotonic() - t0])
        print(json.dumps(out[-1]), flush=True)
"""


def test_library_names_a_lost_server_fast(pg, api_key):
    """A long-lived client whose server went away learns why at once (the
    link is renewed and dialed afresh), and finds the server again when it
    is back on the same address."""
    import subprocess
    import sys
    port = hx.free_port()
    url = f"tcp://127.0.0.1:{port}"
    srv = hx.Server(pg.conninfo, keys=[api_key], listen=[url])
    env = dict(os.environ, PYTHONPATH=hx.HERE)
    env.update({"LD_PRELOAD": hx._asan_runtime(os.path.join(hx.BUILD_DIR, "libheliox-client.so")),
                "ASAN_OPTIONS": "detect_leaks=0"} if hx._asan_runtime(
                    os.path.join(hx.BUILD_DIR, "libheliox-client.so")) else {})
    child = subprocess.Popen([sys.executable, "-c", _LOST_CHILD, url, api_key], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)

    def step():
        child.stdin.write("go\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    try:
        srv.start()
        assert step()[0] == "OK"
        srv.stop()
        code, msg, secs = step()
        assert code == "UNAVAILABLE" and url in msg and "connection refused" in msg, (code, msg)
        assert secs < FAST_S, f"{secs:.2f}s to notice: {msg}"
        srv = hx.Server(pg.conninfo, keys=[api_key], listen=[url])
        srv.start()
        code, msg, _ = step()
        assert code == "OK", msg
    finally:
        child.stdin.close()
        child.wait(30)
        srv.stop(check=False)
        srv.cleanup()

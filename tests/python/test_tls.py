"""TLS: a tls+tcp:// listener, and clients (the CLI and the C library) that
always verify the server.

Certificates are made here with the openssl CLI: a CA, a server certificate
for "localhost" signed by it, and a second, unrelated CA. Verification must
hold in every direction: the right CA and name answer; a wrong CA, a wrong
name, or plain tcp:// to the TLS port get no answer at all (exit 5), never a
reply that says OK.
"""

import os
import shutil
import subprocess

import pytest

import hxharness as hx

pb = hx.pb
OPENSSL = shutil.which("openssl")
TIMEOUT_MS = 2000  # a failed handshake shows as no answer within this


def _openssl(*args, cwd):
    if OPENSSL is None:
        raise RuntimeError("openssl not found on PATH (apt-get install openssl)")
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(d, name, cn):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    _make_ca(d, "ca", "Heliox Test CA")
    _make_ca(d, "other", "Unrelated CA")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext", cwd=d)
    os.chmod(os.path.join(d, "server.key"), 0o600)
    return {n: os.path.join(d, n) for n in ("ca.pem", "other.pem", "server.pem", "server.key")}


@pytest.fixture(scope="module")
def tls_server(pg, api_key, certs):
    port = hx.free_port()
    # A plain tcp:// listener too, first, so that the harness's own readiness
    # check (which speaks plain nng) works; the tests use the TLS one.
    srv = hx.Server(pg.conninfo, keys=[api_key],
                    listen=[f"tcp://127.0.0.1:{hx.free_port()}", f"tls+tcp://127.0.0.1:{port}"],
                    extra=["--tls-cert", certs["server.pem"], "--tls-key", certs["server.key"]])
    srv.tls_port = port
    try:
        srv.start()
        yield srv
        log = srv.stop()
        assert api_key not in log, "the API key appears in the server log"
    finally:
        srv.cleanup()


def tls_url(srv, host="127.0.0.1"):
    # tls+tcp4: "localhost" must resolve to the IPv4 address the server
    # listens on, not to ::1.
    return f"tls+tcp4://{host}:{srv.tls_port}"


def cli_health(srv, *args, url=None, env=None):
    p = hx.run_cli(["--url", url or tls_url(srv), "--timeout", str(TIMEOUT_MS), "--json", *args,
                    "health"], key=srv.key, env=env)
    return p, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def assert_no_answer(p, out):
    assert p.returncode == 5, f"expected exit 5 (no answer), got {p.returncode}: {out}"
    assert '"code":"OK"' not in out.replace(" ", ""), out


# ---- the CLI ----------------------------------------------------------------------

def test_cli_good_ca_and_name(tls_server, certs):
    p, out = cli_health(tls_server, "--tls-ca", certs["ca.pem"], "--tls-server-name", "localhost")
    assert p.returncode == 0, out
    assert '"serving":true' in out.replace(" ", ""), out


def test_cli_name_defaults_to_the_url_host(tls_server, certs):
    p, out = cli_health(tls_server, "--tls-ca", certs["ca.pem"],
                        url=tls_url(tls_server, "localhost"))
    assert p.returncode == 0, out


def test_cli_wrong_ca_gets_no_answer(tls_server, certs):
    assert_no_answer(*cli_health(tls_server, "--tls-ca", certs["other.pem"],
                                 "--tls-server-name", "localhost"))


def test_cli_wrong_server_name_gets_no_answer(tls_server, certs):
    assert_no_answer(*cli_health(tls_server, "--tls-ca", certs["ca.pem"],
                                 "--tls-server-name", "other.example"))


def test_cli_verifies_by_default_against_the_system_bundle(tls_server):
    # No --tls-ca: the system bundle, which does not hold our test CA. An
    # unverified connection would answer OK here.
    assert os.path.exists("/etc/ssl/certs/ca-certificates.crt")
    assert_no_answer(*cli_health(tls_server, "--tls-server-name", "localhost"))


def test_cli_default_bundle_follows_ssl_cert_file(tls_server, certs):
    p, out = cli_health(tls_server, "--tls-server-name", "localhost",
                        env={"SSL_CERT_FILE": certs["ca.pem"]})
    assert p.returncode == 0, out


def test_cli_no_bundle_fails_clearly(tls_server):
    p, out = cli_health(tls_server, "--tls-server-name", "localhost",
                        env={"SSL_CERT_FILE": "/nonexistent/ca-bundle.crt"})
    assert p.returncode not in (0, 5), out
    assert "no system CA bundle" in out and "/nonexistent/ca-bundle.crt" in out, out


def test_cli_ip_url_without_name_is_refused_at_once(tls_server, certs):
    # mbedTLS matches DNS names only: an IP as the name to verify would fail
    # every handshake silently, so the client says so instead.
    p, out = cli_health(tls_server, "--tls-ca", certs["ca.pem"])
    assert p.returncode not in (0, 5), out
    # the limit, its cause, and the exact fix
    assert "IP address cannot be verified" in out and "mbedTLS" in out, out
    assert "--tls-server-name NAME" in out and "DNS name" in out, out


def test_plain_tcp_to_the_tls_port_gets_no_answer(tls_server):
    with hx.NngClient(f"tcp://127.0.0.1:{tls_server.tls_port}") as c:
        with pytest.raises(hx.NngTimeout):
            hx.call(c, api_key=tls_server.key, health=pb.HealthRequest(),
                    recv_timeout_ms=TIMEOUT_MS)
    p, out = cli_health(tls_server, url=f"tcp://127.0.0.1:{tls_server.tls_port}")
    assert_no_answer(p, out)
    tls_server.assert_healthy()  # and the server shrugged it off


# ---- the C client library -------------------------------------------------------------

def test_library_good_ca(tls_server, certs):
    r = hx.client_lib_health(tls_url(tls_server), tls_server.key, TIMEOUT_MS, tls_ca=certs["ca.pem"],
                             tls_server_name="localhost", calls=3)
    assert r == {"error": None, "codes": ["OK"] * 3}, r


@pytest.mark.parametrize("ca,name", [("other.pem", "localhost"), ("ca.pem", "other.example"),
                                     (None, "localhost")],
                         ids=["wrong-ca", "wrong-name", "system-bundle"])
def test_library_refuses_unverified_servers(tls_server, certs, ca, name):
    r = hx.client_lib_health(tls_url(tls_server), tls_server.key, TIMEOUT_MS,
                             tls_ca=certs[ca] if ca else None, tls_server_name=name)
    # refused at once, as UNAVAILABLE (issue 11), not after the timeout
    assert r["error"] is None and r["codes"] == ["UNAVAILABLE"], r


def test_library_default_bundle_follows_ssl_cert_file(tls_server, certs):
    r = hx.client_lib_health(tls_url(tls_server, "localhost"), tls_server.key, TIMEOUT_MS,
                             env={"SSL_CERT_FILE": certs["ca.pem"]})
    assert r == {"error": None, "codes": ["OK"]}, r


def test_library_open_fails_without_a_bundle(tls_server):
    r = hx.client_lib_health(tls_url(tls_server, "localhost"), tls_server.key, TIMEOUT_MS,
                             env={"SSL_CERT_FILE": "/nonexistent/ca-bundle.crt"})
    assert r["error"] is not None and "no system CA bundle" in r["error"], r
    assert r["open_code"] != "OK", r


# ---- SIGHUP: a new certificate without a restart ------------------------------------

def test_sighup_reloads_the_certificate(pg, api_key, certs, tmp_path):
    import signal
    import time
    d = os.path.dirname(certs["ca.pem"])
    # a second server certificate, from the unrelated CA
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server2.key", "-out",
             "server2.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server2.csr", "-CA", "other.pem", "-CAkey", "other.key",
             "-CAcreateserial", "-days", "2", "-out", "server2.pem", "-extfile", "server.ext", cwd=d)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    shutil.copy(certs["server.pem"], cert)
    shutil.copy(certs["server.key"], key)
    os.chmod(key, 0o600)
    port = hx.free_port()
    srv = hx.Server(pg.conninfo, keys=[api_key],
                    listen=[f"tcp://127.0.0.1:{hx.free_port()}", f"tls+tcp://127.0.0.1:{port}"],
                    extra=["--tls-cert", cert, "--tls-key", key])
    srv.tls_port = port
    try:
        srv.start()
        assert cli_health(srv, "--tls-ca", certs["ca.pem"], "--tls-server-name", "localhost")[0].returncode == 0
        shutil.copy(os.path.join(d, "server2.pem"), cert)
        shutil.copy(os.path.join(d, "server2.key"), key)
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        p, out = cli_health(srv, "--tls-ca", certs["other.pem"], "--tls-server-name", "localhost")
        assert p.returncode == 0, out + srv.log()[-2000:]
        assert_no_answer(*cli_health(srv, "--tls-ca", certs["ca.pem"], "--tls-server-name", "localhost"))
        # a broken certificate is refused, the last good one kept
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        srv.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert srv.proc.poll() is None
        p, out = cli_health(srv, "--tls-ca", certs["other.pem"], "--tls-server-name", "localhost")
        assert p.returncode == 0, out
        log = srv.stop()
        assert "TLS certificate and key reloaded" in log
        assert "ERROR" in log and "keeping the old" in log, log[-2000:]
    finally:
        srv.cleanup()

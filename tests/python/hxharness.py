"""hxharness - the pieces every Python test of heliox-ingestd shares.

  * NngClient      a req0 socket over ctypes on Debian's libnng.so.1
  * call()/raw()   build an RpcRequest, send it, parse the RpcResponse
  * PgCluster      a throwaway PostgreSQL (scripts/pgtmp.sh) with psql helpers
  * Server         a heliox-ingestd process on a free loopback port or ipc path
  * free_port()

Nothing here skips: a missing prerequisite (library, binary, generated code,
PostgreSQL) raises, so CI goes red instead of quietly green.

Environment (set by tests/CMakeLists.txt):
  HX_SOURCE_DIR  the repository (default: two levels above this file)
  HX_BUILD_DIR   the build tree holding heliox-ingestd and heliox-ingest
                 (default: HX_SOURCE_DIR/build)
  HX_PY_GEN      the folder holding heliox/ingest/v1/ingest_pb2.py (default:
                 generated now with protoc into a temporary folder)
  HX_SERVER_WRAPPER  a command line every heliox-ingestd is started under
                 (scripts/valgrind.sh sets a valgrind one); unset = none. With
                 it, startup and stop waits are longer, a SIGTERM precedes the
                 kill in cleanup() so the wrapper can report, and an exit status
                 of WRAPPER_ERROR_EXIT always fails the test.
"""

import ctypes
import ctypes.util
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("HX_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("HX_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
DATA_DIR = os.path.join(SOURCE_DIR, "data")
MOCK_PATH = os.path.join(DATA_DIR, "mock_cost_export.json")
PGTMP = os.path.join(SOURCE_DIR, "scripts", "pgtmp.sh")
SERVER_BIN = os.path.join(BUILD_DIR, "heliox-ingestd")
CLI_BIN = os.path.join(BUILD_DIR, "heliox-ingest")


# ---------------------------------------------------------------- protobuf --

def _load_pb():
    gen = os.environ.get("HX_PY_GEN")
    if gen:
        target = os.path.join(gen, "heliox", "ingest", "v1", "ingest_pb2.py")
        if not os.path.isfile(target):
            raise RuntimeError(f"HX_PY_GEN={gen} holds no heliox/ingest/v1/ingest_pb2.py: build the "
                               "hx_python_proto target first")
    else:
        protoc = shutil.which("protoc")
        if not protoc:
            raise RuntimeError("HX_PY_GEN unset and no protoc on PATH (apt-get install protobuf-compiler)")
        gen = tempfile.mkdtemp(prefix="hxpygen-")
        proto_dir = os.path.join(SOURCE_DIR, "proto")
        subprocess.run([protoc, f"--python_out={gen}", f"-I{proto_dir}",
                        os.path.join(proto_dir, "heliox", "ingest", "v1", "ingest.proto")], check=True)
    if gen not in sys.path:
        sys.path.insert(0, gen)
    from heliox.ingest.v1 import ingest_pb2  # noqa: E402
    return ingest_pb2


pb = _load_pb()
CODE = {name: num for name, num in pb.Code.items()}


def code_name(num):
    return pb.Code.Name(num) if num in pb.Code.values() else str(num)


# -------------------------------------------------------------------- nng --

class _NngSocket(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32)]


def _load_nng():
    for name in ("libnng.so.1", ctypes.util.find_library("nng")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise RuntimeError("cannot load libnng.so.1 (apt-get install libnng1)")
    lib.nng_req0_open.argtypes = [ctypes.POINTER(_NngSocket)]
    lib.nng_req0_open.restype = ctypes.c_int
    lib.nng_dial.argtypes = [_NngSocket, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    lib.nng_dial.restype = ctypes.c_int
    lib.nng_send.argtypes = [_NngSocket, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.nng_send.restype = ctypes.c_int
    lib.nng_recv.argtypes = [_NngSocket, ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_int]
    lib.nng_recv.restype = ctypes.c_int
    lib.nng_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.nng_free.restype = None
    lib.nng_socket_set_ms.argtypes = [_NngSocket, ctypes.c_char_p, ctypes.c_int32]
    lib.nng_socket_set_ms.restype = ctypes.c_int
    lib.nng_socket_set_size.argtypes = [_NngSocket, ctypes.c_char_p, ctypes.c_size_t]
    lib.nng_socket_set_size.restype = ctypes.c_int
    lib.nng_close.argtypes = [_NngSocket]
    lib.nng_close.restype = ctypes.c_int
    lib.nng_strerror.argtypes = [ctypes.c_int]
    lib.nng_strerror.restype = ctypes.c_char_p
    return lib


_nng = _load_nng()
NNG_FLAG_ALLOC = 1
NNG_FLAG_NONBLOCK = 2
NNG_ETIMEDOUT = 5


class NngError(Exception):
    def __init__(self, op, rv):
        super().__init__(f"{op}: {_nng.nng_strerror(rv).decode()} ({rv})")
        self.rv = rv


class NngTimeout(NngError):
    pass


class NngClient:
    """One req0 socket dialed (in the background) to one URL. One request at a
    time per socket: give every thread its own NngClient."""

    def __init__(self, url, timeout_ms=30000):
        self.url = url
        self.timeout_ms = timeout_ms
        self._sock = _NngSocket()
        rv = _nng.nng_req0_open(ctypes.byref(self._sock))
        if rv:
            raise NngError("nng_req0_open", rv)
        self._open = True
        # Never let nng resend behind the test's back: a resend would turn
        # one ingest into two requests and blur what is being measured.
        self._check(_nng.nng_socket_set_ms(self._sock, b"req:resend-time", 3600 * 1000), "resend-time")
        self._check(_nng.nng_socket_set_size(self._sock, b"recv-size-max", 0), "recv-size-max")
        self._check(_nng.nng_dial(self._sock, url.encode(), None, NNG_FLAG_NONBLOCK), "nng_dial " + url)

    @staticmethod
    def _check(rv, op):
        if rv:
            raise NngError(op, rv)

    def request(self, data, timeout_ms=None):
        """Sends `data` (bytes) and returns the reply (bytes). Raises NngTimeout
        when no reply arrives within timeout_ms."""
        t = self.timeout_ms if timeout_ms is None else timeout_ms
        self._check(_nng.nng_socket_set_ms(self._sock, b"recv-timeout", int(t)), "recv-timeout")
        # with no server connected, send waits for one: same deadline
        self._check(_nng.nng_socket_set_ms(self._sock, b"send-timeout", int(t)), "send-timeout")
        buf = ctypes.create_string_buffer(bytes(data), len(data)) if data else None
        rv = _nng.nng_send(self._sock, buf, len(data), 0)
        if rv == NNG_ETIMEDOUT:
            raise NngTimeout("nng_send", rv)
        self._check(rv, "nng_send")
        ptr = ctypes.c_void_p()
        size = ctypes.c_size_t()
        rv = _nng.nng_recv(self._sock, ctypes.byref(ptr), ctypes.byref(size), NNG_FLAG_ALLOC)
        if rv == NNG_ETIMEDOUT:
            raise NngTimeout("nng_recv", rv)
        self._check(rv, "nng_recv")
        try:
            return ctypes.string_at(ptr, size.value)
        finally:
            _nng.nng_free(ptr, size.value)

    def close(self):
        """Closes the socket, waiting at most 10 s. Debian's libnng 1.5.2 has
        been seen to hang for good in nng_close on a req0 socket that had
        resent a request and was still getting replies to the copies as it
        closed (test_faults' resend test, twice in ten runs; the server had
        answered and exited cleanly). A close that has not returned by then
        is left behind on its daemon thread, with a line on stderr, rather
        than hanging the whole run."""
        if not self._open:
            return
        self._open = False
        t = threading.Thread(target=_nng.nng_close, args=(self._sock,), daemon=True)
        t.start()
        t.join(10)
        if t.is_alive():
            print(f"hxharness: nng_close of a req0 socket to {self.url} did not return in 10 s "
                  "(libnng); left behind", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ------------------------------------------------------------------- rpc --

def raw(sock, data, timeout_ms=None):
    """Sends raw bytes; parses the reply as an RpcResponse (the server answers
    everything, garbage included, with a well-formed RpcResponse)."""
    reply = sock.request(data, timeout_ms)
    resp = pb.RpcResponse()
    resp.ParseFromString(reply)
    return resp


def make_request(api_key="", request_id="", timeout_ms=0, **method):
    """method: one of ingest=pb.IngestRequest(...), health=pb.HealthRequest(),
    summary=pb.SummaryRequest(...), or none at all."""
    if len(method) > 1:
        raise ValueError("at most one method")
    return pb.RpcRequest(api_key=api_key, request_id=request_id, timeout_ms=timeout_ms, **method)


_CHILD_CALL = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import hxharness as hx
url, resend_ms, recv_ms = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = sys.stdin.buffer.read()
c = hx.NngClient(url)
hx.set_resend_time(c, resend_ms)
reply = c.request(data, recv_ms)
sys.stdout.buffer.write(reply)
sys.stdout.flush()
os._exit(0)  # never nng_close: see resending_call
"""


def resending_call(url, req, resend_ms, recv_timeout_ms):
    """Sends RpcRequest `req` from a req0 socket that resends it every
    resend_ms, in a child process, and returns the parsed RpcResponse.
    Debian's libnng 1.5.2 can leave its one reaper thread blocked for good
    when such a socket is closed while replies to the copies still arrive;
    every later nng_close in that process then hangs too (seen in
    test_faults' resend test, in one run of five, with the old server as
    with the new). In a child that exits without closing, nothing is
    reaped, and the test process stays healthy."""
    p = subprocess.run([sys.executable, "-c", _CHILD_CALL, HERE, url, str(int(resend_ms)),
                        str(int(recv_timeout_ms))], input=req.SerializeToString(),
                       capture_output=True, timeout=recv_timeout_ms / 1000 + 30)
    if p.returncode != 0:
        raise RuntimeError(f"resending_call: child exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    resp = pb.RpcResponse()
    resp.ParseFromString(p.stdout)
    return resp


def call(sock, api_key="", request_id="", timeout_ms=0, recv_timeout_ms=None, **method):
    """Builds an RpcRequest, sends it on `sock` (an NngClient) and returns the
    parsed RpcResponse. A non-empty request_id must come back unchanged."""
    req = make_request(api_key, request_id, timeout_ms, **method)
    resp = raw(sock, req.SerializeToString(), recv_timeout_ms)
    if request_id:
        assert resp.request_id == request_id, \
            f"request_id not echoed: sent {request_id!r}, got {resp.request_id!r}"
    return resp


def rid(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def ingest_mock(**kw):
    return pb.IngestRequest(mock=True, **kw)


def ingest_json(doc, **kw):
    if isinstance(doc, (dict, list)):
        doc = json.dumps(doc)
    if isinstance(doc, str):
        doc = doc.encode()
    return pb.IngestRequest(export_json=doc, **kw)


def cost_record(rec):
    if isinstance(rec, pb.CostRecord):
        return rec
    if isinstance(rec, dict):
        return pb.CostRecord(**rec)
    d, p, g, c = rec
    return pb.CostRecord(date=d, provider=p, gpu_type=g, cost_usd=c)


def ingest_records(recs, **kw):
    return pb.IngestRequest(records=pb.RecordBatch(records=[cost_record(r) for r in recs]), **kw)


def violations(resp):
    return [(v.field, v.description) for v in resp.status.violations]


def violation_fields(resp):
    return [v.field for v in resp.status.violations]


def describe(resp):
    """A one-line account of a reply, for assertion messages."""
    s = resp.status
    out = f"code={code_name(s.code)} message={s.message!r} request_id={resp.request_id!r}"
    if s.violations:
        out += " violations=" + repr(violations(resp)[:10])
    which = resp.WhichOneof("result")
    if which:
        out += f" {which}={{{str(getattr(resp, which)).strip()}}}".replace("\n", " ")
    return out


def assert_code(resp, name):
    assert resp.status.code == CODE[name], f"expected {name}, got {describe(resp)}"


def assert_counts(resp, received=None, inserted=None, updated=None, unchanged=None, failed=None):
    """Checks the ingest counts given and, always, the contract's invariant
    inserted + updated + unchanged + failed == received."""
    assert resp.WhichOneof("result") == "ingest", f"no ingest result: {describe(resp)}"
    r = resp.ingest
    assert r.inserted + r.updated + r.unchanged + r.failed == r.received, \
        f"counts do not add up to received: {describe(resp)}"
    want = dict(received=received, inserted=inserted, updated=updated, unchanged=unchanged, failed=failed)
    got = {k: getattr(r, k) for k in want}
    for k, v in want.items():
        if v is not None:
            assert got[k] == v, f"{k}: expected {v}, got {got[k]} ({describe(resp)})"


# ------------------------------------------------------------- mock data --

def load_mock():
    with open(MOCK_PATH, "rb") as f:
        raw_bytes = f.read()
    return raw_bytes, json.loads(raw_bytes, parse_float=Decimal, parse_int=Decimal)


def mock_stats():
    """count/total/min/max/avg of the bundled mock export, computed exactly."""
    _, doc = load_mock()
    costs = [Decimal(r["cost_usd"]) for r in doc["cost_data"]]
    total = sum(costs, Decimal(0))
    return dict(records=len(costs), total=total, min=min(costs), max=max(costs),
                avg=round2(total / len(costs)))


def big_export(n):
    """A valid export document of n records with distinct keys (8 providers
    per day from 2000-01-01 on), compact, about 70 bytes a record."""
    import datetime
    start = datetime.date(2000, 1, 1)
    days = [(start + datetime.timedelta(days=i)).isoformat() for i in range(n // 8 + 1)]
    items = ['{"date":"%s","provider":"p%d","gpu_type":"g","cost_usd":"%d.25"}'
             % (days[i // 8], i % 8, 1 + i % 997) for i in range(n)]
    return ('{"currency":"USD","cost_data":[' + ",".join(items) + "]}").encode()


def round2(d):
    from decimal import ROUND_HALF_UP
    return Decimal(d).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -------------------------------------------------------------- postgres --

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which_or_fail(name):
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found on PATH")
    return path


class PgCluster:
    """A private PostgreSQL cluster in a temporary folder (scripts/pgtmp.sh).
    The folder is chmod 755 so that user postgres can reach it when we run as
    root; fsync is off for speed."""

    def __init__(self):
        if not os.access(PGTMP, os.X_OK):
            raise RuntimeError(f"{PGTMP} missing or not executable")
        self.dir = tempfile.mkdtemp(prefix="hxpg-")
        os.chmod(self.dir, 0o755)
        self.conninfo = None
        self.psql_bin = _which_or_fail("psql")

    def _env(self):
        env = dict(os.environ)
        env["PGTMP_FSYNC"] = "off"
        return env

    def start(self):
        p = subprocess.run([PGTMP, "start", self.dir], env=self._env(), capture_output=True,
                           text=True, timeout=180)
        if p.returncode != 0:
            raise RuntimeError(f"pgtmp.sh start failed ({p.returncode}): {p.stderr}")
        self.conninfo = p.stdout.strip().splitlines()[-1]
        assert "host=" in self.conninfo, self.conninfo
        return self.conninfo

    def stop(self):
        p = subprocess.run([PGTMP, "stop", self.dir], env=self._env(), capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"pgtmp.sh stop failed ({p.returncode}): {p.stderr}")

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, check=True):
        """Runs SQL; returns the rows of the last statement as tuples of text
        (NULL as None)."""
        p = subprocess.run([self.psql_bin, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                            "-F", "\x1f", "-P", "null=\x1e", "-d", self.conninfo, "-c", sql],
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"psql failed ({p.returncode}) on {sql!r}: {p.stderr}")
        rows = []
        for line in p.stdout.split("\n"):
            if line == "":
                continue
            rows.append(tuple(None if v == "\x1e" else v for v in line.split("\x1f")))
        return rows

    def scalar(self, sql):
        rows = self.psql(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, f"{sql!r} gave {rows!r}"
        return rows[0][0]

    def snapshot(self):
        """Every cost_snapshots row, every column, as one text: two snapshots
        are equal iff the table was not written (xmin catches a rewrite that
        changed no value)."""
        p = subprocess.run([self.psql_bin, "-X", "-A", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo,
                            "-c", "SELECT xmin, * FROM cost_snapshots ORDER BY id"],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"snapshot failed: {p.stderr}")
        return p.stdout

    def rows(self):
        """(date, provider, gpu_type, Decimal cost) for every row, in key order."""
        return [(d, p, g, Decimal(c)) for d, p, g, c in self.psql(
            "SELECT date::text, provider, gpu_type, cost_usd::text FROM cost_snapshots "
            "ORDER BY date, provider, gpu_type")]

    def count(self, table="cost_snapshots"):
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    def truncate(self):
        self.psql("TRUNCATE cost_snapshots, ingestion_runs")

    def runs_json(self):
        """ingestion_runs rows as dicts (column names are the store's to choose;
        tests look for values, not names)."""
        return [json.loads(r[0]) for r in self.psql("SELECT row_to_json(r)::text FROM ingestion_runs r")]


# ---------------------------------------------------------------- server --

# HX_SERVER_WRAPPER: see the module's docstring.
SERVER_WRAPPER = shlex.split(os.environ.get("HX_SERVER_WRAPPER", ""))
WRAPPER_ERROR_EXIT = 99  # valgrind --error-exitcode=99
WRAPPER_SLOWDOWN = 5 if SERVER_WRAPPER else 1  # valgrind runs code some 20-50x slower


def _wrapper_log(pid):
    """The wrapper's own report for process pid, when its command line names
    a --log-file with %p in it (as scripts/valgrind.sh does)."""
    for arg in SERVER_WRAPPER:
        if arg.startswith("--log-file=") and "%p" in arg:
            path = arg[len("--log-file="):].replace("%p", str(pid))
            try:
                with open(path, "rb") as f:
                    return f.read().decode("utf-8", "replace")
            except OSError:
                return f"(no report at {path})"
    return "(the wrapper's report went to the server log)"


def _check_wrapper_exit(proc):
    """A server that exited with WRAPPER_ERROR_EXIT under a wrapper had
    memory errors or leaks: that fails the test, whatever else it expected."""
    if SERVER_WRAPPER and proc.returncode == WRAPPER_ERROR_EXIT:
        raise AssertionError(f"heliox-ingestd (pid {proc.pid}) exited {WRAPPER_ERROR_EXIT} under "
                             f"{SERVER_WRAPPER[0]}: memory errors or leaks; report:\n"
                             f"{_wrapper_log(proc.pid)[-20000:]}")


def new_key():
    return "hx-test-" + secrets.token_hex(16)


class Server:
    """A heliox-ingestd process. keys: list of keys put into ADMIN_API_KEY
    (None = variable unset). listen: list of URLs (default: one tcp loopback
    port). extra: more command-line arguments."""

    def __init__(self, conninfo, keys=None, listen=None, ipc=False, workers=None,
                 max_message_bytes=None, extra=(), env=None, log_level="debug",
                 data_dir=DATA_DIR, key_file=None):
        if not os.access(SERVER_BIN, os.X_OK):
            raise RuntimeError(f"{SERVER_BIN} not built")
        self.tmp = tempfile.mkdtemp(prefix="hxsrv-")
        self.keys = list(keys) if keys is not None else [new_key()]
        self.key = self.keys[0] if self.keys else None
        if listen is None:
            listen = [f"ipc://{self.tmp}/hx.sock"] if ipc else [f"tcp://127.0.0.1:{free_port()}"]
        self.listen = list(listen)
        self.url = self.listen[0]
        args = [SERVER_BIN]
        for u in self.listen:
            args += ["--listen", u]
        if conninfo is not None:
            args += ["--db", conninfo]
        if data_dir is not None:
            args += ["--data-dir", data_dir]
        if log_level is not None:
            args += ["--log-level", log_level]
        if workers is not None:
            args += ["--workers", str(workers)]
        if max_message_bytes is not None:
            args += ["--max-message-bytes", str(max_message_bytes)]
        if key_file is not None:
            args += ["--api-key-file", key_file]
        args += list(extra)
        self.args = args
        self.env = dict(os.environ)
        self.env.pop("ADMIN_API_KEY", None)
        if keys is None or self.keys:
            self.env["ADMIN_API_KEY"] = ",".join(self.keys)
        if env:
            self.env.update(env)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self._client = None

    # -- process --
    def start(self, wait=True, timeout=60):
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(SERVER_WRAPPER + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf, env=self.env)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=60):
        """Waits until a Health call with a valid key answers OK."""
        deadline = time.monotonic() + timeout * WRAPPER_SLOWDOWN
        last = None
        with NngClient(self.url) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    _check_wrapper_exit(self.proc)
                    raise AssertionError(f"heliox-ingestd exited with {self.proc.returncode} while "
                                         f"starting; log:\n{self.log()}")
                try:
                    resp = call(c, api_key=self.key, health=pb.HealthRequest(),
                                recv_timeout_ms=500 * WRAPPER_SLOWDOWN)
                    if resp.status.code == 0:
                        return
                    last = describe(resp)
                except NngTimeout as e:
                    last = str(e)
                time.sleep(0.05)
        raise AssertionError(f"heliox-ingestd not ready after {timeout}s (last: {last}); log:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"heliox-ingestd did not exit within {timeout}s; log:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=60, check=True):
        """Signals the server, waits, asserts exit status 0 (when check) and
        returns its whole log."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None:
            return self.log()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * WRAPPER_SLOWDOWN)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"heliox-ingestd ignored {sig!r} for {timeout}s; log:\n{self.log()}")
        finally:
            self._logf.close()
        text = self.log()
        _check_wrapper_exit(self.proc)
        if check:
            assert rc == 0, f"heliox-ingestd exited {rc} after {sig!r}; log:\n{text[-20000:]}"
        return text

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        if SERVER_WRAPPER and self.proc is not None and self.proc.poll() is None:
            # Let the wrapper (valgrind) finish and report: a SIGKILL would
            # silence it.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60 * WRAPPER_SLOWDOWN)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.proc is not None:
            _check_wrapper_exit(self.proc)

    # -- calls --
    def client(self, timeout_ms=30000):
        return NngClient(self.url, timeout_ms)

    def call(self, key=..., request_id=None, **kw):
        """A call on this server's shared client with its first key (key=...),
        another key, or none (key=""). request_id defaults to a fresh one."""
        if self._client is None:
            self._client = self.client()
        if key is ...:
            key = self.key
        if request_id is None:
            request_id = rid()
        return call(self._client, api_key=key, request_id=request_id, **kw)

    def raw(self, data, timeout_ms=None):
        if self._client is None:
            self._client = self.client()
        return raw(self._client, data, timeout_ms)

    def health(self, **kw):
        return self.call(health=pb.HealthRequest(), **kw)

    def assert_healthy(self):
        resp = self.health()
        assert_code(resp, "OK")
        assert resp.health.serving, describe(resp)
        return resp


def run_cli(args, key=None, env=None, stdin=None, timeout=120):
    """Runs heliox-ingest; returns CompletedProcess (text). key: put into
    ADMIN_API_KEY (None = unset)."""
    if not os.access(CLI_BIN, os.X_OK):
        raise RuntimeError(f"{CLI_BIN} not built")
    e = dict(os.environ)
    e.pop("ADMIN_API_KEY", None)
    if key is not None:
        e["ADMIN_API_KEY"] = key
    if env:
        e.update(env)
    return subprocess.run([CLI_BIN] + list(args), input=stdin, capture_output=True, env=e,
                          timeout=timeout)


# ------------------------------------------- fault and load test helpers --
# (added for test_faults.py and test_load.py; nothing above depends on them)

APP_NAME = "heliox-ingestd"  # the application_name the server's connections carry


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns something truthy; returns that value.
    Raises AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def server_backends(pg, extra_where="TRUE"):
    """The server's backends in pg_stat_activity: (pid, state, wait_event_type,
    wait_event, query) tuples of text."""
    return pg.psql("SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''), "
                   f"left(query, 80) FROM pg_stat_activity WHERE application_name = '{APP_NAME}' "
                   f"AND ({extra_where}) ORDER BY pid")


def lock_waiters(pg):
    """The server's backends that are active and waiting for a heavyweight
    lock (a table lock held by a LockHolder, say)."""
    return server_backends(pg, "state = 'active' AND wait_event_type = 'Lock'")


class LockHolder:
    """A psql session that holds a lock inside an open transaction until
    release(): `with LockHolder(pg, "LOCK TABLE cost_snapshots IN ACCESS
    EXCLUSIVE MODE"): ...`. The statement has been granted when the
    constructor returns."""

    def __init__(self, pg, lock_sql="LOCK TABLE cost_snapshots IN ACCESS EXCLUSIVE MODE",
                 timeout=30):
        self.proc = subprocess.Popen([pg.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                      "-d", pg.conninfo], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.released = False
        self.proc.stdin.write(f"BEGIN; {lock_sql}; SELECT 'hx-locked';\n")
        self.proc.stdin.flush()
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if line.strip() != "hx-locked":
            self.proc.kill()
            err = self.proc.communicate()[1]
            raise RuntimeError(f"LockHolder: {lock_sql!r} not granted: {line!r} {err}")

    def release(self):
        """Rolls the transaction back (the lock goes with it) and ends psql."""
        if self.released:
            return
        self.released = True
        try:
            self.proc.stdin.write("ROLLBACK;\n")
            self.proc.stdin.close()
            self.proc.wait(30)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def set_resend_time(client, ms):
    """Lets nng's REQ side resend a request that has had no reply for ms
    milliseconds (NngClient disables resends by default)."""
    NngClient._check(_nng.nng_socket_set_ms(client._sock, b"req:resend-time", int(ms)),
                     "req:resend-time")


def proc_rss_kib(pid):
    """VmRSS of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_has_asan(pid):
    """True when the process runs with AddressSanitizer (its quarantine makes
    RSS grow for a while by design)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def conninfo_with_db(conninfo, dbname):
    """The same libpq connection string with another dbname."""
    parts = [p for p in conninfo.split() if not p.startswith("dbname=")]
    return " ".join(parts + [f"dbname={dbname}"])


# ------------------------------------------- security test helpers --
# (added for test_tls.py and test_auth_throttle.py; nothing above depends on them)

def from_source(url, src_ip):
    """The tcp:// URL `url` dialed from the local address src_ip (nng's
    "tcp://SRC;HOST:PORT" form). Any 127.x.y.z is a loopback address on
    Linux, so tests can play several peers on one machine honestly."""
    scheme, rest = url.split("://", 1)
    assert scheme in ("tcp", "tcp4", "tls+tcp", "tls+tcp4"), url
    return f"{scheme}://{src_ip};{rest}"


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list of numbers."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats
    return ordered[int(rank) - 1]


class _ClientOpts(ctypes.Structure):
    _fields_ = [("api_key", ctypes.c_char_p), ("timeout_ms", ctypes.c_uint32),
                ("tls_ca_file", ctypes.c_char_p), ("tls_server_name", ctypes.c_char_p),
                ("max_reply_bytes", ctypes.c_size_t), ("retry_window_ms", ctypes.c_uint32)]


class ClientLib:
    """The C client library (libheliox-client.so from HX_BUILD_DIR) over
    ctypes: hx_client_open and hx_client_health, enough to test how the
    library itself connects (TLS verification included). hx_reply is kept
    opaque: only its first member, the code, is read."""

    _lib = None

    @classmethod
    def lib(cls):
        if cls._lib is None:
            path = os.path.join(BUILD_DIR, "libheliox-client.so")
            if not os.path.exists(path):
                raise RuntimeError(f"{path} not built")
            lib = ctypes.CDLL(path)
            lib.hx_client_open.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                           ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                           ctypes.POINTER(_ClientOpts), ctypes.c_char_p,
                                           ctypes.c_size_t]
            lib.hx_client_open.restype = ctypes.c_int
            lib.hx_client_close.argtypes = [ctypes.c_void_p]
            lib.hx_client_close.restype = None
            lib.hx_client_health.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            lib.hx_client_health.restype = ctypes.c_int
            lib.hx_reply_free.argtypes = [ctypes.c_void_p]
            lib.hx_reply_free.restype = None
            cls._lib = lib
        return cls._lib

    def __init__(self, url, key, timeout_ms=3000, tls_ca=None, tls_server_name=None):
        """Raises ClientLibError (code, message) when hx_client_open fails."""
        lib = self.lib()
        self._c = ctypes.c_void_p()
        urls = (ctypes.c_char_p * 1)(url.encode())
        opts = _ClientOpts(key.encode(), timeout_ms, tls_ca.encode() if tls_ca else None,
                           tls_server_name.encode() if tls_server_name else None, 0, 0)
        err = ctypes.create_string_buffer(512)
        rv = lib.hx_client_open(ctypes.byref(self._c), urls, 1, ctypes.byref(opts), err,
                                len(err))
        if rv != 0:
            raise ClientLibError(rv, err.value.decode("utf-8", "replace"))

    def health(self):
        """Returns the reply's code (a number, CODE[...])."""
        return self.health_reply()[0]

    def health_reply(self):
        """Returns (code, message): hx_reply starts with hx_status code, then
        char *message (at the next pointer-aligned offset)."""
        reply = ctypes.create_string_buffer(4096)  # larger than any hx_reply
        code = self.lib().hx_client_health(self._c, None, reply)
        msg = ctypes.c_char_p.from_buffer(reply, ctypes.sizeof(ctypes.c_void_p)).value
        self.lib().hx_reply_free(reply)
        return code, (msg or b"").decode("utf-8", "replace")

    def close(self):
        if self._c:
            self.lib().hx_client_close(self._c)
            self._c = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClientLibError(Exception):
    def __init__(self, code, message):
        super().__init__(f"hx_client_open: {code_name(code)}: {message}")
        self.code = code
        self.message = message


def _asan_runtime(path):
    """The AddressSanitizer runtime a shared library was linked with, or
    None. ASan must be the first library a process loads, which a library
    opened by ctypes is not: it has to be preloaded."""
    p = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
    for line in p.stdout.splitlines():
        if "libasan" in line and "=>" in line:
            return line.split("=>")[1].split("(")[0].strip()
    return None


_CLIENT_LIB_CHILD = """
import json, sys
import hxharness as hx
url, key, timeout_ms, ca, name, calls = json.loads(sys.argv[1])
try:
    with hx.ClientLib(url, key, timeout_ms, tls_ca=ca, tls_server_name=name) as c:
        codes = [hx.code_name(c.health()) for _ in range(calls)]
    print(json.dumps({"error": None, "codes": codes}))
except hx.ClientLibError as e:
    print(json.dumps({"error": e.message, "open_code": hx.code_name(e.code), "codes": []}))
"""


def client_lib_health(url, key, timeout_ms=3000, tls_ca=None, tls_server_name=None, calls=1,
                      env=None):
    """Opens the C client library on url and makes `calls` health calls, in
    a child process (so that an ASan-built library can be preloaded, and so
    that `env` can change what the library sees). Returns {"error": the
    hx_client_open message or None, "codes": [code names]}."""
    lib = os.path.join(BUILD_DIR, "libheliox-client.so")
    e = dict(os.environ)
    e.update(env or {})
    asan = _asan_runtime(lib)
    if asan:
        e["LD_PRELOAD"] = asan
        # The interpreter's own allocations are not ours to judge.
        e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    e["PYTHONPATH"] = HERE + os.pathsep + e.get("PYTHONPATH", "")
    arg = json.dumps([url, key, timeout_ms, tls_ca, tls_server_name, calls])
    p = subprocess.run([sys.executable, "-c", _CLIENT_LIB_CHILD, arg], capture_output=True,
                       text=True, env=e, timeout=60 + calls * timeout_ms / 1000)
    if p.returncode != 0:
        raise AssertionError(f"client library child failed ({p.returncode}): {p.stderr[-5000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ TLS helpers --

def make_tls_certs(d):
    """In folder d: a CA (ca.pem), a server certificate for DNS:localhost and
    IP:127.0.0.1 signed by it (server.pem, server.key mode 0600), and an
    unrelated CA (other.pem). Returns {name: path}."""
    openssl = _which_or_fail("openssl")

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    for name, cn in (("ca", "Heliox Test CA"), ("other", "Unrelated CA")):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", f"{name}.key",
            "-out", f"{name}.pem", "-subj", f"/CN={cn}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-out", "server.pem", "-extfile", "server.ext")
    os.chmod(os.path.join(d, "server.key"), 0o600)
    return {n: os.path.join(d, n) for n in ("ca.pem", "other.pem", "server.pem", "server.key")}


class SilentRep:
    """A TCP listener that speaks nng's SP handshake as a rep0 peer, takes
    requests and never answers them: a server that is up but slow."""

    def __init__(self):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.requests = 0
        self.conns = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import threading
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        try:
            hdr = conn.recv(8)
            if len(hdr) != 8:
                return
            conn.sendall(b"\x00SP\x00\x00\x31\x00\x00")  # rep0 = 0x31
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                self.requests += 1
        except OSError:
            return

    def close(self):
        self._stop = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

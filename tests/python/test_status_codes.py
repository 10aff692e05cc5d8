"""Status codes for everything that is not a validation error (SERVICE.md
section 5): garbage, empty messages, no method, oversized messages, a lost
database and its return, and deadlines."""

import time

import pytest

import hxharness as hx
from hxharness import pb


# ------------------------------------------------------------ decoding --

GARBAGE = [
    ("truncated_varint", b"\xff\xff\xff\xff"),
    ("length_past_end", b"\x0a\xff\xff\xff\x0f"),
    ("bad_wire_type", b"\x0f\x01\x02"),
    ("field_zero", b"\x00\x01"),
    ("truncated_submessage", b"\x0a\x03key\x52\x10\x08"),
    ("text", b"GET / HTTP/1.1\r\n\r\n"),
]


@pytest.mark.parametrize("data", [d for _, d in GARBAGE], ids=[i for i, _ in GARBAGE])
def test_garbage_is_invalid_argument(pg, server, data):
    before = pg.snapshot()
    resp = server.raw(data)
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert resp.WhichOneof("result") is None
    assert pg.snapshot() == before
    server.assert_healthy()


def test_empty_message_is_unauthenticated(server):
    resp = server.raw(b"")
    hx.assert_code(resp, "UNAUTHENTICATED")
    assert resp.status.message == "missing api_key"


def test_no_method_is_unimplemented(server):
    resp = server.call()
    hx.assert_code(resp, "UNIMPLEMENTED")
    assert resp.WhichOneof("result") is None


def test_auth_checked_before_method(server):
    # no key and no method: the key is looked at first
    hx.assert_code(server.call(key=""), "UNAUTHENTICATED")
    hx.assert_code(server.call(key="y" * 40), "UNAUTHENTICATED")
    # no key and a bad ingest: still UNAUTHENTICATED, and no violations leak
    resp = server.call(key="", ingest=hx.ingest_json(b"garbage"))
    hx.assert_code(resp, "UNAUTHENTICATED")
    assert not resp.status.violations


def test_unknown_fields_are_ignored(server):
    # a newer client may send fields this server does not know
    req = hx.make_request(server.key, "unknown-fields", 0, health=pb.HealthRequest())
    data = req.SerializeToString() + b"\xa2\x06\x03abc"  # field 100, length-delimited
    resp = server.raw(data)
    hx.assert_code(resp, "OK")
    assert resp.request_id == "unknown-fields"


# ------------------------------------------------------- message size --

LIMIT = 65536


@pytest.fixture(scope="module")
def small_server(pg):
    srv = hx.Server(pg.conninfo, max_message_bytes=LIMIT)
    try:
        srv.start()
        yield srv
        srv.stop()
    finally:
        srv.cleanup()


def request_of_size(key, size):
    """A serialized ingest request of exactly `size` bytes: the mock export
    padded with trailing white space (still valid JSON)."""
    raw_bytes, _ = hx.load_mock()
    pad = size - 200
    for _ in range(50):
        req = hx.make_request(key, "sized", 0, ingest=hx.ingest_json(raw_bytes + b" " * pad))
        n = req.ByteSize()
        if n == size:
            return req.SerializeToString()
        pad += size - n
    raise AssertionError("could not hit the size")


def test_message_at_limit_is_served(pg, small_server):
    data = request_of_size(small_server.key, LIMIT)
    assert len(data) == LIMIT
    resp = small_server.raw(data)
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=28)


@pytest.mark.parametrize("size", [LIMIT + 1, 4 * LIMIT, 900 * 1024])
def test_message_over_limit_is_resource_exhausted(pg, small_server, size):
    before = pg.snapshot()
    data = request_of_size(small_server.key, size)
    try:
        resp = small_server.raw(data, timeout_ms=20000)
    except hx.NngTimeout:
        pytest.fail(f"no reply to a {size}-byte message (limit {LIMIT}): the server must answer "
                    "RESOURCE_EXHAUSTED, not drop it")
    hx.assert_code(resp, "RESOURCE_EXHAUSTED")
    assert pg.snapshot() == before
    small_server.assert_healthy()
    hx.assert_code(small_server.call(ingest=hx.ingest_mock(dry_run=True)), "OK")


# ------------------------------------------------------- database down --

def test_database_down_then_back(pg, server):
    pg.truncate()
    hx.assert_code(server.call(ingest=hx.ingest_records([("2025-01-01", "p", "g", "1")])), "OK")
    pg.stop()
    try:
        resp = server.call(ingest=hx.ingest_mock())
        hx.assert_code(resp, "UNAVAILABLE")
        assert resp.status.message, "UNAVAILABLE without a message"
        resp = server.call(summary=pb.SummaryRequest())
        hx.assert_code(resp, "UNAVAILABLE")
        resp = server.health()
        hx.assert_code(resp, "OK")
        assert resp.health.serving is True
        assert resp.health.database_ok is False, hx.describe(resp)
        # the server keeps answering every call while the database is away
        for _ in range(5):
            hx.assert_code(server.call(ingest=hx.ingest_mock()), "UNAVAILABLE")
    finally:
        pg.start()
    deadline = time.monotonic() + 15
    last = None
    while time.monotonic() < deadline:
        last = server.call(ingest=hx.ingest_mock())
        if last.status.code == 0:
            break
        assert last.status.code == hx.CODE["UNAVAILABLE"], hx.describe(last)
        time.sleep(0.2)
    hx.assert_code(last, "OK")
    hx.assert_counts(last, received=28, inserted=28)
    assert pg.count() == 29
    # every worker's connection comes back, not just one: several calls in a row
    for _ in range(8):
        resp = server.health()
        assert resp.health.database_ok is True, hx.describe(resp)
        hx.assert_code(server.call(summary=pb.SummaryRequest()), "OK")


# ------------------------------------------------------------ deadlines --

def test_tiny_timeout_is_deadline_exceeded_and_writes_nothing(pg):
    doc = hx.big_export(200_000)
    srv = hx.Server(pg.conninfo, max_message_bytes=64 * 1024 * 1024)
    try:
        srv.start()
        pg.truncate()
        before = pg.snapshot()
        resp = srv.call(timeout_ms=1, ingest=hx.ingest_json(doc), recv_timeout_ms=120000)
        hx.assert_code(resp, "DEADLINE_EXCEEDED")
        assert pg.snapshot() == before
        assert pg.count() == 0
        srv.assert_healthy()
        # the same request with time to spare goes through: the deadline, not
        # the request, was the problem
        resp = srv.call(timeout_ms=300000, ingest=hx.ingest_json(doc), recv_timeout_ms=300000)
        hx.assert_code(resp, "OK")
        hx.assert_counts(resp, received=200_000, inserted=200_000)
        assert pg.count() == 200_000
        srv.stop()
    finally:
        srv.cleanup()

"""Validation (SERVICE.md section 4): every violation path, for protobuf
RecordBatch and JSON export input. After every rejected request the
cost_snapshots table is byte-identical and the server still answers."""

import json
import secrets
from decimal import Decimal

import pytest

import hxharness as hx
from hxharness import pb

SERVER_OPTS = {"ipc": True}  # the most calls of any module go over ipc://

GOOD = {"date": "2030-01-05", "provider": "AWS", "gpu_type": "A100", "cost_usd": "100.50"}


@pytest.fixture(scope="module")
def seeded(pg, server):
    """The table holds the mock export, so 'byte-identical' compares real rows."""
    pg.truncate()
    hx.assert_code(server.call(ingest=hx.ingest_mock()), "OK")
    assert pg.count() == 28
    return pg


def patched_request(server, records, patches, **kw):
    """A serialized RpcRequest whose RecordBatch strings hold the raw bytes in
    `patches` ({placeholder: bytes}); protobuf refuses to build invalid UTF-8
    in a string field, so the bytes are swapped in after serialising (string
    and bytes share one wire type and the lengths match)."""
    req = hx.make_request(server.key, hx.rid("patched"), 0, ingest=hx.ingest_records(records, **kw))
    data = req.SerializeToString()
    for ph, b in patches.items():
        assert len(ph.encode()) == len(b) and data.count(ph.encode()) == 1
        data = data.replace(ph.encode(), b)
    return data, req.request_id


def expect_rejected(server, pg, fields, ingest=None, data=None, request_id=None, contains=None):
    """Sends an ingest that must be rejected; checks its violation fields
    equal `fields` (in order), nothing was written and the server still
    answers health. Returns the reply."""
    before = pg.snapshot()
    if data is not None:
        resp = server.raw(data)
        if request_id:
            assert resp.request_id == request_id
    else:
        resp = server.call(ingest=ingest)
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert hx.violation_fields(resp) == fields, hx.describe(resp)
    for v in resp.status.violations:
        assert v.description, f"violation {v.field} without a description"
    if contains:
        assert contains in resp.status.violations[0].description, hx.describe(resp)
    assert pg.snapshot() == before, "a rejected request changed cost_snapshots"
    server.assert_healthy()
    return resp


def rec(**over):
    r = dict(GOOD)
    r.update(over)
    return r


def jdoc(*records, **top):
    d = dict(top)
    d["cost_data"] = list(records)
    return json.dumps(d).encode()


# ---------------------------------------------------- name fields (text) --

BAD_NAMES = [
    ("empty", ""),
    ("blank", "   "),
    ("blank_tabs", " \t\r\n "),
    ("too_long_65", "a" * 65),
    ("too_long_65_multibyte", "\u00e9" * 32 + "a"),
    ("too_long_after_trim", "  " + "b" * 65 + "  "),
    ("control_soh", "aw\x01s"),
    ("control_esc", "\x1b[31maws"),
    ("control_inner_tab", "aw\ts"),
    ("control_inner_newline", "aw\ns"),
    ("nul_inside", "aws\x00x"),
]
GOOD_NAMES = [
    ("64_bytes", "c" * 64, "c" * 64),
    ("64_bytes_padded", "\t " + "D" * 64 + " \r\n", "d" * 64),
    ("64_bytes_multibyte", "\u00c9" * 32, "\u00c9" * 32),  # not ASCII: not lower-cased
    ("mixed_case", " NVIDIA-H100_SXM ", "nvidia-h100_sxm"),
]
INVALID_UTF8 = [
    ("bad_byte", b"nv\xff\xfeidia"),
    ("overlong_slash", b"ab\xc0\xafcdef"),
    ("surrogate", b"ab\xed\xa0\x80cde"),
    ("truncated", b"abcdef\xe2\x82"),
]


@pytest.mark.parametrize("field", ["provider", "gpu_type"])
@pytest.mark.parametrize("value", [v for _, v in BAD_NAMES], ids=[i for i, _ in BAD_NAMES])
def test_bad_name_in_records(seeded, server, field, value):
    expect_rejected(server, seeded, [f"records[0].{field}"],
                    ingest=hx.ingest_records([rec(**{field: value})]))


@pytest.mark.parametrize("field", ["provider", "gpu_type"])
@pytest.mark.parametrize("value", [v for _, v in BAD_NAMES], ids=[i for i, _ in BAD_NAMES])
def test_bad_name_in_json(seeded, server, field, value):
    expect_rejected(server, seeded, [f"cost_data[1].{field}"],
                    ingest=hx.ingest_json(jdoc(rec(date="2030-01-04"), rec(**{field: value}))))


@pytest.mark.parametrize("field", ["provider", "gpu_type"])
@pytest.mark.parametrize("value", [v for _, v in INVALID_UTF8], ids=[i for i, _ in INVALID_UTF8])
def test_invalid_utf8_in_records(seeded, server, field, value):
    ph = secrets.token_hex(len(value))[:len(value)]
    data, r = patched_request(server, [rec(date="2030-01-04"), rec(**{field: ph})], {ph: value})
    expect_rejected(server, seeded, [f"records[1].{field}"], data=data, request_id=r)


@pytest.mark.parametrize("field", ["provider", "gpu_type"])
@pytest.mark.parametrize("value", [v for _, v in INVALID_UTF8], ids=[i for i, _ in INVALID_UTF8])
def test_invalid_utf8_in_json(seeded, server, field, value):
    ph = secrets.token_hex(len(value))[:len(value)]
    doc = jdoc(rec(**{field: ph})).replace(ph.encode(), value)
    expect_rejected(server, seeded, [f"cost_data[0].{field}"], ingest=hx.ingest_json(doc))


@pytest.mark.parametrize("field", ["provider", "gpu_type"])
@pytest.mark.parametrize("value", [None, 5, True, ["aws"], {"a": 1}], ids=["null", "number", "bool", "array", "object"])
def test_name_wrong_type_in_json(seeded, server, field, value):
    expect_rejected(server, seeded, [f"cost_data[0].{field}"], ingest=hx.ingest_json(jdoc(rec(**{field: value}))))


@pytest.mark.parametrize("field", ["date", "provider", "gpu_type", "cost_usd"])
def test_missing_field_in_json(seeded, server, field):
    r = rec()
    del r[field]
    expect_rejected(server, seeded, [f"cost_data[0].{field}"], ingest=hx.ingest_json(jdoc(r)))


@pytest.mark.parametrize("field", ["date", "provider", "gpu_type", "cost_usd"])
def test_empty_field_in_records(seeded, server, field):
    expect_rejected(server, seeded, [f"records[0].{field}"], ingest=hx.ingest_records([rec(**{field: ""})]))


@pytest.mark.parametrize("value,stored", [(v, s) for _, v, s in GOOD_NAMES], ids=[i for i, _, _ in GOOD_NAMES])
def test_good_names_accepted_and_normalised(seeded, server, value, stored):
    resp = server.call(ingest=hx.ingest_records([rec(date="2030-02-01", provider=value, gpu_type=value)]))
    hx.assert_code(resp, "OK")
    hx.assert_counts(resp, received=1, failed=0)
    rows = seeded.psql("SELECT provider, gpu_type FROM cost_snapshots WHERE date = '2030-02-01'")
    assert (stored, stored) in rows, rows
    seeded.psql("DELETE FROM cost_snapshots WHERE date = '2030-02-01'")


# ------------------------------------------------------------------ dates --

BAD_DATES = ["2023-02-29", "2026-13-01", "2026-1-1", "2026-02-30", "2026-04-31", "2026-00-10",
             "2026-01-00", "1900-02-29", "2100-02-29", "20260101", "2026/01/01", "2026-01-01T00:00:00Z",
             "2026-01-01x", "abcd-ef-gh", "-2026-01-01", "2026-01-1\u0661"]
GOOD_DATES = ["2024-02-29", "2000-02-29", "1999-12-31", "2026-12-31"]


@pytest.mark.parametrize("value", BAD_DATES)
def test_bad_date_in_records(seeded, server, value):
    expect_rejected(server, seeded, ["records[0].date"], ingest=hx.ingest_records([rec(date=value)]))


@pytest.mark.parametrize("value", BAD_DATES + [None, 20260101, True])
def test_bad_date_in_json(seeded, server, value):
    expect_rejected(server, seeded, ["cost_data[0].date"], ingest=hx.ingest_json(jdoc(rec(date=value))))


@pytest.mark.parametrize("value", GOOD_DATES)
def test_good_dates(seeded, server, value):
    resp = server.call(ingest=hx.ingest_records([rec(date=value, provider="datetest")]))
    hx.assert_code(resp, "OK")
    assert seeded.psql("SELECT date::text FROM cost_snapshots WHERE provider = 'datetest'") == [(value,)]
    seeded.psql("DELETE FROM cost_snapshots WHERE provider = 'datetest'")


# ------------------------------------------------------------------- cost --

BAD_COST_TEXT = ["0", "0.000000", "-1", "-0.5", "1.1234567", "0.0000001", "1000000000000",
                 "1000000000000.000000", "abc", "1,5", "1.2.3", "NaN", "Infinity", "0x10", "--1", "1 000"]
BAD_COST_JSON_NUMBERS = ["0", "-1", "-0", "1.1234567", "1e12", "1E+12", "1000000000000", "1e-7", "-0.000001"]
BAD_COST_JSON_OTHER = [("string_abc", '"abc"'), ("true", "true"), ("false", "false"), ("null", "null"),
                       ("array", "[1]"), ("object", '{"v": 1}'), ("empty_string", '""')]


@pytest.mark.parametrize("value", BAD_COST_TEXT)
def test_bad_cost_in_records(seeded, server, value):
    expect_rejected(server, seeded, ["records[0].cost_usd"], ingest=hx.ingest_records([rec(cost_usd=value)]))


@pytest.mark.parametrize("value", BAD_COST_TEXT)
def test_bad_cost_string_in_json(seeded, server, value):
    expect_rejected(server, seeded, ["cost_data[0].cost_usd"], ingest=hx.ingest_json(jdoc(rec(cost_usd=value))))


def _json_with_raw_cost(raw_text):
    ph = "__COST_PLACEHOLDER__"
    return jdoc(rec(cost_usd=ph)).replace(json.dumps(ph).encode(), raw_text.encode())


@pytest.mark.parametrize("value", BAD_COST_JSON_NUMBERS)
def test_bad_cost_number_in_json(seeded, server, value):
    expect_rejected(server, seeded, ["cost_data[0].cost_usd"], ingest=hx.ingest_json(_json_with_raw_cost(value)))


@pytest.mark.parametrize("value", [v for _, v in BAD_COST_JSON_OTHER], ids=[i for i, _ in BAD_COST_JSON_OTHER])
def test_bad_cost_type_in_json(seeded, server, value):
    expect_rejected(server, seeded, ["cost_data[0].cost_usd"], ingest=hx.ingest_json(_json_with_raw_cost(value)))


GOOD_COSTS = [("0.000001", "0.000001"), ("999999999999.999999", "999999999999.999999"),
              ("1245.67", "1245.67"), ("1245.670000", "1245.67"), ("7", "7"),
              ("123456789.012345", "123456789.012345")]
GOOD_COST_NUMBERS = [("1245.67", "1245.67"), ("0.1", "0.1"), ("0.000001", "0.000001"),
                     ("123456789.012345", "123456789.012345"), ("99999999999.9999", "99999999999.9999"),
                     ("2.5E3", "2500"), ("42", "42")]


@pytest.mark.parametrize("text,stored", GOOD_COSTS)
def test_good_cost_text_is_exact(seeded, server, text, stored):
    resp = server.call(ingest=hx.ingest_records([rec(date="2030-03-01", provider="costtest", cost_usd=text)]))
    hx.assert_code(resp, "OK")
    got = seeded.scalar("SELECT cost_usd::text FROM cost_snapshots WHERE provider = 'costtest'")
    assert Decimal(got) == Decimal(stored), got
    seeded.psql("DELETE FROM cost_snapshots WHERE provider = 'costtest'")


@pytest.mark.parametrize("number,stored", GOOD_COST_NUMBERS)
def test_good_cost_json_number_is_exact(seeded, server, number, stored):
    doc = _json_with_raw_cost(number).replace(b'"AWS"', b'"costtest"')
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "OK")
    got = seeded.scalar("SELECT cost_usd::text FROM cost_snapshots WHERE provider = 'costtest'")
    assert Decimal(got) == Decimal(stored), got
    seeded.psql("DELETE FROM cost_snapshots WHERE provider = 'costtest'")


# ------------------------------------------------------------- duplicates --

def test_duplicate_key_in_records(seeded, server):
    batch = [rec(), rec(date="2030-01-06"), rec(provider=" aws ", gpu_type="a100\t", cost_usd="1")]
    before = seeded.snapshot()
    resp = server.call(ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    vs = hx.violations(resp)
    assert len(vs) == 1, hx.describe(resp)
    assert vs[0][0].startswith("records[2]"), hx.describe(resp)
    assert "duplicate of records[0]" in vs[0][1], hx.describe(resp)
    assert seeded.snapshot() == before
    server.assert_healthy()


def test_duplicate_key_in_json(seeded, server):
    doc = jdoc(rec(), rec(date="2030-01-06"), rec(provider="AWS ", gpu_type=" A100"),
               rec(date="2030-01-06", cost_usd="3"))
    before = seeded.snapshot()
    resp = server.call(ingest=hx.ingest_json(doc))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    vs = hx.violations(resp)
    assert [f.split(".")[0] for f, _ in vs] == ["cost_data[2]", "cost_data[3]"], hx.describe(resp)
    assert "duplicate of cost_data[0]" in vs[0][1]
    assert "duplicate of cost_data[1]" in vs[1][1]
    assert seeded.snapshot() == before
    server.assert_healthy()


# --------------------------------------------------------- document level --

@pytest.mark.parametrize("doc", [b"not json", b"", b"{", b'{"cost_data": [}', b"\xff\xfe", b"{}}",
                                 b"[]", b'[{"cost_data": []}]', b"null", b"42", b'"text"', b"true"],
                         ids=["text", "empty", "open_brace", "broken", "binary", "trailing", "empty_array",
                              "array_of_doc", "null", "number", "string", "bool"])
def test_not_an_object_is_dollar(seeded, server, doc):
    expect_rejected(server, seeded, ["$"], ingest=hx.ingest_json(doc))


@pytest.mark.parametrize("doc", [b"{}", b'{"cost_data": []}', b'{"cost_data": "x"}', b'{"cost_data": {"a": 1}}',
                                 b'{"cost_data": null}', b'{"cost_data": 5}', b'{"costdata": [{}]}'],
                         ids=["missing", "empty", "string", "object", "null", "number", "misspelt"])
def test_cost_data_missing_empty_or_not_array(seeded, server, doc):
    expect_rejected(server, seeded, ["cost_data"], ingest=hx.ingest_json(doc))


def test_empty_record_batch(seeded, server):
    # a RecordBatch with no records is the protobuf twin of an empty cost_data
    expect_rejected(server, seeded, ["records"], ingest=hx.ingest_records([]))


def test_ingest_without_source(seeded, server):
    before = seeded.snapshot()
    resp = server.call(ingest=pb.IngestRequest(dry_run=False))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    assert seeded.snapshot() == before
    server.assert_healthy()


@pytest.mark.parametrize("currency", ["EUR", "", 840], ids=["EUR", "empty", "number"])
def test_wrong_currency(seeded, server, currency):
    expect_rejected(server, seeded, ["currency"], ingest=hx.ingest_json(jdoc(rec(), currency=currency)))


def test_record_not_an_object(seeded, server):
    expect_rejected(server, seeded, ["cost_data[0]", "cost_data[2]", "cost_data[3]"],
                    ingest=hx.ingest_json(jdoc(1, rec(), "x", None)))


# ---------------------------------------------------- every violation told --

def test_three_bad_records_all_reported_json(seeded, server):
    doc = jdoc(rec(date="2030-01-01"), rec(date="2030-13-01"), rec(date="2030-01-03"),
               rec(date="2030-01-04", cost_usd=-2), rec(date="2030-01-05", provider=""), rec(date="2030-01-06"))
    expect_rejected(server, seeded, ["cost_data[1].date", "cost_data[3].cost_usd", "cost_data[4].provider"],
                    ingest=hx.ingest_json(doc))


def test_three_bad_records_all_reported_records(seeded, server):
    batch = [rec(date="2030-01-01"), rec(date="2030-13-01"), rec(date="2030-01-03"),
             rec(date="2030-01-04", cost_usd="-2"), rec(date="2030-01-05", gpu_type="x" * 65)]
    expect_rejected(server, seeded, ["records[1].date", "records[3].cost_usd", "records[4].gpu_type"],
                    ingest=hx.ingest_records(batch))


def test_every_bad_field_of_one_record_reported(seeded, server):
    resp = expect_rejected(server, seeded,
                           ["records[0].date", "records[0].provider", "records[0].gpu_type", "records[0].cost_usd"],
                           ingest=hx.ingest_records([dict(date="x", provider="", gpu_type="\x01", cost_usd="0")]))
    assert len(resp.status.violations) == 4


def test_document_and_record_violations_together(seeded, server):
    expect_rejected(server, seeded, ["currency", "cost_data[0].cost_usd"],
                    ingest=hx.ingest_json(jdoc(rec(cost_usd=0), currency="EUR")))


def test_many_violations_capped_with_the_cap_in_message(seeded, server):
    batch = [rec(date=f"2030-01-{1 + i % 28:02d}", provider=f"p{i}", cost_usd="0") for i in range(3000)]
    before = seeded.snapshot()
    resp = server.call(ingest=hx.ingest_records(batch))
    hx.assert_code(resp, "INVALID_ARGUMENT")
    n = len(resp.status.violations)
    assert n >= 1
    fields = hx.violation_fields(resp)
    assert fields == [f"records[{i}].cost_usd" for i in range(n)], "violations out of order or wrong"
    if n < 3000:
        assert str(n) in resp.status.message, f"list capped at {n} but message does not say so: {resp.status.message!r}"
    hx.assert_counts(resp, received=3000, inserted=0, updated=0)
    assert seeded.snapshot() == before
    server.assert_healthy()


def test_all_or_nothing_one_bad_record_among_new_ones(seeded, server):
    _, doc = hx.load_mock()
    items = [dict(r, cost_usd=str(Decimal(r["cost_usd"]) + 1)) for r in doc["cost_data"]]
    items += [rec(date=f"2030-05-{d:02d}") for d in range(1, 20)]
    items.append(rec(date="2030-06-01", cost_usd="1.0000001"))
    expect_rejected(server, seeded, [f"cost_data[{len(items) - 1}].cost_usd"],
                    ingest=hx.ingest_json(json.dumps({"cost_data": items}, default=str)))

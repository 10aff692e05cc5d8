"""The origin's eight checks (seed: test_cost_ingestion.sh), over the RPC
interface instead of HTTP. The origin's check 4 expected "28 updated" on a
re-run; the contract (SERVICE.md section 3) says a re-run changes nothing:
0 inserted, 0 updated, 28 unchanged.
"""

from decimal import Decimal

import pytest

import hxharness as hx
from hxharness import pb


@pytest.fixture(scope="module")
def runs(pg, server):
    """The first and second mock ingest, on an empty table, in order."""
    pg.truncate()
    first = server.call(request_id=hx.rid("first"), ingest=hx.ingest_mock())
    second = server.call(request_id=hx.rid("second"), ingest=hx.ingest_mock())
    return first, second


# 1. health without key -> 401 in the origin; UNAUTHENTICATED here
def test_1_health_without_key_is_unauthenticated(server):
    resp = server.health(key="")
    hx.assert_code(resp, "UNAUTHENTICATED")
    assert resp.status.message == "missing api_key", hx.describe(resp)
    assert resp.WhichOneof("result") is None, "an unauthenticated call must not run the method"


# 2. health with key -> 200
def test_2_health_with_key_is_ok(server):
    resp = server.health()
    hx.assert_code(resp, "OK")
    h = resp.health
    assert resp.WhichOneof("result") == "health", hx.describe(resp)
    assert h.serving is True
    assert h.database_ok is True
    assert h.version != "", "health must report a version"
    assert h.uptime_s < 3600


# 3. first ingestion -> 28 inserted
def test_3_first_ingest_inserts_28(runs):
    first, _ = runs
    hx.assert_code(first, "OK")
    hx.assert_counts(first, received=28, inserted=28, updated=0, unchanged=0, failed=0)
    assert first.ingest.replayed is False
    assert first.ingest.dry_run is False
    assert first.ingest.duration_us > 0


# 4. second ingestion -> nothing changes
def test_4_second_ingest_changes_nothing(runs):
    _, second = runs
    hx.assert_code(second, "OK")
    hx.assert_counts(second, received=28, inserted=0, updated=0, unchanged=28, failed=0)
    assert second.ingest.replayed is False, "a new request_id must run, not replay"


# 5. database verification -> 28 rows, exactly the export's
def test_5_database_has_the_28_records(pg, runs):
    assert pg.count() == 28
    _, doc = hx.load_mock()
    want = sorted((r["date"], r["provider"].lower(), r["gpu_type"].lower(), Decimal(r["cost_usd"]))
                  for r in doc["cost_data"])
    assert pg.rows() == want


# 6. normalisation -> lower-case strings
def test_6_provider_and_gpu_type_are_lower_cased(pg, runs):
    assert pg.psql("SELECT DISTINCT provider FROM cost_snapshots ORDER BY 1") == [("aws",)]
    assert pg.psql("SELECT DISTINCT gpu_type FROM cost_snapshots ORDER BY 1") == [("a100",), ("h100",)]


# 7. cost analysis -> exact totals
def test_7_summary_totals_are_exact(pg, server, runs):
    stats = hx.mock_stats()
    assert stats["total"] == Decimal("51185.19") and stats["records"] == 28  # the data file itself
    resp = server.call(summary=pb.SummaryRequest(group_by=pb.NONE))
    hx.assert_code(resp, "OK")
    rows = resp.summary.rows
    assert len(rows) == 1, hx.describe(resp)
    row = rows[0]
    assert (row.date, row.provider, row.gpu_type) == ("", "", "")
    assert row.records == 28
    assert Decimal(row.total_usd) == Decimal("51185.19"), row.total_usd
    assert Decimal(row.min_usd) == stats["min"], row.min_usd
    assert Decimal(row.max_usd) == stats["max"], row.max_usd
    assert Decimal(row.avg_usd) == stats["avg"] == Decimal("1828.04"), row.avg_usd
    assert Decimal(row.avg_usd) == Decimal(row.avg_usd).quantize(Decimal("0.01")), \
        f"avg_usd not rounded to 2 places: {row.avg_usd}"
    # and the database agrees, to the cent
    assert Decimal(pg.scalar("SELECT sum(cost_usd) FROM cost_snapshots")) == Decimal("51185.19")


# 8. invalid API key -> 401 in the origin; UNAUTHENTICATED here
def test_8_wrong_key_is_unauthenticated(pg, server, runs):
    before = pg.snapshot()
    for method in (dict(health=pb.HealthRequest()), dict(ingest=hx.ingest_mock()),
                   dict(summary=pb.SummaryRequest())):
        resp = server.call(key="not-the-key-" + "x" * 20, **method)
        hx.assert_code(resp, "UNAUTHENTICATED")
        assert resp.status.message == "invalid api_key", hx.describe(resp)
        assert resp.WhichOneof("result") is None, hx.describe(resp)
    # a key that is a prefix of the real one is just as wrong
    resp = server.call(key=server.key[:-1], health=pb.HealthRequest())
    hx.assert_code(resp, "UNAUTHENTICATED")
    assert resp.status.message == "invalid api_key"
    assert pg.snapshot() == before

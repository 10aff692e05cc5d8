"""Fixtures shared by the Python tests.

Like PgBouncer's suite, each test module gets its own throwaway PostgreSQL
cluster and its own heliox-ingestd (module scope), so modules can run in
parallel under ctest -j without seeing each other. A module may set
SERVER_OPTS = {...} (keyword arguments of hxharness.Server) to start its
server differently.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hxharness as hx  # noqa: E402  (also puts the generated pb2 on sys.path)


def pytest_configure(config):
    # No silent skips: a test that cannot run must fail, so CI says so.
    for path in (hx.SERVER_BIN, hx.CLI_BIN):
        if not os.access(path, os.X_OK):
            raise pytest.UsageError(f"{path} is not built (HX_BUILD_DIR={hx.BUILD_DIR})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        rep.longrepr = f"{item.nodeid} skipped itself ({rep.longrepr}); this suite never skips"


def pytest_sessionfinish(session, exitstatus):
    # Belt and braces: any skip that got through (a module-level skip, say)
    # still makes the run fail.
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and (tr.stats.get("skipped") or tr.stats.get("xfailed")):
        session.exitstatus = 1


@pytest.fixture(scope="module")
def pg():
    cluster = hx.PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def api_key():
    return hx.new_key()


@pytest.fixture(scope="module")
def server(request, pg, api_key):
    opts = dict(getattr(request.module, "SERVER_OPTS", {}))
    srv = hx.Server(pg.conninfo, keys=[api_key], **opts)
    try:
        srv.start()
        yield srv
        log = srv.stop()
        assert api_key not in log, "the API key appears in the server log"
    finally:
        srv.cleanup()


@pytest.fixture
def clean(pg, server):
    """Empty cost_snapshots and ingestion_runs before the test."""
    pg.truncate()
    return pg


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()

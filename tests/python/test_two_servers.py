"""Two heliox-ingestd on one database (SERVICE.md sections 5, 6, 9): 16
heliox-ingest processes dial both servers (--url twice; the C client's REQ
socket spreads requests over both) and send thousands of small ingests
while summaries run; one server is SIGKILLed mid-run and restarted. After:
every row exact, one successful audit row per ingest, nothing lost or
doubled, and each server's metrics show it served a share."""

import datetime
import os
import subprocess
import threading
import time
import urllib.request

import hxharness as hx

CLIENTS = 16
RECORDS = 800      # per client, distinct keys: provider c<i>
BATCH = 8          # records a request -> 100 ingests per client, 1600 in all
D0 = datetime.date(2005, 1, 1)


def cost(i, k):
    return "%d.%02d" % (1 + (i * 31 + k) % 997, k % 100)


def export_for(i):
    items = []
    for k in range(RECORDS):
        day = (D0 + datetime.timedelta(days=k // 4)).isoformat()
        items.append('{"date":"%s","provider":"c%d","gpu_type":"g%d","cost_usd":"%s"}'
                     % (day, i, k % 4, cost(i, k)))
    return '{"currency":"USD","cost_data":[' + ",".join(items) + "]}"


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, v = ln.rsplit(" ", 1)
            out[k] = float(v)
    return out


def ingest_ok(m):
    return m.get('heliox_rpc_requests_total{method="ingest",code="OK"}', 0) if m else 0


def make_server(pg, key, port, mport):
    srv = hx.Server(pg.conninfo, keys=[key], listen=[f"tcp://127.0.0.1:{port}"], workers=4,
                    log_level="info", extra=["--metrics-listen", f"127.0.0.1:{mport}"])
    srv.mport = mport
    return srv


def test_two_servers_one_database_survive_a_sigkill(pg, api_key, tmp_path):
    # a fresh database: both servers migrate it at once (advisory lock)
    ports = [hx.free_port(), hx.free_port()]
    mports = [hx.free_port(), hx.free_port()]
    a = make_server(pg, api_key, ports[0], mports[0])
    b = make_server(pg, api_key, ports[1], mports[1])
    b2 = None
    urls = [f"tcp://127.0.0.1:{p}" for p in ports]
    files = []
    for i in range(CLIENTS):
        f = tmp_path / f"c{i}.json"
        f.write_text(export_for(i))
        files.append(str(f))
    env = dict(os.environ, ADMIN_API_KEY=api_key)
    try:
        a.start()
        b.start()
        procs = []
        for i in range(CLIENTS):
            order = urls if i % 2 == 0 else urls[::-1]
            args = [hx.CLI_BIN, "--url", order[0], "--url", order[1], "--timeout", "60000",
                    "--request-id", f"two-c{i}", "ingest", files[i], "--batch", str(BATCH),
                    "--inflight", "2"]
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))

        summaries = {"ok": 0, "bad": []}
        stop = threading.Event()

        def summarize():
            while not stop.is_set() and summaries["ok"] < 200:
                p = subprocess.run([hx.CLI_BIN, "--url", urls[0], "--url", urls[1], "--timeout", "60000",
                                    "summary"], capture_output=True, env=env, timeout=120)
                if p.returncode == 0:
                    summaries["ok"] += 1
                else:
                    summaries["bad"].append(p.stderr.decode()[-300:])

        th = threading.Thread(target=summarize)
        th.start()
        # let both servers take a share, then kill one mid-run
        total = CLIENTS * RECORDS // BATCH
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ma, mb = scrape(mports[0]), scrape(mports[1])
            if ingest_ok(ma) + ingest_ok(mb) >= total // 3:
                break
            time.sleep(0.05)
        share_a, share_b = ingest_ok(ma), ingest_ok(mb)
        assert share_a > 0 and share_b > 0, (share_a, share_b)
        b.kill()  # SIGKILL
        time.sleep(1.0)
        b2 = make_server(pg, api_key, ports[1], mports[1])
        b2.start()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            outs.append((p.returncode, out.decode()[-500:], err.decode()[-500:]))
        stop.set()
        th.join(120)
        assert all(rc == 0 for rc, _, _ in outs), [o for o in outs if o[0] != 0][:3]
        assert summaries["ok"] > 0 and not summaries["bad"], summaries["bad"][:3]

        # every row exact
        rows = pg.psql("SELECT provider, gpu_type, date::text, cost_usd::text FROM cost_snapshots")
        assert len(rows) == CLIENTS * RECORDS
        want = {}
        for i in range(CLIENTS):
            for k in range(RECORDS):
                day = (D0 + datetime.timedelta(days=k // 4)).isoformat()
                want[(f"c{i}", f"g{k % 4}", day)] = cost(i, k)
        got = {(p, g, d): c for p, g, d, c in rows}
        assert got.keys() == want.keys()
        bad = [(k, got[k], v) for k, v in want.items() if float(got[k]) != float(v)]
        assert not bad, bad[:5]
        # one successful real audit row per ingest, and the inserted counts add up
        n, distinct, inserted = pg.psql(
            "SELECT count(*), count(DISTINCT request_id), sum(inserted) FROM ingestion_runs "
            "WHERE code = 0 AND NOT replayed AND NOT dry_run AND request_id LIKE 'two-c%'")[0]
        assert int(n) == total and int(distinct) == total, (n, distinct, total)
        assert int(inserted) == CLIENTS * RECORDS
        replays = int(pg.scalar("SELECT count(*) FROM ingestion_runs WHERE replayed"))
        # the restarted server rejoined: clients dialing both give it a share
        first_wave_b2 = ingest_ok(scrape(mports[1]))
        wave = []
        for i in range(4):
            f = tmp_path / f"w{i}.json"
            f.write_text(export_for(100 + i))
            wave.append(subprocess.Popen([hx.CLI_BIN, "--url", urls[0], "--url", urls[1], "--request-id",
                                          f"wave-{i}", "ingest", str(f), "--batch", str(BATCH)],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
        for p in wave:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-500:]
        assert int(pg.scalar("SELECT count(*) FROM cost_snapshots WHERE provider LIKE 'c10_'")) == 4 * RECORDS
        served_b2 = ingest_ok(scrape(mports[1]))
        ma = scrape(mports[0])
        print(f"two servers: {total} ingests; A served {ingest_ok(ma):.0f} ingests in all, B {share_b:.0f} "
              f"before its SIGKILL, restarted B {first_wave_b2:.0f} of the first wave and "
              f"{served_b2 - first_wave_b2:.0f} of the second ({4 * RECORDS // BATCH}); {replays} replays; "
              f"{summaries['ok']} summaries")
        assert served_b2 - first_wave_b2 > 0
        log_a = a.stop()
        b2.stop()
        assert api_key not in log_a
    finally:
        for s in (a, b, b2):
            if s is not None:
                s.cleanup()

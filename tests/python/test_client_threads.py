"""The C client library shared by threads (tests/client/client_threads.c):
8 threads on one hx_client call Summary (1,000 rows, a few, one) and Health
in turn, and every reply must equal the same call made alone. The library
keeps its largest reply blocks between calls for the whole process, so a
block given to two calls at once would show here as a reply that differs."""

import os
import subprocess

import hxharness as hx

BIN = os.path.join(hx.BUILD_DIR, "tests", "client_threads")


def run(server, threads, calls):
    env = dict(os.environ, ADMIN_API_KEY=server.key)
    return subprocess.run([BIN, server.url, str(threads), str(calls)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_threads_share_one_client_and_every_reply_is_whole(clean, server):
    p = run(server, 8, 60)
    assert p.returncode == 0, p.stderr
    assert "8 threads x 60 calls, every reply as made alone" in p.stdout
    assert clean.count() == 20 * 50 * 3


def test_a_wrong_key_fails_the_program_not_passes_it(clean, server):
    env = dict(os.environ, ADMIN_API_KEY="not-the-key")
    p = subprocess.run([BIN, server.url, "2", "2"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 1
    assert "UNAUTHENTICATED" in p.stderr

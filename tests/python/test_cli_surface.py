"""The CLI on a terminal and in a script (issue 11): --json always prints one
JSON object, local errors included; the key can come from a mode-0600 file;
help COMMAND; the README's synopsis names the flags --help names; UNAVAILABLE
is retried over a window that outlasts a database restart."""

import json
import os
import re
import threading
import time

import pytest

import hxharness as hx

README = os.path.join(hx.SOURCE_DIR, "README.md")


def run(args, key=None, env=None):
    p = hx.run_cli(args, key=key, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def one_json(out):
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected exactly one JSON object on stdout, got {out!r}"
    return json.loads(lines[0])


# ---- --json for local errors ----------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--json", "ingest", "/nonexistent/export.json"], "/nonexistent/export.json"),
    (["--json", "--bogus", "health"], "unknown option '--bogus'"),
    (["--bogus", "--json", "health"], "unknown option '--bogus'"),  # before --json was read
    (["--json", "frobnicate"], "unknown command 'frobnicate'"),
    (["--json", "--timeout", "abc", "health"], "--timeout"),
    (["--json", "health", "--url", "nope://x"], "nope://x"),
], ids=["missing_file", "unknown_option", "option_before_json", "unknown_command", "bad_timeout",
        "bad_url"])
def test_json_local_errors_are_one_object(args, needle):
    rc, out, err = run(args, key="k" * 24)
    j = one_json(out)
    assert rc == 2, (rc, out, err)
    assert j["code"] == "INVALID_ARGUMENT" and j["error"] == "usage", j
    assert needle in j["message"], j
    assert j["violations"] == [] and "request_id" in j


def test_json_no_key_is_one_object():
    rc, out, _ = run(["--json", "health"], key=None, env={"HELIOX_API_KEY_FILE": ""})
    j = one_json(out)
    assert rc == 2 and "no API key" in j["message"], j


# ---- keys from a file -------------------------------------------------------------

def key_file(tmp_path, text, mode=0o600):
    p = tmp_path / "key"
    p.write_text(text)
    os.chmod(p, mode)
    return str(p)


def test_api_key_file(server, tmp_path):
    f = key_file(tmp_path, f"# the ingest key\n\n{server.key}\n")
    rc, out, err = run(["--url", server.url, "--json", "--api-key-file", f, "health"])
    assert rc == 0 and one_json(out)["code"] == "OK", (out, err)


def test_api_key_file_named_form(server, tmp_path):
    f = key_file(tmp_path, f"ops:{server.key}\n")
    rc, out, err = run(["--url", server.url, "--json", "--api-key-file", f, "health"])
    assert rc == 0, (out, err)


def test_api_key_file_from_environment(server, tmp_path):
    f = key_file(tmp_path, server.key + "\n")
    rc, out, err = run(["--url", server.url, "--json", "health"], env={"HELIOX_API_KEY_FILE": f})
    assert rc == 0 and one_json(out)["code"] == "OK", (out, err)


@pytest.mark.parametrize("mode,word", [(0o640, "read"), (0o604, "read"), (0o620, "write")])
def test_api_key_file_mode_enforced(server, tmp_path, mode, word):
    f = key_file(tmp_path, server.key + "\n", mode)
    rc, out, err = run(["--url", server.url, "--json", "--api-key-file", f, "health"])
    j = one_json(out)
    assert rc == 2, j
    assert "chmod 600" in j["message"] and word in j["message"] and f in j["message"], j
    assert server.key not in out + err


def test_api_key_and_key_file_together_refused(server, tmp_path):
    f = key_file(tmp_path, server.key + "\n")
    rc, out, _ = run(["--json", "--api-key", "x" * 20, "--api-key-file", f, "health"])
    assert rc == 2 and "not both" in one_json(out)["message"]


# ---- help -------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["ingest", "health", "summary"])
def test_help_command_is_command_help(cmd):
    rc1, out1, _ = run(["help", cmd])
    rc2, out2, _ = run([cmd, "--help"])
    assert rc1 == 0 and rc2 == 0
    assert out1 == out2 and out1.startswith(f"usage: heliox-ingest [options] {cmd}"), out1


def test_help_alone_and_unknown():
    rc, out, _ = run(["help"])
    assert rc == 0 and out == run(["--help"])[1]
    rc, _, err = run(["help", "nosuch"])
    assert rc == 2 and "unknown command 'nosuch'" in err


# ---- README and --help agree --------------------------------------------------------

FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-z-]*)")
ENV = re.compile(r"\b(HELIOX_[A-Z_]+|ADMIN_API_KEY)\b")


def readme_synopsis():
    text = open(README).read()
    section = text[text.index("### Client: `heliox-ingest`"):]
    return section[section.index("```") + 3:section.index("```", section.index("```") + 3)]


def help_texts():
    return [run(["--help"])[1]] + [run([c, "--help"])[1]
                                   for c in ("ingest", "health", "summary", "convert", "sync")]


def test_readme_synopsis_and_help_name_the_same_flags():
    syn = readme_synopsis()
    helps = "\n".join(help_texts())
    in_readme = set(FLAG.findall(syn))
    in_help = set(FLAG.findall(helps))
    assert in_readme == in_help, (f"only in README: {sorted(in_readme - in_help)}; "
                                  f"only in --help: {sorted(in_help - in_readme)}")
    assert set(ENV.findall(syn)) == set(ENV.findall(helps)), (ENV.findall(syn), ENV.findall(helps))
    assert {"--request-id", "--version", "--api-key-file", "--retry-window"} <= in_readme
    # every command the README's synopsis names, the global --help names too
    glob = run(["--help"])[1]
    for cmd in re.findall(r"^  ([a-z]+)\b", syn, flags=re.M):
        assert re.search(rf"^  {cmd}\b", glob, flags=re.M), f"{cmd} missing from --help"


# ---- retries outlast a database restart ---------------------------------------------

def test_unavailable_retried_across_a_database_restart(pg, server):
    server.assert_healthy()
    pg.stop()
    result = {}

    def ingest():
        t0 = time.monotonic()
        result["p"] = hx.run_cli(["--url", server.url, "--json", "--timeout", "60000",
                                  "--retry-window", "40000", "ingest", "--mock"], key=server.key)
        result["s"] = time.monotonic() - t0

    t = threading.Thread(target=ingest)
    try:
        t.start()
        time.sleep(4)  # several UNAVAILABLE answers, well past the old ~300 ms of retries
        assert t.is_alive(), f"the CLI gave up while the database was down: {result}"
    finally:
        pg.start()
    t.join(90)
    p = result["p"]
    j = one_json(p.stdout.decode())
    assert p.returncode == 0 and j["code"] == "OK", (j, p.stderr.decode())
    assert result["s"] >= 4


def test_retry_window_bounds_the_retries(pg, server):
    pg.stop()
    try:
        t0 = time.monotonic()
        rc, out, _ = run(["--url", server.url, "--json", "--timeout", "60000", "--retry-window", "1500",
                          "ingest", "--mock"], key=server.key)
        elapsed = time.monotonic() - t0
    finally:
        pg.start()
    j = one_json(out)
    assert rc == 5 and j["code"] == "UNAVAILABLE", j
    assert elapsed < 6, f"retried for {elapsed:.1f}s with --retry-window 1500"

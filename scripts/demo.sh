#!/usr/bin/env bash
# demo.sh - the quick start: on a fresh Debian 12 machine, as root,
#
#   installs the Debian packages (if missing), builds (Release, ./build),
#   starts a throwaway Postgres and heliox-ingestd on a free loopback port
#   with a random API key (never printed), ingests the mock export twice
#   (28 inserted, then 0 inserted / 28 unchanged), prints the cost summary
#   in total and per GPU type, converts and ingests a generated FOCUS bill
#   (data/samples/) and prints its GPU cost with GPU-hours and USD per
#   GPU-hour, and stops and removes everything again,
#   on failure too. Exits non-zero if any step fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"

step() { printf '\n==> %s\n' "$*"; }

tmp=""
server_pid=""
cleanup() {
	local rc=$?
	set +e
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		wait "$server_pid"
		local src=$?
		if [ "$src" != 0 ]; then
			echo "heliox-ingestd exited $src on SIGTERM" >&2
			[ "$rc" != 0 ] || rc=1
		fi
	fi
	if [ -n "$tmp" ]; then
		if [ "$rc" != 0 ] && [ -s "$tmp/server.log" ]; then
			echo "---- server log (last 40 lines) ----" >&2
			tail -n 40 "$tmp/server.log" >&2
		fi
		"$root/scripts/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Debian packages"
hx_install_deps
echo "all present"

step "build (Release, build/)"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
server="$root/build/heliox-ingestd"
cli="$root/build/heliox-ingest"
[ -x "$server" ] && [ -x "$cli" ]
echo "built $server and $cli"

step "throwaway PostgreSQL"
tmp=$(mktemp -d /tmp/heliox-demo.XXXXXX)
chmod 755 "$tmp" # user postgres must reach it
conninfo=$(PGTMP_FSYNC=off "$root/scripts/pgtmp.sh" start "$tmp/pg")
echo "$conninfo"

step "heliox-ingestd"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="tcp://127.0.0.1:$port"
ADMIN_API_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export ADMIN_API_KEY # read by the server and by the client; never printed
"$server" --listen "$url" --db "$conninfo" --data-dir "$root/data" --log-level info \
	2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
	if "$cli" --url "$url" --timeout 500 health >/dev/null 2>&1; then
		break
	fi
	kill -0 "$server_pid" 2>/dev/null || { echo "heliox-ingestd exited during start" >&2; exit 1; }
	sleep 0.2
done
"$cli" --url "$url" health

step "ingest the mock export (first time: 28 inserted)"
out=$("$cli" --url "$url" ingest --mock)
echo "$out"
grep -Eq '(inserted[=: ]+28\b|\b28 inserted)' <<<"$out" || { echo "expected 28 inserted" >&2; exit 1; }

step "ingest it again (idempotent: 0 inserted, 28 unchanged)"
out=$("$cli" --url "$url" ingest --mock)
echo "$out"
if ! grep -Eq '(inserted[=: ]+0\b|\b0 inserted)' <<<"$out" ||
	! grep -Eq '(unchanged[=: ]+28\b|\b28 unchanged)' <<<"$out"; then
	echo "expected 0 inserted, 28 unchanged" >&2
	exit 1
fi

step "cost summary"
"$cli" --url "$url" summary

step "cost summary per GPU type"
"$cli" --url "$url" summary --group-by gpu_type

bill="$root/data/samples/focus_2026-01.csv" # written by scripts/gen_bills.py
step "convert a FOCUS bill ($(basename "$bill")) to GPU daily cost, no server involved"
"$cli" convert -o "$tmp/focus.json" "$bill"
echo "wrote $tmp/focus.json ($(grep -o '"date"' "$tmp/focus.json" | wc -l) records)"

step "ingest the FOCUS bill: the whole truth for each provider over its dates, so the mock export's AWS January rows it does not hold are deleted"
"$cli" --url "$url" ingest "$bill"

step "GPU cost per provider and GPU type, with GPU-hours and USD per GPU-hour"
"$cli" --url "$url" summary --group-by provider_gpu_type --from 2026-01-01 --to 2026-01-31

step "stop"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" = 0 ] || { echo "heliox-ingestd exited $rc on SIGTERM" >&2; exit 1; }
echo "server stopped; removing the throwaway Postgres"

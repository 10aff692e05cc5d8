#!/usr/bin/env bash
# run.sh - heliox-bench against a throwaway Postgres and the real server.
#
#   bench/run.sh [--records N] [--build DIR] [--workers W] [--outside-calls C]
#                [-- BENCH-OPTIONS...]
#
# Starts a private PostgreSQL with fsync on (scripts/pgtmp.sh), starts
# heliox-ingestd from DIR on a free local port with a random API key, runs
# DIR/bench/heliox-bench against both and prints its table, then measures the
# 28-record latency again from bench/outside_client.py (C calls, default 500),
# a client that is not the project's own. Everything it
# started is stopped on the way out, whatever happens. Options after `--` go
# to heliox-bench as they are (e.g. -- --inflight 4 --batch 2000).
#
# HX_BENCH_WRAPPER, when set, runs heliox-bench under a tool, e.g.
# HX_BENCH_WRAPPER="valgrind --leak-check=full --error-exitcode=9".
#
# The exit status is heliox-bench's: 0 whenever the run worked, whatever the
# figures; non-zero only for a broken run (a call failed, a count was wrong,
# something did not start).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
records=200000
build=$root/build
workers=4 # the server's default, which the figures support (README)
outside_calls=500
extra=()

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

# Fails with a usage error unless option $1 has a value ($2).
need() {
	[ -n "${2:-}" ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
	case $1 in
	--records) need "$@"; records=$2; shift 2 ;;
	--build) need "$@"; build=$2; shift 2 ;;
	--workers) need "$@"; workers=$2; shift 2 ;;
	--outside-calls) need "$@"; outside_calls=$2; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
for n in "$records" "$workers" "$outside_calls"; do
	case $n in
	'' | *[!0-9]* | 0*) echo "run.sh: --records, --workers and --outside-calls take positive numbers" >&2; exit 2 ;;
	esac
done
build=$(cd "$build" && pwd)

server=$build/heliox-ingestd
bench=$build/bench/heliox-bench
for exe in "$server" "$bench"; do
	[ -x "$exe" ] || { echo "run.sh: $exe not built (cmake --build $build)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/heliox-bench.XXXXXX")
chmod 755 "$tmp" # the postgres user must reach its cluster inside
spid=

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
		kill -TERM "$spid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
	fi
	"$root/scripts/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on the loopback: ask the kernel, or probe with ss.
free_port() {
	if [ -x /usr/bin/python3 ]; then
		/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
		return
	fi
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# Waits until pid $1 listens on port $2 (up to 30 s); fails if it died.
wait_listening() {
	for _ in $(seq 300); do
		kill -0 "$1" 2>/dev/null || return 1
		ss -Htln "sport = :$2" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

conn=$(PGTMP_FSYNC=on "$root/scripts/pgtmp.sh" start "$tmp/pg")
port=$(free_port)
ADMIN_API_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
export ADMIN_API_KEY

"$server" --db "$conn" --listen "tcp://127.0.0.1:$port" --workers "$workers" \
	--data-dir "$root/data" 2>"$tmp/server.log" &
spid=$!
if ! wait_listening "$spid" "$port"; then
	echo "run.sh: heliox-ingestd did not start; its log:" >&2
	tail -n 30 "$tmp/server.log" >&2
	exit 1
fi

echo "run.sh: postgres fsync=on, heliox-ingestd pid $spid on tcp://127.0.0.1:$port," \
	"$workers workers, $(nproc) CPUs"
rc=0
# shellcheck disable=SC2086 # the wrapper is a command line: split it
${HX_BENCH_WRAPPER:-} "$bench" --url "tcp://127.0.0.1:$port" --db "$conn" --records "$records" \
	--server-pid "$spid" ${extra[@]+"${extra[@]}"} || rc=$?
if [ "$rc" = 0 ]; then
	# The same 28-record latency from a client that is not ours: Python's
	# protobuf and Debian's libnng.so.1 through ctypes.
	echo "run.sh: 28-record ingests from an outside client (Python protobuf + ctypes nng)"
	/usr/bin/python3 "$root/bench/outside_client.py" --url "tcp://127.0.0.1:$port" \
		--calls "$outside_calls" || rc=$?
fi
if [ "$rc" != 0 ]; then
	echo "run.sh: the benchmark failed ($rc); the server's log ends:" >&2
	tail -n 30 "$tmp/server.log" >&2
fi
exit "$rc"

#!/usr/bin/env bash
# run.sh - heliox-bench against a throwaway Postgres and the real server.
#
#   bench/run.sh [--records N] [--build DIR] [--workers W] [--outside-calls C]
#                [--ops-overhead R] [--fresh-runs F] [-- BENCH-OPTIONS...]
#
# Starts a private PostgreSQL with fsync on (scripts/pgtmp.sh), starts
# heliox-ingestd from DIR on a free local port with a random API key, runs
# DIR/bench/heliox-bench against both and prints its table, then measures the
# 28-record latency again from bench/outside_client.py (C calls, default 500),
# a client that is not the project's own. Everything it
# started is stopped on the way out, whatever happens. Options after `--` go
# to heliox-bench as they are (e.g. -- --inflight 4 --batch 2000).
#
# --ops-overhead R: afterwards, a second server with --metrics-listen (scraped
# every second meanwhile) and --log-format json on the same database, and R
# rounds alternating short runs against each; prints the medians of Health
# calls/s and of the 28-record ingest p50 for both, and the overhead.
#
# --fresh-runs F: instead, F runs of the fresh-ingest figure alone, each on a
# new cluster and a new server (the state of a new install), one line each:
# COPY and fresh ingest alternate --fresh-rounds times (default 3) per run.
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
overhead=0
fresh_runs=0
extra=()

usage() {
	sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
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
	--ops-overhead) need "$@"; overhead=$2; shift 2 ;;
	--fresh-runs) need "$@"; fresh_runs=$2; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	esac
done
for n in "$records" "$workers" "$outside_calls" "${fresh_runs/#0/1}"; do
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
opid=
scraper=

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; fi
	for p in $spid $opid; do
		kill -0 "$p" 2>/dev/null || continue
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
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

# Starts a new cluster in $tmp/pg and the server on it: sets conn, port, spid.
start_stack() {
	conn=$(PGTMP_FSYNC=on "$root/scripts/pgtmp.sh" start "$tmp/pg")
	port=$(free_port)
	"$server" --db "$conn" --listen "tcp://127.0.0.1:$port" --workers "$workers" \
		--data-dir "$root/data" 2>"$tmp/server.log" &
	spid=$!
	if ! wait_listening "$spid" "$port"; then
		echo "run.sh: heliox-ingestd did not start; its log:" >&2
		tail -n 30 "$tmp/server.log" >&2
		exit 1
	fi
}

# Stops what start_stack started and removes the cluster.
stop_stack() {
	kill -TERM "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	spid=
	"$root/scripts/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
	rm -rf "$tmp/pg"
}

ADMIN_API_KEY=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
export ADMIN_API_KEY

if [ "$fresh_runs" != 0 ]; then
	echo "run.sh: $fresh_runs fresh-ingest runs of $records records, each on a new cluster" \
		"and server ($workers workers, $(nproc) CPUs, postgres fsync=on)"
	for i in $(seq "$fresh_runs"); do
		start_stack
		"$bench" --url "tcp://127.0.0.1:$port" --db "$conn" --records "$records" \
			--server-pid "$spid" --fresh-only ${extra[@]+"${extra[@]}"} >"$tmp/fresh.out" ||
			{ cat "$tmp/fresh.out"; exit 1; }
		grep "fresh round" "$tmp/fresh.out" || true
		awk -v i="$i" '/^figure copy_rows_per_s=/ { sub(/^[^=]*=/, ""); c = $1 }
			/^figure ingest_fresh_rows_per_s=/ { sub(/^[^=]*=/, ""); f = $1 }
			/^figure fresh_round1_ratio=/ { sub(/^[^=]*=/, ""); r1 = $1 }
			/^figure fresh_ratio=/ { sub(/^[^=]*=/, ""); r = $1 }
			END { printf "fresh run %d: ingest fresh %.2fx COPY (median of the rounds;" \
				" first round %.2fx; medians COPY %.0f, ingest %.0f rows/s)\n", i, r, r1, c, f
				printf "figure fresh_run%d_ratio=%.3f\n", i, r }' "$tmp/fresh.out"
		stop_stack
	done
	exit 0
fi

start_stack
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
	# In a settled database, as heliox-bench's own latency phase (settle()
	# there says why): the summary phase has just written a million rows.
	psql "$conn" -qc "VACUUM ANALYZE cost_snapshots" -c "VACUUM ANALYZE ingestion_runs" \
		-c "CHECKPOINT" >/dev/null || true
	/usr/bin/python3 "$root/bench/outside_client.py" --url "tcp://127.0.0.1:$port" \
		--calls "$outside_calls" || rc=$?
fi
if [ "$rc" != 0 ]; then
	echo "run.sh: the benchmark failed ($rc); the server's log ends:" >&2
	tail -n 30 "$tmp/server.log" >&2
fi
if [ "$rc" != 0 ] || [ "$overhead" = 0 ]; then
	exit "$rc"
fi

# ---- --ops-overhead: the same figures with metrics and JSON logs on ----------------
oport=$(free_port)
mport=$(free_port)
"$server" --db "$conn" --listen "tcp://127.0.0.1:$oport" --workers "$workers" \
	--data-dir "$root/data" --metrics-listen "127.0.0.1:$mport" --log-format json \
	2>"$tmp/server-ops.log" &
opid=$!
wait_listening "$opid" "$oport" || { echo "run.sh: the ops server did not start" >&2; exit 1; }
(
	while :; do
		/usr/bin/python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$mport/metrics').read()" 2>/dev/null
		sleep 1
	done
) &
scraper=$!
short=(--records 2000 --skip-rowbyrow --latency-calls 400 --health-threads 16 --health-calls 1000)
for round in $(seq "$overhead"); do
	for which in plain ops; do
		p=$port pid=$spid
		if [ "$which" = ops ]; then p=$oport pid=$opid; fi
		"$bench" --url "tcp://127.0.0.1:$p" --db "$conn" --server-pid "$pid" "${short[@]}" \
			>"$tmp/round.out" 2>&1 || { echo "run.sh: round $round ($which) failed" >&2; exit 1; }
		grep -E '^figure (health_calls_per_s|ingest28_p50_ms)=' "$tmp/round.out" |
			sed "s/^figure /$which /" >>"$tmp/overhead"
	done
done
median() { # SERVER FIGURE
	grep "^$1 $2=" "$tmp/overhead" | sed 's/^[^=]*=//; s/ .*//' | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
hp=$(median plain health_calls_per_s)
ho=$(median ops health_calls_per_s)
lp=$(median plain ingest28_p50_ms)
lo=$(median ops ingest28_p50_ms)
echo
echo "ops overhead, medians of $overhead alternating rounds (ops: --metrics-listen scraped every 1 s, --log-format json):"
awk -v hp="$hp" -v ho="$ho" -v lp="$lp" -v lo="$lo" 'BEGIN {
	printf "Health calls/s          plain %8.0f    ops %8.0f    overhead %+5.1f%%\n", hp, ho, (hp - ho) / hp * 100
	printf "ingest 28 records p50   plain %8.2f ms ops %8.2f ms overhead %+5.1f%%\n", lp, lo, (lo - lp) / lp * 100
	printf "figure ops_health_overhead_pct=%.1f\n", (hp - ho) / hp * 100
	printf "figure ops_ingest28_p50_overhead_pct=%.1f\n", (lo - lp) / lp * 100
}'

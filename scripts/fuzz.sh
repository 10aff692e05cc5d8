#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer targets and run them.
#
#   scripts/fuzz.sh TARGET|all [SECONDS]
#
# TARGET: fuzz_export, fuzz_money or fuzz_rpc; SECONDS per target (default 60).
#
# Builds build-fuzz/ when needed (clang, ASan + UBSan, libFuzzer; the whole
# project instrumented through CMAKE_C_FLAGS). Each target runs on a working
# copy of its seed corpus, build-fuzz/corpus/TARGET, so the inputs it finds
# accumulate there and tests/fuzz/corpus/ stays small. A crash, leak, timeout
# or out-of-memory input is kept in build-fuzz/artifacts/TARGET/ and the exit
# status is 1: copy it to tests/fuzz/regressions/TARGET/ under a name without
# the "crash-" prefix (.gitignore drops those) and ctest replays it for good.
#
# Environment: HX_FUZZ_BUILD (build dir, default ./build-fuzz), HX_FUZZ_ARGS
# (extra libFuzzer flags, e.g. "-jobs=2").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${HX_FUZZ_BUILD:-$root/build-fuzz}
all=(fuzz_export fuzz_money fuzz_rpc)

usage() { echo "usage: $0 fuzz_export|fuzz_money|fuzz_rpc|all [SECONDS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case $1 in
all) targets=("${all[@]}") ;;
fuzz_export|fuzz_money|fuzz_rpc) targets=("$1") ;;
*) usage ;;
esac
secs=${2:-60}
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || usage

# ---- build ------------------------------------------------------------------
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
hx_install_deps "${HX_DEPS[@]}" "${HX_FUZZ_DEPS[@]}"
if [ ! -f "$build/CMakeCache.txt" ]; then
	mkdir -p "$build"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_COMPILER=clang -DHX_FUZZ=ON -DHX_BUILD_TESTS=OFF \
		-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
		>"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
fi
cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" >/dev/null

# ---- run ----------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
	work=$build/corpus/$t art=$build/artifacts/$t log=$build/logs/$t.log
	mkdir -p "$work" "$art" "$build/logs"
	cp -n "$root/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
	dict=()
	[ "$t" = fuzz_money ] || dict=(-dict="$root/tests/fuzz/export.dict")
	before=$(ls "$art" | wc -l)

	echo "== $t: ${secs}s, corpus $(ls "$work" | wc -l) files, log $log"
	rc=0
	# shellcheck disable=SC2086 # HX_FUZZ_ARGS is a list of flags
	"$build/tests/fuzz/$t" -max_len=65536 -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" \
		${HX_FUZZ_ARGS:-} "$work" >"$log" 2>&1 || rc=$?

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
	found=$(( $(ls "$art" | wc -l) - before ))
	echo "   executions: ${execs:-?} (${rate:-?}/s), ${cov:-cov: ?}, corpus now $(ls "$work" | wc -l) files, new crash inputs: $found"
	if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
		status=1
		echo "   FAILED (exit $rc); the report:"
		grep -n -m1 -E '^==[0-9]+==ERROR|invariant broken|runtime error|deadly signal|ERROR: libFuzzer' "$log" \
			| cut -d: -f1 | { read -r l && tail -n "+$l" "$log" | head -n 60; } | sed 's/^/   | /' || true
		ls -t "$art" | head -n 3 | sed "s|^|   kept: $art/|"
	fi
done
exit $status

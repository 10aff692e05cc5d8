#!/usr/bin/env bash
# valgrind.sh - run Python test modules with every heliox-ingestd the harness
# starts under valgrind (memcheck); fail on any memory error and on any
# definite or indirect leak.
#
#   scripts/valgrind.sh                  the default modules (below)
#   scripts/valgrind.sh test_cli ...     these modules (names from tests/python/)
#
# Builds Debug without sanitizers into build-valgrind/ (valgrind and ASan do
# not mix). Each server's report: build-valgrind/valgrind/vg.<pid>.log.
# "Possibly lost" and "still reachable" blocks are not errors: nng keeps
# some memory in threads that live until exit, and that is not a leak.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-valgrind"
logs="$build/valgrind"
default_modules=(test_origin_checks test_ingest_modes test_validation test_status_codes)

case "${1:-}" in
-h | --help)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
	modules=("${default_modules[@]}")
fi

if ! command -v valgrind >/dev/null; then
	echo "valgrind.sh: valgrind not found (apt-get install valgrind)" >&2
	exit 2
fi

echo "==> configure and build $build" >&2
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DHX_SANITIZE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target heliox-ingestd heliox-ingest hx_python_proto

rm -rf "$logs"
mkdir -p "$logs"
wrapper=(valgrind --error-exitcode=99 --leak-check=full
	--errors-for-leak-kinds=definite,indirect --track-fds=no
	"--log-file=$logs/vg.%p.log")
if [ -f "$root/tests/valgrind.supp" ]; then
	wrapper+=("--suppressions=$root/tests/valgrind.supp")
fi
# hxharness.py splits this with shlex: quote each word.
HX_SERVER_WRAPPER=$(printf '%q ' "${wrapper[@]}")
export HX_SERVER_WRAPPER
export HX_BUILD_DIR="$build" HX_SOURCE_DIR="$root" HX_PY_GEN="$build/python"
unset ASAN_OPTIONS UBSAN_OPTIONS

failed=()
cd "$root/tests/python"
for m in "${modules[@]}"; do
	m=${m%.py}
	echo "==> $m under valgrind" >&2
	/usr/bin/python3 -m pytest -q -p no:cacheprovider "$m.py" || failed+=("$m")
done

# The harness fails a test whose server exits 99; this also catches a report
# whose server exit status no test looked at.
bad=()
for f in "$logs"/vg.*.log; do
	[ -e "$f" ] || continue
	if grep -Eq 'ERROR SUMMARY: [1-9]' "$f"; then
		bad+=("$f")
	fi
done
echo "==> $(find "$logs" -name 'vg.*.log' | wc -l) server run(s) checked; reports in $logs" >&2
for f in "${bad[@]}"; do
	echo "==> errors in $f:" >&2
	grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|Invalid|uninitialised' "$f" | head -20 >&2
done
if [ ${#failed[@]} -ne 0 ] || [ ${#bad[@]} -ne 0 ]; then
	echo "==> FAILED: modules: ${failed[*]:-none}; reports with errors: ${#bad[@]}" >&2
	exit 1
fi
echo "==> valgrind clean" >&2

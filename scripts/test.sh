#!/usr/bin/env bash
# test.sh - install the Debian packages (if missing), build, and run every
# test (C unit tests + the Python harness) with ctest.
#
#   scripts/test.sh              build/       (RelWithDebInfo)
#   scripts/test.sh --sanitize   build-asan/  (-DHX_SANITIZE=ON: ASan + UBSan)
#
# Extra arguments after the options go to ctest (e.g. -R py.test_cli).
# Exits non-zero when the build or any test fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"

sanitize=0
ctest_args=()
for arg in "$@"; do
	case "$arg" in
	--sanitize) sanitize=1 ;;
	-h | --help)
		sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) ctest_args+=("$arg") ;;
	esac
done

hx_install_deps

jobs=$(nproc)
if [ "$sanitize" = 1 ]; then
	build="$root/build-asan"
	cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DHX_SANITIZE=ON)
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
	build="$root/build"
	cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

echo "==> configure $build" >&2
cmake -S "$root" -B "$build" "${cmake_args[@]}"
echo "==> build" >&2
cmake --build "$build" -j"$jobs"
echo "==> ctest" >&2
ctest --test-dir "$build" --output-on-failure -j2 "${ctest_args[@]}"

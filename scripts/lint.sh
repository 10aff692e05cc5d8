#!/usr/bin/env bash
# lint.sh - clang-tidy (14) and cppcheck (2.10) over src/ and clients/.
#
#   scripts/lint.sh              uses build/compile_commands.json
#   HX_LINT_BUILD=DIR scripts/lint.sh   another build tree
#
# clang-tidy's checks are in .clang-tidy; cppcheck's are below. Each tool sees
# exactly the flags the compiler does (compile_commands.json), so the build
# tree is configured first if need be, and the protobuf-c header generated.
# Exits 1 when either tool reports anything, 2 when a tool is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HX_LINT_BUILD:-$root/build}
jobs=$(nproc)

case "${1:-}" in
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
if [ -z "$tidy" ] || ! command -v cppcheck >/dev/null; then
	echo "lint.sh: needs run-clang-tidy (clang-tidy 14) and cppcheck (apt-get install clang-tidy cppcheck)" >&2
	exit 2
fi
clang_tidy=$(command -v clang-tidy-14 || command -v clang-tidy)

if [ ! -f "$build/compile_commands.json" ]; then
	echo "==> configure $build" >&2
	cmake -S "$root" -B "$build" >/dev/null
fi
# The generated ingest.pb-c.h is included by most of src/ and clients/.
cmake --build "$build" --target hx_proto -j"$jobs" >/dev/null

failed=()

echo "==> clang-tidy" >&2
if ! "$tidy" -clang-tidy-binary "$clang_tidy" -p "$build" -j "$jobs" -quiet \
	"^$root/(src|clients)/.*\.c\$"; then
	failed+=(clang-tidy)
fi

# cppcheck: warnings, style, performance and portability, minus
#  variableScope: we declare at the top of a function, nng/BSD style, on purpose.
# It does not read system headers (too slow, and not ours), so the two
# protobuf-c version macros the generated header tests are given here.
echo "==> cppcheck" >&2
if ! cppcheck --project="$build/compile_commands.json" \
	--file-filter="$root/src/*" --file-filter="$root/clients/*" \
	--file-filter='src/*' --file-filter='clients/*' \
	-DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 \
	--enable=warning,style,performance,portability \
	--suppress=missingIncludeSystem --suppress=variableScope \
	--inline-suppr --error-exitcode=1 --quiet -j "$jobs" \
	--template='{file}:{line}: {severity}: {id}: {message}'; then
	failed+=(cppcheck)
fi

if [ ${#failed[@]} -ne 0 ]; then
	echo "==> lint: findings from ${failed[*]}" >&2
	exit 1
fi
echo "==> lint clean" >&2

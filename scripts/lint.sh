#!/usr/bin/env bash
# lint.sh - clang-format (14), clang-tidy (14) and cppcheck (2.10) over our C,
# and scripts/calls.py: no two source files call each other.
#
#   scripts/lint.sh              uses build/compile_commands.json
#   HX_LINT_BUILD=DIR scripts/lint.sh   another build tree
#
# The house style is .clang-format: every tracked .c and .h must already be
# formatted (clang-format -i FILE fixes one). clang-tidy's checks are in
# .clang-tidy; cppcheck's are below. Each of those two sees exactly the flags
# the compiler does (compile_commands.json), so the build tree is configured
# first if need be, and the protobuf-c header generated.
# Exits 1 when any tool reports anything, 2 when a tool is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HX_LINT_BUILD:-$root/build}
jobs=$(nproc)

case "${1:-}" in
-h | --help)
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
format=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$tidy" ] || [ -z "$format" ] || ! command -v cppcheck >/dev/null; then
	echo "lint.sh: needs run-clang-tidy (clang-tidy 14), clang-format 14 and cppcheck" \
		"(apt-get install clang-tidy clang-format cppcheck)" >&2
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

# Every C file in the repository, generated code aside (it lives in the build
# tree). Names a file per finding; --dry-run changes nothing.
echo "==> clang-format" >&2
mapfile -t sources < <(git -C "$root" ls-files -- '*.c' '*.h')
if [ ${#sources[@]} -eq 0 ]; then
	echo "lint.sh: no C files found (not a git checkout?)" >&2
	exit 2
fi
fmt_rc=0
fmt_out=$(cd "$root" && "$format" --style=file --dry-run -Werror "${sources[@]}" 2>&1) || fmt_rc=$?
if [ "$fmt_rc" -ne 0 ]; then
	# One line per file, not one per misformatted line.
	summary=$(printf '%s\n' "$fmt_out" | sed -n 's/^\([^ :]*\):[0-9]*:[0-9]*: error: .*clang-format-violations.*/\1/p' |
		sort | uniq -c | awk '{ printf "  %s: %d places to reformat\n", $2, $1 }')
	printf '%s\n' "${summary:-$fmt_out}" >&2
	echo "  fix with: $format -i FILE..." >&2
	failed+=(clang-format)
fi

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

# Calls go down (issue 8): no two files of src/, clients/ or bench/ may use
# each other's symbols, read from the object files (so the whole tree is
# built first). scripts/calls.py --known DIR would report a directory's
# pairs without failing; none is needed any more.
echo "==> calls" >&2
cmake --build "$build" -j"$jobs" >/dev/null
if ! /usr/bin/python3 "$root/scripts/calls.py" "$build" >&2; then
	failed+=(calls)
fi

if [ ${#failed[@]} -ne 0 ]; then
	echo "==> lint: findings from ${failed[*]}" >&2
	exit 1
fi
echo "==> lint clean" >&2

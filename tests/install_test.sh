#!/usr/bin/env bash
# install_test.sh - installs the build into a temporary prefix and uses it the
# way a new user would, from the prefix only.
#
#   tests/run_with_pg.sh tests/install_test.sh BUILD_DIR   (ctest: install.prefix)
#
#  1. cmake --install BUILD_DIR --prefix TMP/p
#  2. every function the installed headers declare (HX_API) is a dynamic
#     symbol of the installed libheliox-client, and nothing else is (no
#     generated heliox__ingest__v1__* code)
#  3. examples/ builds from a copy, against TMP/p only: with pkg-config
#     (examples/Makefile) and with CMake (find_package(heliox CONFIG))
#  4. TMP/p/bin/heliox-ingest --help runs (its run path finds the library)
#  5. TMP/p/bin/heliox-ingestd, with no --data-dir, against $HX_TEST_DB:
#     both example builds and `heliox-ingest ingest --mock` run against it
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR (under tests/run_with_pg.sh)" >&2; exit 2; }
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
: "${HX_TEST_DB:?run me under tests/run_with_pg.sh}"
# Nothing may come from the build tree.
unset LD_LIBRARY_PATH LD_PRELOAD CMAKE_PREFIX_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hx-install.XXXXXX")
prefix=$tmp/p
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# The installed library of a sanitizer build needs its runtime in the
# programs that load it.
xflags=
if grep -q '^HX_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
	xflags="-fsanitize=address,undefined"
fi

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
libdir=$(dirname "$(find "$prefix" -name 'libheliox-client.so.0' | head -n 1)")
[ -f "$libdir/libheliox-client.so.0" ] || fail "no libheliox-client.so.0 installed"
[ -f "$libdir/pkgconfig/heliox-client.pc" ] || fail "no heliox-client.pc installed"
[ -f "$libdir/cmake/heliox/heliox-config.cmake" ] || fail "no CMake package installed"
[ -f "$prefix/share/heliox/mock_cost_export.json" ] || fail "no mock export installed"

step "installed headers declare exactly what libheliox-client.so.0 exports"
soname=$(readelf -d "$libdir/libheliox-client.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libheliox-client.so.0 ] || fail "soname is '$soname'"
# Each declaration starts a line with HX_API and names its function before
# the first '(' on that line.
grep -h '^HX_API ' "$prefix"/include/heliox/*.h | sed 's/(.*//; s/.*[ *]//' | sort -u >"$tmp/declared"
nm -D --defined-only "$libdir/libheliox-client.so.0" | awk '$2 == "T" { print $3 }' | sort -u >"$tmp/exported"
nm -D --defined-only "$libdir/libheliox-client.so.0" | awk '{ print $3 }' | sort -u >"$tmp/all"
[ "$(wc -l <"$tmp/declared")" -ge 20 ] || fail "found only $(wc -l <"$tmp/declared") HX_API declarations"
diff -u "$tmp/declared" "$tmp/exported" || fail "declared (-) and exported (+) functions differ"
if grep -q 'heliox__\|protobuf' "$tmp/all"; then
	fail "generated symbols exported: $(grep 'heliox__\|protobuf' "$tmp/all" | head -n 3 | tr '\n' ' ')"
fi
echo "    $(wc -l <"$tmp/declared") functions, declared and exported alike"

step "examples/ with pkg-config, from the prefix only"
cp -r "$src/examples" "$tmp/ex-pc"
rm -f "$tmp/ex-pc/ingest-example"
PKG_CONFIG_PATH=$libdir/pkgconfig make -C "$tmp/ex-pc" -s CFLAGS="-O1 -g $xflags" \
	LDFLAGS="-Wl,-rpath,$libdir $xflags" >"$tmp/ex-pc.log" 2>&1 ||
	{ cat "$tmp/ex-pc.log" >&2; fail "pkg-config build"; }
grep -q -- "-I$prefix/lib[^ ]*/pkgconfig/../../include\|-I$prefix/include" "$tmp/ex-pc.log" ||
	PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags heliox-client | grep -q "$prefix" ||
	fail "pkg-config does not point into $prefix"

step "examples/ with CMake, from the prefix only"
cp -r "$src/examples" "$tmp/ex-cmake"
cmake -S "$tmp/ex-cmake" -B "$tmp/ex-cmake/build" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_C_FLAGS="$xflags" \
	-DCMAKE_EXE_LINKER_FLAGS="$xflags" >"$tmp/ex-cmake.log" 2>&1 ||
	{ cat "$tmp/ex-cmake.log" >&2; fail "CMake configure"; }
found=$(sed -n 's/^heliox_DIR:PATH=//p' "$tmp/ex-cmake/build/CMakeCache.txt")
[ "$found" = "$libdir/cmake/heliox" ] || fail "find_package(heliox) found '$found'"
cmake --build "$tmp/ex-cmake/build" >>"$tmp/ex-cmake.log" 2>&1 ||
	{ cat "$tmp/ex-cmake.log" >&2; fail "CMake build"; }

step "the installed programs run from the prefix"
loaded=$(ldd "$prefix/bin/heliox-ingest" | sed -n 's/.*libheliox-client\.so\.0 => \([^ ]*\) .*/\1/p')
[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$libdir/libheliox-client.so.0")" ] ||
	{ ldd "$prefix/bin/heliox-ingest" >&2; fail "heliox-ingest does not find the installed library"; }
"$prefix/bin/heliox-ingest" --help >"$tmp/help.txt" 2>&1 || { cat "$tmp/help.txt" >&2; fail "heliox-ingest --help"; }
grep -q 'usage' "$tmp/help.txt" || fail "heliox-ingest --help printed no usage"
"$prefix/bin/heliox-ingestd" --help | grep -q "(default $prefix/share/heliox)" ||
	fail "heliox-ingestd's default --data-dir is not $prefix/share/heliox"

step "heliox-ingestd from the prefix, default --data-dir"
export ADMIN_API_KEY=install-test-$$-$RANDOM
export HELIOX_URL=ipc://$tmp/hx.sock
"$prefix/bin/heliox-ingestd" --listen "$HELIOX_URL" --db "$HX_TEST_DB" --workers 2 \
	>"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
	"$prefix/bin/heliox-ingest" health >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; fail "heliox-ingestd exited"; }
	sleep 0.1
done
"$prefix/bin/heliox-ingest" health | grep -q '^serving  database ok' ||
	{ cat "$tmp/server.log" >&2; fail "health"; }
grep -q "mock export loaded from $prefix/share/heliox/mock_cost_export.json" "$tmp/server.log" ||
	{ cat "$tmp/server.log" >&2; fail "the server did not load the installed mock export"; }

expect() { # FILE LINE: FILE has exactly the line LINE
	grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "expected the line '$2'"; }
}
step "the example built with pkg-config, against the server"
"$tmp/ex-pc/ingest-example" >"$tmp/run1.txt" || { cat "$tmp/run1.txt" >&2; fail "pkg-config example run"; }
cat "$tmp/run1.txt"
expect "$tmp/run1.txt" "health: serving=1 database_ok=1 version=0.1.0"
expect "$tmp/run1.txt" "ingest: received=3 inserted=3 updated=0 unchanged=0"
expect "$tmp/run1.txt" "summary by PROVIDER:"
expect "$tmp/run1.txt" "  aws      records=2 total_usd=2435.77 gpu_hours=48.00 usd_per_gpu_hour=50.7452"
# 2210.05 / 8 = 276.25625: half away from zero at 4 places
expect "$tmp/run1.txt" "  gcp      records=1 total_usd=2210.05 gpu_hours=8.00 usd_per_gpu_hour=276.2563"

step "the example built with CMake, against the server (same records again)"
"$tmp/ex-cmake/build/ingest-example" "$HELIOX_URL" >"$tmp/run2.txt" ||
	{ cat "$tmp/run2.txt" >&2; fail "CMake example run"; }
expect "$tmp/run2.txt" "ingest: received=3 inserted=0 updated=0 unchanged=3"
expect "$tmp/run2.txt" "  aws      records=2 total_usd=2435.77 gpu_hours=48.00 usd_per_gpu_hour=50.7452"

step "heliox-ingest ingest --mock, from the prefix"
"$prefix/bin/heliox-ingest" ingest --mock >"$tmp/mock.txt" 2>&1 || { cat "$tmp/mock.txt" >&2; fail "ingest --mock"; }
cat "$tmp/mock.txt"
grep -q '^ingest: OK  request_id=.* received=28 inserted=28 ' "$tmp/mock.txt" || fail "ingest --mock output"

kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" = 0 ] || { cat "$tmp/server.log" >&2; fail "heliox-ingestd exited $rc on SIGTERM"; }
echo "==> install test passed"

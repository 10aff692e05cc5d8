# shellcheck shell=bash
# deps.sh - the Debian 12 packages Heliox ingest needs, in one place.
# Sourced by scripts/demo.sh and scripts/test.sh:
#
#   . scripts/deps.sh && hx_install_deps
#
# Installs only what is missing (checked with dpkg -s), so a machine that has
# everything needs no network at all.

HX_DEPS=(
	# build
	cmake pkg-config gcc make
	# server and client libraries
	libprotobuf-c-dev protobuf-c-compiler libnng-dev libpq-dev libcjson-dev libssl-dev
	# billing exports: CSV splitting and gzip (clients/convert)
	libcsv-dev zlib1g-dev
	# tests and demo (postgresql brings the JIT provider test_ingest_modes needs)
	postgresql libcmocka-dev protobuf-compiler python3-protobuf python3-pytest
	# operating: promtool and a real Prometheus server scrape /metrics, PgBouncer
	# sits in front of the database, systemd-analyze verifies the units
	prometheus pgbouncer systemd
)

# Tools only some scripts need, installed by those scripts alone so that the
# quick start stays small: fuzzing (scripts/fuzz.sh), static analysis
# (scripts/lint.sh) and memcheck (scripts/valgrind.sh).
HX_FUZZ_DEPS=(clang libclang-rt-14-dev)
HX_LINT_DEPS=(cppcheck clang-tidy clang-format)
HX_VALGRIND_DEPS=(valgrind)

# hx_missing_deps [PKG...]: the packages of the list (default HX_DEPS) that
# dpkg does not know as installed, one a line.
hx_missing_deps() {
	local p
	local want=("$@")
	[ ${#want[@]} -gt 0 ] || want=("${HX_DEPS[@]}")
	for p in "${want[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || printf '%s\n' "$p"
	done
}

# hx_install_deps [PKG...]: installs what is missing of the list (default
# HX_DEPS), e.g. hx_install_deps "${HX_FUZZ_DEPS[@]}".
hx_install_deps() {
	local missing
	missing=$(hx_missing_deps "$@" | tr '\n' ' ')
	if [ -z "${missing// /}" ]; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages: $missing(run as root, or: apt-get install $missing)" >&2
		return 1
	fi
	echo "installing: $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >&2
	# the postgresql package starts a cluster of its own on 5432; the demo and
	# the tests use private ones (scripts/pgtmp.sh) and do not need it
	missing=$(hx_missing_deps "$@" | tr '\n' ' ')
	if [ -n "${missing// /}" ]; then
		echo "still missing after apt-get install: $missing" >&2
		return 1
	fi
}

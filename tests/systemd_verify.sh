#!/bin/sh
# systemd_verify.sh SOURCE_DIR BIN_DIR - `systemd-analyze verify` on the
# units in packaging/systemd/, with @HX_BINDIR@ pointing at BIN_DIR (verify
# checks that ExecStart's program exists). Fails on any warning it prints.
set -eu
src=$1 bin=$2
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$src"/packaging/systemd/*.service.in; do
	sed "s|@HX_BINDIR@|$bin|g" "$f" >"$tmp/$(basename "$f" .in)"
done
cp "$src"/packaging/systemd/*.timer "$tmp/"
# Both units read an environment file; verify needs it to exist only when the
# unit is started, but give it one so nothing is left to chance.
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ./*.service ./*.timer 2>&1) || {
	echo "$out" >&2
	exit 1
}
if [ -n "$out" ]; then
	echo "systemd-analyze verify printed:" >&2
	echo "$out" >&2
	exit 1
fi
echo "verified: $(cd "$tmp" && ls)"

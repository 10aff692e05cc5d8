#!/usr/bin/env bash
# run_with_pg.sh - runs a command against a throwaway PostgreSQL.
#
#   tests/run_with_pg.sh COMMAND [ARG...]
#
# Starts a private cluster (scripts/pgtmp.sh, fsync off) in a fresh temporary
# directory, exports its libpq connection string as HX_TEST_DB, runs the
# command, and whatever happens stops the cluster and removes the directory.
# Exits with the command's status.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
pgtmp=$here/../scripts/pgtmp.sh

dir=$(mktemp -d "${TMPDIR:-/tmp}/hx-pg.XXXXXX")
chmod 755 "$dir" # the cluster runs as 'postgres' when we are root
cleanup() {
	"$pgtmp" stop "$dir/pg" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
child=
# A signal (ctest's timeout, ^C) ends the command too, then the EXIT trap
# removes the cluster.
on_signal() {
	[ -z "$child" ] || { kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; }
	exit "$1"
}
trap cleanup EXIT
trap 'on_signal 129' HUP
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

HX_TEST_DB=$(PGTMP_FSYNC=off "$pgtmp" start "$dir/pg")
export HX_TEST_DB

# In the background and waited for: bash runs a trap only once the
# foreground command ends, but it interrupts `wait` at once.
"$@" &
child=$!
status=0
wait "$child" || status=$?
child=
exit "$status"

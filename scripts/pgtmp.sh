#!/usr/bin/env bash
# pgtmp.sh - a private, throwaway PostgreSQL cluster on a unix socket.
#
#   scripts/pgtmp.sh start DIR   create (if new) and start a cluster in DIR;
#                                prints its libpq connection string on stdout
#   scripts/pgtmp.sh stop DIR    stop it (fast shutdown); DIR is left for the caller
#
# Postgres refuses to run as root, so as root the cluster belongs to the
# 'postgres' user and every server command runs through runuser. It listens on
# no TCP address at all: only the socket in DIR/sock. Environment:
#   PGTMP_FSYNC=on|off   (default on; tests may turn it off for speed)
#   PGTMP_PORT=N         (default 5432: only names the socket file)
set -euo pipefail

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pgtmp: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }
port=${PGTMP_PORT:-5432}
fsync=${PGTMP_FSYNC:-on}

as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
	mkdir -p "$dir/data" "$dir/sock"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$dir"
		runuser -u postgres -- test -x "$dir" || {
			echo "pgtmp: user postgres cannot reach $dir; make its parent folders searchable (chmod o+x)" >&2
			exit 1
		}
	fi
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
	fi
	as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 ||
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -p $port -c fsync=$fsync -c max_connections=200" \
		>/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
	as_owner "$bindir/psql" -h "$dir/sock" -p "$port" -U postgres -d postgres -qAt \
		-c "SELECT 1 FROM pg_database WHERE datname = 'heliox'" | grep -q 1 ||
		as_owner "$bindir/createdb" -h "$dir/sock" -p "$port" -U postgres heliox
	echo "host=$dir/sock port=$port user=postgres dbname=heliox"
	;;
stop)
	[ -f "$dir/data/postmaster.pid" ] || exit 0
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
	;;
*)
	echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# convert.sh - the billing conversion benchmark (issue 9): heliox-ingest convert
# on a generated 1M-line FOCUS bill and a 1M-line AWS CUR 2.0 bill, plain and
# gzip, beside DuckDB (2 threads and 1, DECIMAL sums: the cross-check), pandas
# and `gzip -dc > /dev/null` (the decompression floor). Prints seconds, MB/s
# and peak RSS, and fails if any sum differs from DuckDB's in any digit.
#
#   bench/convert.sh [BUILD_DIR]      (default build; data cached in $HX_BENCH_DIR)
#
# DuckDB (@duckdb/node-api) is installed by npm into a temporary directory for
# the run only: it is never a dependency of the product. pandas is Debian's
# python3-pandas.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
data=${HX_BENCH_DIR:-/tmp/heliox-bench-convert}
lines=${HX_BENCH_LINES:-1000000}
cli=$build/heliox-ingest
map=$here/data/gpu_map_v1.csv
mkdir -p "$data"

for k in focus cur2; do
	if [ ! -s "$data/$k.csv" ]; then
		echo "generating $data/$k.csv ($lines lines)" >&2
		/usr/bin/python3 "$here/scripts/gen_bills.py" "$k" --lines "$lines" --seed 1 -o "$data/$k.csv"
	fi
	[ -s "$data/$k.csv.gz" ] || gzip -k -6 -c "$data/$k.csv" > "$data/$k.csv.gz"
done

duck=$(mktemp -d)
trap 'rm -rf "$duck"' EXIT
(cd "$duck" && npm install --no-audit --no-fund --silent @duckdb/node-api >/dev/null 2>&1) ||
	{ echo "npm could not install @duckdb/node-api" >&2; exit 1; }
cp "$here/bench/convert_duckdb.mjs" "$duck/"

# timed CMD...: prints "seconds peak_rss_kib cpu_seconds" of the command (CPU =
# user + system, all threads: the figure to compare when others share the cores)
timed() {
	/usr/bin/time -f "%e %M %U %S" -o "$duck/time" "$@" >/dev/null 2>"$duck/err" || { cat "$duck/err" >&2; return 1; }
	awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$duck/time"
}

mb() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }

row() { # name seconds size rss cpu [note]
	printf '%-34s %9s %9s %7s MiB %8s%s\n' "$1" "$2" "$(mb "$3" "$2")" $(($4 / 1024)) "$5" "${6:-}"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-34s %9s %9s %11s %8s\n' "run" "seconds" "MB/s" "peak RSS" "CPU s"
fail=0
for k in focus cur2; do
	f=$data/$k.csv
	size=$(stat -L -c %s "$f")
	kind=$([ "$k" = focus ] && echo focus || echo cur)
	# every run reads from the page cache, the first one too
	cat "$f" "$f.gz" > /dev/null
	read -r s rss cpu < <(timed "$cli" convert "$f" -o "$duck/$k.json")
	row "heliox convert $k.csv" "$s" "$size" "$rss" "$cpu"
	read -r s rss cpu < <(timed "$cli" convert "$f.gz" -o "$duck/$k.gz.json")
	row "heliox convert $k.csv.gz" "$s" "$size" "$rss" "$cpu"
	read -r s rss cpu < <(timed sh -c "gzip -dc '$f.gz' > /dev/null")
	row "gzip -dc $k.csv.gz (floor)" "$s" "$size" "$rss" "$cpu"
	for t in 2 1; do
		/usr/bin/time -f "%e %M %U %S" -o "$duck/time" node "$duck/convert_duckdb.mjs" "$kind" "$f" "$map" "$t" \
			> "$duck/$k.duck$t" 2>"$duck/err" || { cat "$duck/err" >&2; exit 1; }
		read -r s rss u sy < "$duck/time"
		row "duckdb $t thread(s) $k.csv" "$s" "$size" "$rss" "$(awk -v u="$u" -v s="$sy" 'BEGIN { printf "%.2f", u + s }')" \
			"   (query $(head -1 "$duck/$k.duck$t") s)"
	done
	read -r s rss cpu < <(timed /usr/bin/python3 "$here/bench/convert_pandas.py" "$kind" "$f")
	row "pandas $k.csv" "$s" "$size" "$rss" "$cpu"
	# exact cross-check: DuckDB's DECIMAL sums rounded once to 6 places, half away from zero
	/usr/bin/python3 - "$duck/$k.json" "$duck/$k.gz.json" "$duck/$k.duck2" <<'PY' || fail=1
import json, sys
from decimal import Decimal, ROUND_HALF_UP
docs = [json.load(open(p)) for p in sys.argv[1:3]]
ours = {(r["date"], r["provider"], r["gpu_type"]): Decimal(r["cost_usd"]) for r in docs[0]["cost_data"]}
assert docs[0]["cost_data"] == docs[1]["cost_data"], "the .gz gave other records than the plain file"
duck = {}
for line in open(sys.argv[3]).read().split("\n")[1:]:
    if line.strip():
        d, p, g, s = line.split()
        v = Decimal(s).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        if v > 0:
            duck[(d, p, g)] = v
bad = [k for k in set(ours) | set(duck) if ours.get(k) != duck.get(k)]
print("  sums: %d groups, %s" % (len(ours), "identical to DuckDB's" if not bad else "DIFFER: %r" % bad[:5]))
sys.exit(1 if bad else 0)
PY
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail

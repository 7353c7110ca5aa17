#!/usr/bin/env bash
# The ingest benchmark: ipi against the peers, side by side, in one run.
#
#   bench/ingest.sh LOG [RUNS]
#
# LOG is an access log such as the 700 MB, 3.1M-line one that
# ../shared/peers/make_login_log.py writes for 10,000 users. Every tool does
# the SageMaker notebook's job: keep `GET /login_success` with status 200 and
# write Parquet. The peers write three columns (user, ip, timestamp); ipi
# writes the whole events schema, partitioned by UTC date, plus rejects:
# every column by default, and with `--keep=` the columns IP Insights needs
# (time, offset, entity, ip and ipv4, status, source, line; the request,
# referer and agent columns null), which is the peers' job like for like.
#
# Needs a release build (cargo build --release -p ipi-pipeline), and
# PEERS_PYTHON pointing at a Python with duckdb, polars, pandas and pyarrow
# (see ../shared/peers/README.md). Each pair runs the two commands in turn
# (A B A B ..., after one warm-up of each) under /usr/bin/time and prints
# the median of the pairwise wall-time ratios, so a shared, noisy machine
# hits both alike. Quote ratios, not seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log=$(realpath "$1"); runs=${2:-5}
peers="$root/../shared/peers"
py=${PEERS_PYTHON:-python3}
ipi="$root/target/release/ipi-pipeline"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
cat "$log" > /dev/null   # warm the page cache: every run is warm-cache

# pair RUNS 'A command' 'B command': runs A and B in turn, prints each
# one's median wall seconds and peak RSS, and the median of the A/B ratios.
pair() {
  local n=$1 a=$2 b=$3 i
  : > "$out/times"
  for i in $(seq 0 "$n"); do
    for which in a b; do
      local cmd=$a; [ "$which" = b ] && cmd=$b
      /usr/bin/time -f "$i $which %e %M" -a -o "$out/times" $cmd > /dev/null 2>&1 || true
    done
  done
  $py - "$out/times" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    i, which, wall, rss = line.split()
    if i != "0":  # the warm-up
        runs.setdefault(which, {})[i] = (float(wall), int(rss))
a, b = runs["a"], runs["b"]
ratios = [a[i][0] / b[i][0] for i in a if i in b]
for name, r in (("A (ipi)", a), ("B (peer)", b)):
    print(f"  {name}: median wall {statistics.median(v[0] for v in r.values()):.2f} s, "
          f"peak RSS {max(v[1] for v in r.values()) / 1024:.0f} MiB")
print(f"  wall ratio A/B: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}, {len(ratios)} pairs)")
PY
}

ours="$ipi --quiet ingest $log --output $out/ipi --method GET --path-prefix /login_success --status 200"
echo "== ipi, every column, vs DuckDB (CSV mode, the fastest peer; three columns)"
pair "$runs" "$ours" "$py $peers/ingest_duckdb.py $log $out/duck.parquet --mode csv"
echo "== ipi --keep= (what IP Insights needs) vs DuckDB"
pair "$runs" "$ours --keep=" "$py $peers/ingest_duckdb.py $log $out/duck.parquet --mode csv"
echo "== ipi vs polars (CSV mode)"
pair "$runs" "$ours" "$py $peers/ingest_polars.py $log $out/polars.parquet --mode csv"
echo "== ipi vs pandas (the SageMaker notebook's path)"
pair "$(( runs < 5 ? runs : 5 ))" "$ours" "$py $peers/ingest_pandas.py $log $out/pandas.parquet"
echo "== ipi --keep= vs pandas"
pair "$(( runs < 5 ? runs : 5 ))" "$ours --keep=" "$py $peers/ingest_pandas.py $log $out/pandas.parquet"
echo "== rows kept: ipi, then DuckDB"
$ipi --quiet ingest "$log" --output "$out/ipi" --method GET --path-prefix /login_success --status 200 --json \
    | $py -c 'import json,sys; print(json.load(sys.stdin)["totals"])'
$py -c "import duckdb,sys; print(duckdb.sql(\"select count(*) from '$out/duck.parquet'\").fetchall())"

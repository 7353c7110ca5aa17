#!/usr/bin/env bash
# The ingest benchmark: ipi against the peers, side by side, in one run.
#
#   bench/ingest.sh LOG [RUNS]
#
# LOG is an access log such as the 700 MB, 3.1M-line one that
# ../shared/peers/make_login_log.py writes for 10,000 users. Every tool does
# the SageMaker notebook's job: keep `GET /login_success` with status 200 and
# write Parquet. The peers write three columns; ipi writes the whole events
# schema, partitioned by UTC date, plus rejects.
#
# Needs a release build (cargo build --release -p ipi-pipeline), and
# PEERS_PYTHON pointing at a Python with duckdb, polars, pandas and pyarrow
# (see ../shared/peers/README.md). Uses farm-bench, which runs the two
# commands in turn (A B A B ...) and prints the ratio pair by pair, so a
# shared, noisy machine hits both alike. Quote ratios, not seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log=$(realpath "$1"); runs=${2:-5}
peers="$root/../shared/peers"
py=${PEERS_PYTHON:-python3}
ipi="$root/target/release/ipi-pipeline"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
cat "$log" > /dev/null   # warm the page cache: every run is warm-cache

ours="$ipi --quiet ingest $log --output $out/ipi --method GET --path-prefix /login_success --status 200"
echo "== ipi, every column, vs DuckDB (CSV mode, the fastest peer; three columns)"
farm-bench -n "$runs" --timeout 600 --vs "$py $peers/ingest_duckdb.py $log $out/duck.parquet --mode csv" -- $ours
echo "== ipi --keep= (what IP Insights needs) vs DuckDB"
farm-bench -n "$runs" --timeout 600 --vs "$py $peers/ingest_duckdb.py $log $out/duck.parquet --mode csv" -- $ours --keep=
echo "== ipi vs polars (CSV mode)"
farm-bench -n "$runs" --timeout 600 --vs "$py $peers/ingest_polars.py $log $out/polars.parquet --mode csv" -- $ours
echo "== ipi vs pandas (the SageMaker notebook's path)"
farm-bench -n "$(( runs < 3 ? runs : 3 ))" --timeout 900 --vs "$py $peers/ingest_pandas.py $log $out/pandas.parquet" -- $ours
echo "== rows kept: ipi, then DuckDB"
$ipi --quiet ingest "$log" --output "$out/ipi" --method GET --path-prefix /login_success --status 200 --json \
    | $py -c 'import json,sys; print(json.load(sys.stdin)["totals"])'
$py -c "import duckdb,sys; print(duckdb.sql(\"select count(*) from '$out/duck.parquet'\").fetchall())"

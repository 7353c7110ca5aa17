#!/usr/bin/env bash
# The batch-scoring benchmark: ipi against the PyTorch peer, side by side, in one run.
#
#   bench/score.sh LOG [ROUNDS]
#
# LOG is the login log that ../shared/peers/make_login_log.py writes (10,000
# users: 700 MB, about 3.1M lines). The script ingests it once into the
# events dataset (one file per UTC day), trains a model of the tutorial's
# size for both tools (num_entity_vectors 20000, vector_dim 128, one 128x128
# encoder layer, and the peer's hashed prefixes in as many rows as ipi's
# model has: scoring cost depends on the size, not on the weights), and
# writes the same (entity, ip) pairs as the headerless CSV the peer reads.
#
# Then, alternating ROUNDS times (default 3):
#   ipi    `ipi-pipeline score`: the whole events dataset, Parquet to the
#          scores dataset in Parquet (every input column plus the score
#          columns, zstd, committed by day), as one process, timed whole;
#   peer   `score_torch.py --repeat 1 --threads 2`: its `end_to_end` (CSV
#          read, hashing, prefix indexing, forward; in memory, nothing
#          written, Python start and imports not counted) and `score`
#          (the forward only).
# It prints pairs/s for each and the ratio of the medians. Quote the ratio:
# the machine is shared.
#
# Needs a release build (cargo build --release -p ipi-pipeline) and
# PEERS_PYTHON pointing at a Python with torch, scikit-learn, pyarrow and
# duckdb (see ../shared/peers/README.md). BENCH_OUT keeps the prepared data
# between runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log=$(realpath "$1"); rounds=${2:-3}
peers="$root/../shared/peers"
py=${PEERS_PYTHON:-python3}
ipi="$root/target/release/ipi-pipeline"
out=${BENCH_OUT:-$(mktemp -d)}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$out"

if [ ! -f "$out/pairs.csv" ]; then
  echo "== preparing $out (ingest, models, pairs)"
  $ipi --quiet ingest "$log" --output "$out/events" --method GET --path-prefix /login_success --status 200
  $ipi --quiet train --train "$out/events" --model "$out/model" --num-entity-vectors 20000 \
      --vector-dim 128 --epochs 1 --mini-batch-size 1000 --learning-rate 0.01 \
      --random-negative-sampling-rate 5 --shuffled-negative-sampling-rate 1 > /dev/null
  buckets=$($py -c "import json; print(json.load(open('$out/model/model.json'))['ip_encoder']['hash_buckets'])")
  $py -c "import duckdb; duckdb.sql(\"COPY (SELECT entity AS user, ip AS ip_address, timestamp FROM read_parquet('$out/events/**/*.parquet')) TO '$out/peer-train.parquet' (FORMAT parquet)\")"
  $py "$peers/ipinsights_torch.py" "$out/peer-train.parquet" --epochs 1 --batch-size 1000 \
      --vector-dim 128 --num-entity-vectors 20000 --ip-encoder-layers 1 --threads 2 \
      --ip-buckets "$buckets" \
      --max-train-rows 200000 --val-max 2000 --test-samples 2000 \
      --save "$out/peer-model.pt" > /dev/null
  $py -c "import duckdb; duckdb.sql(\"COPY (SELECT entity, ip FROM read_parquet('$out/events/**/*.parquet')) TO '$out/pairs.csv' (HEADER false)\")"
fi

for round in $(seq 1 "$rounds"); do
  echo "== round $round: ipi"
  rm -rf "$out/scores"
  start=$(date +%s%N)
  /usr/bin/time -f "ipi peak RSS %M KiB, wall %e s" \
    $ipi --quiet score --model "$out/model" --input "$out/events" --output "$out/scores" \
      --json > "$out/ipi-$round.json"
  echo $(( $(date +%s%N) - start )) > "$out/ipi-$round.ns"
  echo "== round $round: PyTorch"
  /usr/bin/time -f "torch peak RSS %M KiB, wall %e s" \
    $py "$peers/score_torch.py" "$out/peer-model.pt" "$out/pairs.csv" --repeat 1 --threads 2 \
      > "$out/torch-$round.json"
done

$py - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours, e2e, fwd = [], [], []
for r in range(1, rounds + 1):
    o = json.load(open(f"{out}/ipi-{r}.json"))
    o["seconds"] = int(open(f"{out}/ipi-{r}.ns").read()) / 1e9  # the whole process
    o["pairs_per_sec"] = o["rows"] / o["seconds"]
    t = json.load(open(f"{out}/torch-{r}.json"))
    ours.append(o["pairs_per_sec"]); e2e.append(t["end_to_end_pairs_per_s"]); fwd.append(t["score_pairs_per_s"])
    print(f"round {r}: ipi {o['rows']:,} pairs in {o['seconds']:.2f} s = {o['pairs_per_sec']:,.0f} pairs/s; "
          f"peer end-to-end {t['end_to_end_pairs_per_s']:,} pairs/s, forward only {t['score_pairs_per_s']:,}")
m, pe, pf = statistics.median(ours), statistics.median(e2e), statistics.median(fwd)
print(f"median pairs/s: ipi {m:,.0f}; peer end-to-end {pe:,.0f} (ratio {m / pe:.2f}), "
      f"peer forward only {pf:,.0f} (ratio {m / pf:.2f})")
PY

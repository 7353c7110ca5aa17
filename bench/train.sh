#!/usr/bin/env bash
# The training benchmark: ipi against the PyTorch peer, side by side, in one run.
#
#   bench/train.sh LOG [EPOCHS] [ROUNDS]
#
# LOG is the login log that ../shared/peers/make_login_log.py writes (10,000
# users: 700 MB, about 3.1M lines). The script ingests it, splits it out of
# time as the SageMaker notebook does (train before 2018-11-11, validation
# until 2018-11-13), then trains both models with the tutorial's
# hyperparameters (num_entity_vectors 20000, vector_dim 128, mini_batch_size
# 1000, learning_rate 0.01, random_negative_sampling_rate 5,
# shuffled_negative_sampling_rate 1, one 128x128 encoder layer), alternating
# ipi and PyTorch ROUNDS times (default 1), EPOCHS epochs each (default 5).
# It prints each epoch's pairs/s, loss and validation AUC for both, and
# the ratio of their median pairs/s. Quote the ratio: the machine is shared.
#
# Needs a release build (cargo build --release -p ipi-pipeline) and
# PEERS_PYTHON pointing at a Python with torch, scikit-learn, pyarrow and
# duckdb (see ../shared/peers/README.md). OMP_WAIT_POLICY=PASSIVE is set for
# PyTorch, which otherwise slows down 3-10x when anything else runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log=$(realpath "$1"); epochs=${2:-5}; rounds=${3:-1}
peers="$root/../shared/peers"
py=${PEERS_PYTHON:-python3}
ipi="$root/target/release/ipi-pipeline"
out=${BENCH_OUT:-$(mktemp -d)}
export OMP_WAIT_POLICY=PASSIVE

if [ ! -d "$out/split/train" ]; then
  $ipi --quiet ingest "$log" --output "$out/events" --method GET --path-prefix /login_success --status 200
  $ipi --quiet split --input "$out/events" --output "$out/split" \
      --train-end 2018-11-11T00:00:00Z --validation-end 2018-11-13T00:00:00Z
  $py -c "import duckdb; duckdb.sql(\"COPY (SELECT entity AS user, ip AS ip_address, timestamp FROM read_parquet('$out/events/**/*.parquet')) TO '$out/peer.parquet' (FORMAT parquet)\")"
fi

hp="--num-entity-vectors 20000 --vector-dim 128 --epochs $epochs --mini-batch-size 1000 \
    --learning-rate 0.01 --weight-decay 0.00001 --random-negative-sampling-rate 5 \
    --shuffled-negative-sampling-rate 1 --num-ip-encoder-layers 1"
for round in $(seq 1 "$rounds"); do
  echo "== round $round: ipi"
  /usr/bin/time -f "ipi peak RSS %M KiB, wall %e s" \
    $ipi --quiet train --train "$out/split/train" --validation "$out/split/validation" \
      --test "$out/split/test" --model "$out/model" $hp --seed "$round" --json > "$out/ipi-$round.json"
  echo "== round $round: PyTorch"
  /usr/bin/time -f "torch peak RSS %M KiB, wall %e s" \
    $py "$peers/ipinsights_torch.py" "$out/peer.parquet" --epochs "$epochs" --batch-size 1000 --lr 0.01 \
      --vector-dim 128 --num-entity-vectors 20000 --random-neg-rate 5 --shuffled-neg-rate 1 \
      --weight-decay 1e-5 --ip-encoder-layers 1 --threads 2 --seed "$round" \
      --json-out "$out/torch-$round.jsonl" > /dev/null
done

$py - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ours, theirs = [], []
for r in range(1, rounds + 1):
    card = json.load(open(f"{out}/ipi-{r}.json"))
    for e in card["training"]["epochs"]:
        ours.append(e["throughput_pairs_per_sec"])
        print(f"ipi   r{r} epoch {e['epoch']}: {e['throughput_pairs_per_sec']:>9.0f} pairs/s  "
              f"loss {e['binary_classification_cross_entropy']:.4f}  "
              f"validation:discriminator_auc {e.get('validation:discriminator_auc', float('nan')):.4f}")
    print(f"ipi   r{r} test:random_ip_auc {card['training'].get('test:random_ip_auc', float('nan')):.4f}")
    for line in open(f"{out}/torch-{r}.jsonl"):
        e = json.loads(line)
        if e.get("event") != "epoch":
            continue
        theirs.append(e["pairs_per_s"])
        print(f"torch r{r} epoch {e['epoch']}: {e['pairs_per_s']:>9.0f} pairs/s  loss {e['train_loss']:.4f}  "
              f"discriminator_auc {e['discriminator_auc']:.4f}  test_auc_uniform {e['test_auc_uniform']:.4f}")
mo, mt = statistics.median(ours), statistics.median(theirs)
print(f"median pairs/s: ipi {mo:.0f}, PyTorch {mt:.0f}, ratio ipi/PyTorch {mo / mt:.2f}")
PY

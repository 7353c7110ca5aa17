#!/usr/bin/env bash
# Run every test of ipi, against a real S3-compatible server.
#
#   tests/run.sh              # everything: fmt, clippy, tests, pipeline checks
#   tests/run.sh -- FILTER    # only cargo tests matching FILTER
#
# What it does, in order:
#   1. installs the Python tools of tests/requirements.txt into .tools/venv
#      (SeaweedFS's `weed`, pyarrow, duckdb) unless they are already there;
#      and Debian's chromium (headless, for the HTML report test) if missing;
#   2. starts SeaweedFS (`weed mini`) on free loopback ports with a fresh
#      random access key, and stops it on exit, also on failure;
#   3. runs cargo fmt --check, cargo clippy -D warnings, cargo test
#      --workspace with the S3 tests required (not skipped), and
#      `ipi-pipeline validate` and `ipi-pipeline test` (the files' own
#      [[tests]]) on every file in pipelines/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="${IPI_TOOLS:-$root/.tools}"
venv="$tools/venv"
filter=()
if [[ "${1:-}" == "--" ]]; then shift; filter=("$@"); fi

say() { printf '\n==> %s\n' "$*" >&2; }

# 1. Python tools --------------------------------------------------------
stamp="$venv/.requirements.$(sha256sum tests/requirements.txt | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    say "Installing test tools into $venv (tests/requirements.txt)"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    touch "$stamp"
fi
export IPI_TEST_PYTHON="$venv/bin/python"

# 1b. Headless Chromium, for the HTML report test (Debian's package). ------
if [[ ! -x /usr/bin/chromium ]]; then
    say "Installing chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export IPI_TEST_CHROMIUM_REQUIRED=1

# 2. SeaweedFS ------------------------------------------------------------
s3dir="$(mktemp -d "${TMPDIR:-/tmp}/ipi-s3.XXXXXX")"
weed_pid=""
cleanup() {
    if [[ -n "$weed_pid" ]] && kill -0 "$weed_pid" 2>/dev/null; then
        kill -TERM "$weed_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$weed_pid" 2>/dev/null || true
    fi
    rm -rf "$s3dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports for the S3 gateway and SeaweedFS's internal servers;
# each gRPC port is its HTTP port + 10000, so both must be free.
read -r s3_port master_port volume_port filer_port < <("$venv/bin/python" - <<'PY'
import random, socket
def free(p):
    for port in (p, p + 10000):
        with socket.socket() as s:
            try: s.bind(("127.0.0.1", port))
            except OSError: return False
    return True
ports = []
while len(ports) < 4:
    p = random.randint(20000, 40000)
    if p not in ports and free(p): ports.append(p)
print(*ports)
PY
)
access_key="ipitest$RANDOM$RANDOM"
secret_key="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat > "$s3dir/s3.json" <<JSON
{"identities":[{"name":"ipi-test","credentials":[{"accessKey":"$access_key","secretKey":"$secret_key"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
say "Starting SeaweedFS S3 on 127.0.0.1:$s3_port"
"$venv/bin/weed" mini -dir="$s3dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$s3_port" -master.port="$master_port" -volume.port="$volume_port" \
    -filer.port="$filer_port" -s3.config="$s3dir/s3.json" -bucket=ipi-test \
    -webdav=false -admin.ui=false >"$s3dir/weed.log" 2>&1 &
weed_pid=$!
for i in $(seq 300); do
    if curl -sf "http://127.0.0.1:$s3_port/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$weed_pid" 2>/dev/null || [[ $i == 300 ]]; then
        echo "SeaweedFS did not start; its log:" >&2; tail -50 "$s3dir/weed.log" >&2; exit 1
    fi
    sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
export AWS_ACCESS_KEY_ID="$access_key"
export AWS_SECRET_ACCESS_KEY="$secret_key"
export AWS_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export IPI_TEST_S3_URL="s3://ipi-test/tests"
export IPI_TEST_S3_REQUIRED=1
# Progress bars are for people at a terminal, not for test logs.
export IPI_NO_PROGRESS=1

# 3. The checks -------------------------------------------------------------
if [[ ${#filter[@]} -eq 0 ]]; then
    say "cargo fmt --check"
    cargo fmt --all --check
    say "cargo clippy"
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi
say "cargo test"
cargo test --workspace --locked "${filter[@]}"
if [[ ${#filter[@]} -eq 0 ]]; then
    say "ipi-pipeline validate pipelines/*.toml"
    cargo run --quiet --locked --bin ipi-pipeline -- validate pipelines/*.toml
    say "ipi-pipeline test pipelines/*.toml"
    cargo run --quiet --locked --bin ipi-pipeline -- --quiet test pipelines/*.toml
fi
say "All tests passed."

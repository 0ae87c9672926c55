#!/usr/bin/env bash
# Side-by-side throughput: autoenc's criterion bench and the reference scripts in ../shared/bench
# (ONNX Runtime, numpy, PyTorch) on the same network 64 -> 32 -> 8 -> 32 -> 64, in one run, both pinned
# to one core. OPENBLAS_* variables are cleared for both so neither gets a hand-tuned kernel; the
# `matmul` group shows what the system OpenBLAS would have given us.
#
#   benches/compare.sh [SHARED_BENCH_DIR] [--with-torch]
# Torch is 6 GB with its CUDA wheels, so it is installed only with --with-torch.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shared="${1:-../shared/bench}"
with_torch="${2:-}"
.ci/setup .ci/requirements-bench.txt
venv="${AUTOENC_VENV:-$HOME/.cache/autoenc/venv}"
if [ "$with_torch" = "--with-torch" ]; then "$venv/bin/pip" install -q torch; fi
out="${BENCH_OUT:-target/compare}"
mkdir -p "$out"
core="${BENCH_CORE:-0}"
clean_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1)

echo "== autoenc (criterion, core $core) =="
"${clean_env[@]}" taskset -c "$core" cargo bench --bench throughput -- --warm-up-time 2 --measurement-time 5 2>&1 \
  | tee "$out/autoenc.txt" | grep -E "^[a-z_0-9/]+ +time|thrpt:" | grep -v "%"
echo "== references, batch 8192 (core $core) =="
"${clean_env[@]}" taskset -c "$core" "$venv/bin/python" "$shared/ae_throughput.py" "$out/ref8192" --thread-list 1 2>&1 \
  | grep -E "^\| |threads=" | tee "$out/ref8192.txt"
echo "== references, batch 256 (core $core) =="
"${clean_env[@]}" taskset -c "$core" "$venv/bin/python" "$shared/ae_throughput.py" "$out/ref256" --thread-list 1 \
  --batch 256 --rows 262144 --train-rows 20000 2>&1 | grep -E "^\| |threads=" | tee "$out/ref256.txt"
echo "== autoenc matmul with OPENBLAS_CORETYPE=SkylakeX, for reference =="
OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX taskset -c "$core" cargo bench --bench throughput -- --warm-up-time 1 --measurement-time 3 matmul 2>&1 \
  | grep -E "^[a-z_0-9/]+ +time|thrpt:" | grep -v "%"

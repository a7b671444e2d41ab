"""The GPU path: pretraining, fine-tuning, prediction and DDP over NCCL on a CUDA device.

Skipped where there is no CUDA device (every CPU machine); `benchmarks/gpu_check.sh` runs
these on a GPU machine, with the GPU benchmarks. Each test shows the work ran on the GPU
(memory was allocated there) and gives what the CPU gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import test_pretrain
import torch

corpus = test_pretrain.corpus  # the fixture: the first 1,500 unlabeled IMDB reviews

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TINY = dict(size="tiny", vocab_size=4000, lowercase=True, seq_len=64, batch_size=16, lr=1e-3,
            log_every=5, eval_batches=4, valid_fraction=0.05)


def used_the_gpu() -> bool:
    return torch.cuda.max_memory_allocated() > 0


def test_pretraining_on_the_gpu_learns_in_bf16(corpus: Path, tmp_path: Path) -> None:
    from warmstart.pretraining import pretrain

    torch.cuda.reset_peak_memory_stats()
    history = pretrain(corpus, out=tmp_path / "enc", progress=False, cache_dir=str(tmp_path),
                       objective="clm", max_steps=60, eval_every=60, device="cuda",
                       precision="bf16", **TINY).training.history
    before, after = (r for r in history if "valid_loss" in r)
    assert before["valid_loss"] - after["valid_loss"] > 1.5, (before, after)
    assert used_the_gpu()


def test_finetuning_and_prediction_on_the_gpu(shared_data: Path, tmp_path: Path) -> None:
    from conftest import read_agnews, tfidf_lr_accuracy

    from warmstart.transfer.classifier import Classifier, evaluate
    from warmstart.transfer.finetune import finetune

    train, test = read_agnews(shared_data)
    train, test = train.sample_per_class(300, seed=0), test.sample_per_class(200, seed=0)
    torch.cuda.reset_peak_memory_stats()
    result = finetune(train, out=tmp_path / "clf", progress=False, epochs=10, seed=0,
                      buckets=50_000, device="cuda", precision="bf16")
    assert used_the_gpu()
    accuracy, baseline = evaluate(result.classifier, test)["accuracy"], tfidf_lr_accuracy(train, test)
    assert accuracy > baseline - 0.04, (accuracy, baseline)
    # The saved classifier predicts the same on the GPU as on the CPU (fp32 both).
    on_cpu = Classifier.load(tmp_path / "clf", precision="fp32")
    on_gpu = Classifier.load(tmp_path / "clf", precision="fp32")
    on_gpu.model.to("cuda")
    texts = test.texts[:200]
    np.testing.assert_allclose(on_gpu.predict_proba(texts), on_cpu.predict_proba(texts), atol=1e-4)


def test_ddp_over_nccl_in_one_process_matches_plain_training(corpus: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    options = [str(corpus), "--quiet", "--cache-dir", str(tmp_path), "--max-steps", "6",
               "--dropout", "0", "--precision", "fp32", "--device", "cuda"]
    for k, v in TINY.items():
        options += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([sys.executable, "-m", "warmstart", "pretrain", *options, "--out", str(single)],
                   check=True, timeout=600)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node", "1", "-m", "warmstart", "pretrain", *options,
                           "--out", str(ddp)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = load_file(str(single / "model.safetensors")), load_file(str(ddp / "model.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    meta = json.loads((ddp / "warmstart.json").read_text())
    assert meta["config"]["train"]["device"] == "cuda"

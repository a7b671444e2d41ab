"""Does pretraining on the IMDB unlabeled reviews pay, once fine-tuned with 1,000 labels?

    python benchmarks/pretraining_pays.py --out runs/bench-pays                # everything
    python benchmarks/pretraining_pays.py --out runs/bench-pays --only vectors

Two questions, each against the same model from random initialisation:

* **Transformers** (``--only transformers``): a ``tiny`` encoder (2 layers, hidden 128) is
  pretrained from scratch by warmstart on ``en/imdb/unsup.txt.gz`` (50,000 reviews) for a
  fixed wall-clock budget (``--minutes``, on this CPU), once with MLM and once with ELECTRA
  (equal time; ELECTRA's generator half the model's width), with its own lowercased WordPiece
  vocabulary of 16,000 pieces, sequences of 128, batch 32, lr 1e-3, no dropout. Each is then
  fine-tuned on IMDB with 1,000 labels (500 per class, drawn with seeds ``--seeds``), and so
  is the same architecture with random weights (``random_init=True``), with the same
  fine-tuning settings (below).
* **Word vectors** (``--only vectors``): skip-gram vectors (dim 100, 5 epochs) trained by
  warmstart on the same unlabeled reviews go into the word-vector classifier (fastText-style:
  the mean of trained word and word-bigram embeddings) as its static channel (the default
  ``channels="static"``: the vectors' average over a text, frozen and standardised, beside the
  trained embeddings); the same classifier with random vectors in that channel is the
  baseline, and the classifier without any vectors is shown too.

Test: a fixed subsample of 5,000 of the 25,000 IMDB test reviews (stratified, seed 0), the
same as ``finetune_vs_anchors.py``. ``<br />`` tags are replaced by spaces in the labeled
reviews and in the transformers' pretraining corpus (a copy, ``--out/unsup-no-br.txt``); the
vectors read the raw reviews, whose tags their word tokenizer reads as spaces. The vectors'
``pretrain.seconds`` is the time of training the vectors alone (None when reused); the
fine-tuning seconds are per seed, beside each accuracy. Pretrained artifacts are kept under ``--out`` and reused if
made (or begun) on the same commit, CPU and settings (their stamp is
``--out/NAME.provenance.json``); otherwise they are moved aside to ``NAME.stale-COMMIT`` and made
again (``--reuse-any`` keeps them and says so). Results go to ``--out/results.json``, each with
its provenance (commit, settings, CPU, versions, date); the entries this run did not make are
named, with where they were made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from provenance import describe, keep_folder, stamp, stamp_folder, where, write_json

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = dict(size="tiny", vocab_size=16000, lowercase=True, seq_len=128, batch_size=32,
                lr=1e-3, dropout=0.0, eval_every=500, checkpoint_every=500)
# ELECTRA's generator at a quarter of 128 (32 wide) stayed on the unigram plateau for the
# whole 20-minute run; half the width (64, ELECTRA-Small's generator size) learns faster.
OBJECTIVE = {"mlm": {}, "electra": {"generator_scale": 0.5}}
FINETUNE_ENCODER = dict(max_len=256, truncation="head+tail", lr=5e-4)
FINETUNE_WORDS: dict[str, Any] = {}
VECTORS = dict(model="skipgram", dim=100, epochs=5, lowercase=True)


def clean(ds: Any) -> Any:
    """IMDB reviews carry ``<br />`` tags; the other IMDB benchmarks drop them too."""
    import dataclasses

    return dataclasses.replace(ds, texts=[t.replace("<br />", " ") for t in ds.texts])


def imdb(data: Path) -> tuple[Any, Any]:
    from warmstart.labeled import LabeledDataset

    train = clean(LabeledDataset.read(data / "en" / "imdb" / "train.tsv.gz"))
    test = clean(LabeledDataset.read(data / "en" / "imdb" / "test.tsv.gz", labels=train.labels))
    return train, test.sample_per_class(2500, seed=0)


def clean_corpus(src: Path, dst: Path) -> Path:
    """``src`` (gzipped, one review a line) without ``<br />`` tags, written once to ``dst``.

    WordPiece would read a tag as the pieces ``<``, ``br``, ``/``, ``>`` and spend sequence
    positions on them; the word tokenizer of the vectors already reads a tag as a space.
    """
    import gzip

    if not dst.exists():
        tmp = dst.with_name(dst.name + ".tmp")
        with gzip.open(src, "rt", encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as g:
            for line in f:
                g.write(line.replace("<br />", " "))
        tmp.replace(dst)
    return dst


def score(init: str, train: Any, test: Any, seeds: list[int], *, random_init: bool,
          options: dict[str, Any]) -> dict[str, Any]:
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    accs, secs = [], []
    for seed in seeds:
        labeled = train.sample_per_class(500, seed=seed)
        start = time.perf_counter()
        clf = finetune(labeled, init=init, random_init=random_init, seed=seed, progress=False,
                       **options).classifier
        secs.append(time.perf_counter() - start)
        accs.append(100 * evaluate(clf, test)["accuracy"])
        print(f"   {'random' if random_init else 'pretrained'} seed {seed}: {accs[-1]:.1f} "
              f"({secs[-1]:.0f} s)", flush=True)
    return {"per_seed": accs, "mean": statistics.mean(accs), "seconds": secs}


def compare(name: str, init: str, train: Any, test: Any, seeds: list[int],
            options: dict[str, Any]) -> dict[str, Any]:
    print(f"== {name}", flush=True)
    pre = score(init, train, test, seeds, random_init=False, options=options)
    rnd = score(init, train, test, seeds, random_init=True, options=options)
    gain = pre["mean"] - rnd["mean"]
    wins = sum(a > b for a, b in zip(pre["per_seed"], rnd["per_seed"], strict=True))
    print(f"   {name}: pretrained {pre['mean']:.1f} vs random {rnd['mean']:.1f} "
          f"({gain:+.1f}; better on {wins}/{len(seeds)} seeds)", flush=True)
    return {"pretrained": pre, "random": rnd, "gain": gain, "wins": wins, "options": options}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/bench-pays")
    ap.add_argument("--only", choices=["vectors", "transformers"])
    ap.add_argument("--minutes", type=float, default=20.0, help="pretraining budget per objective")
    ap.add_argument("--objectives", nargs="+", choices=list(OBJECTIVE), default=list(OBJECTIVE),
                    help="which pretraining objectives to run (--only transformers)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep pretrained models made on other commits, CPUs or settings (says which)")
    args = ap.parse_args()
    # What can change an entry besides the code (the constants above are code).
    settings = {"data": args.data, "seeds": args.seeds}
    print(describe(stamp({**settings, "minutes": args.minutes})), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    unsup = data / "en" / "imdb" / "unsup.txt.gz"
    train, test = imdb(data)
    results_file = out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    made_now: set[str] = set()

    if args.only in (None, "vectors"):
        from warmstart import train_vectors

        # The raw reviews: the vectors' word tokenizer reads a <br /> tag as a space.
        folder = out / "vectors"
        pretrain_seconds = None  # None: vectors an earlier run made, reused
        if not keep_folder(folder, {"corpus": str(unsup)}, reuse_any=args.reuse_any):
            stamp_folder(folder, {"corpus": str(unsup)})
        if not (folder / "warmstart.json").exists():
            start = time.perf_counter()
            train_vectors(str(unsup), out=folder, **VECTORS)
            pretrain_seconds = round(time.perf_counter() - start)
        results["vectors"] = compare("word vectors", str(folder), train, test, args.seeds,
                                     FINETUNE_WORDS)
        print("== the fastText-style classifier without any vectors (its own vocabulary)")
        results["vectors"]["no_vectors"] = score("", train, test, args.seeds,
                                                 random_init=False, options=FINETUNE_WORDS)
        # Pretraining and fine-tuning apart: the fine-tuning seconds are per seed, in
        # pretrained/random/no_vectors "seconds".
        results["vectors"]["pretrain"] = {**VECTORS, "seconds": pretrain_seconds}
        results["vectors"].update(stamp(settings))
        made_now.add("vectors")
        write_json(results_file, results)

    if args.only in (None, "transformers"):
        from warmstart.pretraining import pretrain

        corpus = clean_corpus(unsup, out / "unsup-no-br.txt")
        for objective in args.objectives:
            folder = out / objective
            made = {"corpus": str(corpus), "minutes": args.minutes, "objective": objective}
            if not keep_folder(folder, made, reuse_any=args.reuse_any):
                stamp_folder(folder, made, "tokenizers")
            if not (folder / "warmstart.json").exists():
                print(f"== pretraining {objective} for {args.minutes:g} minutes", flush=True)
                pretrain(str(corpus), out=folder, objective=objective,
                         time_budget=f"{args.minutes:g}m", **PRETRAIN, **OBJECTIVE[objective])
            records = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines()]
            last = [r for r in records if "loss" in r][-1]
            valid = [r for r in records if "valid_loss" in r]
            results[objective] = compare(objective, str(folder), train, test, args.seeds,
                                         FINETUNE_ENCODER)
            results[objective]["pretrain"] = {**PRETRAIN, **OBJECTIVE[objective],
                                              "minutes": args.minutes,
                                              "steps": last["step"], "tokens": last["tokens"],
                                              "valid": valid[-1] if valid else None}
            results[objective].update(stamp({**settings, "minutes": args.minutes}))
            made_now.add(objective)
            write_json(results_file, results)
    print(json.dumps(results, indent=1))
    for key in sorted(set(results) - made_now):
        print(f"NOT made by this run (kept in {results_file}): {key}, made on "
              f"{where(results[key])}", flush=True)


if __name__ == "__main__":
    main()

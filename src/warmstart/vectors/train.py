"""Train word vectors: skip-gram or CBOW with negative sampling, optionally with subwords.

    >>> from warmstart import train_vectors
    >>> kv = train_vectors("corpus.txt", out="vecs", model="skipgram", dim=100, epochs=5)  # doctest: +SKIP

The corpus is read and tokenized once (see :mod:`warmstart.vectors.vocab`); the epochs run the
compiled kernels of :mod:`warmstart.vectors.kernels` over chunks of the token-id stream on
``workers`` threads that update the shared matrices without locks, as word2vec.c and gensim do.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from warmstart.artifact import CHECKPOINT_DIR, METRICS_FILE, append_metrics, check_out, check_room
from warmstart.config import check_settings, opt, option_name
from warmstart.errors import RunInterrupted, WarmstartError
from warmstart.seeds import mix_seed
from warmstart.stopping import StopOnSignal
from warmstart.vectors import kernels
from warmstart.vectors.checkpoint import (
    EpochReport,
    RunState,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from warmstart.vectors.keyed import KeyedVectors
from warmstart.vectors.subwords import ngram_buckets
from warmstart.vectors.vocab import Vocab, build_vocab, read_chunks, remap_stream, scan_corpus

MODELS = ("skipgram", "cbow")
CHUNK_TOKENS = 1 << 16
MAX_DOC_TOKENS = 10_000  # longer documents are cut into pieces, as in gensim


@dataclass
class VectorsConfig:
    """Settings of a word-vector run; the CLI options carry the same names."""

    model: str = opt("skipgram", "skipgram (predict context words) or cbow (predict a word from its context)")
    dim: int = opt(100, "vector size", at_least=1, at_most=100_000)
    window: int = opt(5, "largest distance between a word and a context word (drawn per word, as word2vec)", at_least=1)
    negative: int = opt(5, "negative samples per prediction", at_least=1)
    sample: float = opt(1e-3, "subsampling threshold for frequent words (0 = off)", at_least=0)
    min_count: int = opt(5, "ignore words seen fewer times", at_least=1)
    max_vocab: int | None = opt(None, "keep at most this many of the most frequent words", at_least=1)
    epochs: int = opt(5, "passes over the corpus", at_least=1)
    alpha: float = opt(0.025, "initial learning rate, decayed linearly to min_alpha", above=0, at_most=10)
    min_alpha: float = opt(0.0001, "final learning rate", at_least=0, at_most=10)
    subwords: bool = opt(False, "fastText-style character n-grams: vectors for unseen words")
    min_n: int = opt(3, "shortest character n-gram (with --subwords)", at_least=1)
    max_n: int = opt(6, "longest character n-gram (with --subwords)", at_least=1)
    bucket: int = opt(2_000_000, "hash buckets for n-grams (with --subwords)", at_least=1,
                 at_most=1 << 30)
    workers: int = opt(0, "training threads (0 = all cores); 1 gives bit-for-bit repeatable runs", at_least=0)
    seed: int = opt(1, "random seed", at_least=0)
    tokenizer: str = opt("words", "words | whitespace | tagged | jieba | chars")
    lowercase: bool = opt(False, "lowercase text before tokenizing")

    def validate(self) -> VectorsConfig:
        """Raise :class:`WarmstartError` naming the option for any value out of range."""

        def bad(option: str, why: str) -> None:
            raise WarmstartError(f"{option_name(option)}: {why}")

        if self.model not in MODELS:
            bad("model", f"must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("dim", "window", "epochs", "bucket"):
            if getattr(self, name) < 1:
                bad(name, f"must be at least 1, got {getattr(self, name)}")
        if self.negative < 1:
            bad("negative", f"must be at least 1 (negative sampling), got {self.negative}")
        if self.min_count < 1:
            bad("min_count", f"must be at least 1, got {self.min_count}")
        if self.max_vocab is not None and self.max_vocab < 1:
            bad("max_vocab", f"must be at least 1, got {self.max_vocab}")
        if self.sample < 0:
            bad("sample", f"must be 0 (off) or positive, got {self.sample}")
        if not 0 < self.alpha or self.min_alpha < 0 or self.min_alpha > self.alpha:
            bad("alpha", f"need 0 <= min_alpha <= alpha and alpha > 0, got {self.alpha}, {self.min_alpha}")
        if self.subwords and not 1 <= self.min_n <= self.max_n:
            bad("min_n", f"need 1 <= min_n <= max_n, got {self.min_n}, {self.max_n}")
        if self.workers < 0:
            bad("workers", f"must be 0 (all cores) or more, got {self.workers}")
        return self

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VectorsConfig:
        values = dict(values)
        check_settings(cls, values, where="word-vector settings")
        return cls(**values).validate()


def subsample_ints(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's keep-probability of each word, scaled to 2**32 - 1 (gensim's formula)."""
    if sample <= 0:
        return np.full(len(counts), 2**32 - 1, dtype=np.uint64)
    total = float(counts.sum())
    threshold = sample * total if sample < 1.0 else sample
    c = counts.astype(np.float64)
    prob = np.minimum((np.sqrt(c / threshold) + 1.0) * (threshold / c), 1.0)
    return (prob * (2**32 - 1)).astype(np.uint64)


def noise_table(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """The unigram^0.75 noise distribution that negatives are drawn from, as an alias table."""
    return kernels.build_noise_table(counts.astype(np.float64) ** exponent)


def _chunk_seed(seed: int, epoch: int, chunk: int) -> int:
    # Every chunk has its own stream of random numbers, so a one-worker run is reproducible
    # whatever the chunking order, and workers never share a generator. The kernels' generator
    # is word2vec's 48-bit one, which must not start at 0.
    return mix_seed(seed, epoch, chunk) & (2**48 - 1) or 1


def _uniform(rng: np.random.Generator, shape: tuple[int, int], bound: float) -> np.ndarray:
    """U(-bound, bound) float32, filled in place: no temporaries the size of the matrix."""
    a = np.empty(shape, dtype=np.float32)
    rng.random(out=a, dtype=np.float32)
    a -= 0.5
    a *= 2 * bound
    return a


def make_model(cfg: VectorsConfig, vocab: Vocab) -> kernels.Model:
    """Initialise the matrices of a run, as word2vec.c / fastText do, seeded by ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    n, d = len(vocab), cfg.dim
    common = dict(
        syn1neg=np.zeros((n, d), dtype=np.float32),
        sample_int=subsample_ints(vocab.counts, cfg.sample),
        noise=noise_table(vocab.counts),
        window=cfg.window, negative=cfg.negative, max_len=MAX_DOC_TOKENS, cbow=cfg.model == "cbow",
    )
    if not cfg.subwords:  # word2vec.c and gensim: U(-0.5/dim, 0.5/dim)
        return kernels.Model(syn0=_uniform(rng, (n, d), 0.5 / d), **common)  # type: ignore[arg-type]
    ng_off, ng_ids = ngram_buckets(vocab.words, cfg.min_n, cfg.max_n, cfg.bucket)
    return kernels.Model(  # fastText: U(-1/dim, 1/dim)
        syn0=_uniform(rng, (n, d), 1.0 / d), ngrams=_uniform(rng, (cfg.bucket, d), 1.0 / d),
        ng_off=ng_off, ng_ids=ng_ids, **common,  # type: ignore[arg-type]
    )


def _as_texts(corpus: Any) -> Iterable[str]:
    if isinstance(corpus, (str, os.PathLike)) or (
        isinstance(corpus, Sequence) and corpus and all(isinstance(p, (str, os.PathLike)) for p in corpus)
        and all(Path(p).exists() or any(ch in str(p) for ch in "*?[") for p in corpus)
    ):
        from warmstart.corpus import Corpus

        return Corpus(corpus)
    return corpus


def train_vectors(
    corpus: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    config: VectorsConfig | None = None,
    progress: bool = True,
    **options: Any,
) -> KeyedVectors:
    """Train word vectors on ``corpus`` and return them (and save an artifact to ``out``).

    ``corpus`` is a :class:`~warmstart.corpus.Corpus`, a path or list of paths, or any iterable
    of document strings (read once). ``options`` are :class:`VectorsConfig` fields, e.g.
    ``model="cbow", dim=300, subwords=True``.

    With ``out``, the run checkpoints into ``out/checkpoint/`` after every epoch and when it is
    stopped by SIGINT/SIGTERM (then it raises :class:`~warmstart.errors.RunInterrupted`);
    calling it again with the same settings and data continues where it stopped, exactly.
    """
    cfg = VectorsConfig.from_dict({**(asdict(config) if config else {}), **options})
    from warmstart.tokenize import make_tokenizer

    tokenizer = make_tokenizer(cfg.tokenizer, lowercase=cfg.lowercase)
    texts = _as_texts(corpus)
    data = getattr(texts, "describe", lambda: None)()
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_out(out_dir)  # before the scan, not after hours of training
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warmstart-vectors-") as work:
        scan = scan_corpus(texts, tokenizer.tokenize, work, progress=progress)
        if scan.n_tokens == 0:
            raise WarmstartError("the corpus has no tokens: nothing to train on")
        vocab = build_vocab(scan, min_count=cfg.min_count, max_vocab=cfg.max_vocab)
        stream = Path(work) / "tokens.i32"
        n_stream = remap_stream(scan, vocab, stream)
        os.unlink(scan.stream_path)
        scan.words.clear()  # every word ever seen: not needed past this point
        model = make_model(cfg, vocab)
        state, save = RunState(), None
        if out_dir is not None:
            n_floats = sum(a.size for a in (model.syn0, model.syn1neg, model.ngrams) if a is not None)
            # the arrays in the checkpoint and twice in the artifact (float32 and word2vec
            # files), and the vocabulary
            check_room(out_dir, 12 * n_floats + 32 * len(vocab), what="the vectors and their checkpoint")
            fp = fingerprint(asdict(cfg), data, vocab.words, vocab.counts, n_stream)
            arrays = {"syn0": model.syn0, "syn1neg": model.syn1neg, "ngrams": model.ngrams}
            state = load_checkpoint(out_dir, arrays, fp) or state
            if state.done and progress:
                tqdm.write(f"resuming from {out_dir / CHECKPOINT_DIR}: epoch {state.epoch + 1}, "
                           f"{state.done / (n_stream * cfg.epochs):.0%} done")
            save = lambda st: save_checkpoint(out_dir, arrays, st, fp)  # noqa: E731
        reports = _train_epochs(model, cfg, stream, n_stream, state, progress=progress, save=save)
    kv = KeyedVectors(
        vocab.words,
        model.vectors(),
        counts=vocab.counts,
        ngram_vectors=model.ngrams,
        min_n=cfg.min_n if cfg.subwords else 0,
        max_n=cfg.max_n if cfg.subwords else 0,
    )
    summary: dict[str, Any] = {
        "vocab_size": len(vocab),
        "corpus_docs": scan.n_docs,
        "corpus_tokens": scan.n_tokens,
        "train_seconds": sum(r.seconds for r in reports),
        "words_per_second": scan.n_tokens * len(reports) / max(sum(r.seconds for r in reports), 1e-9),
        "total_seconds": time.perf_counter() - started,
        "final_loss": reports[-1].loss,
    }
    diverged = diverged_words(kv)
    if diverged:
        summary["diverged_words"] = diverged[:20]
        warnings.warn(f"{len(diverged)} word vector(s) diverged in training (norm far above the "
                      f"others': {', '.join(map(repr, diverged[:5]))}); their neighbours and any "
                      "average over them are garbage: train again (another --seed, or fewer "
                      "--epochs)", stacklevel=2)
    kv.training_summary = summary  # type: ignore[attr-defined]
    kv.epoch_reports = reports  # type: ignore[attr-defined]
    if out_dir is not None:
        save_run(kv, out_dir, cfg, reports, summary, data=data)
    return kv


def diverged_words(kv: KeyedVectors, factor: float = 1000.0) -> list[str]:
    """Words whose vector is not finite or whose norm is over ``factor`` times the median
    norm: updates that diverged (seen once, on a word that comes in long runs, ``~~~~``)."""
    norms = kv.norms
    finite = np.isfinite(norms)
    if not finite.any():
        return list(kv.words)
    bad = ~finite | (norms > factor * max(float(np.median(norms[finite])), 1e-12))
    order = np.argsort(-np.where(finite, norms, np.inf))
    return [kv.words[i] for i in order.tolist() if bad[i]]


def save_run(
    kv: KeyedVectors,
    out: str | os.PathLike[str],
    cfg: VectorsConfig,
    reports: list[EpochReport],
    summary: dict[str, Any],
    *,
    data: dict[str, Any] | None,
) -> None:
    """Write the vectors artifact with its metrics log (this also removes the checkpoint)."""
    from warmstart.artifact import building

    with building(out) as folder:
        kv.save_into(folder, config=asdict(cfg), data=data)
        append_metrics(folder / METRICS_FILE,
                       [*({**asdict(r), "words_per_second": r.words_per_second} for r in reports),
                        {"summary": summary}])


def _train_epochs(model: kernels.Model, cfg: VectorsConfig, stream: Path, n_stream: int,
                  state: RunState, *, progress: bool,
                  save: Callable[[RunState], Any] | None = None) -> list[EpochReport]:
    total = n_stream * cfg.epochs
    bar = tqdm(total=total, initial=state.done, unit="w", unit_scale=True, desc="train",
               disable=not progress, mininterval=0.5, smoothing=0.05)
    workers = cfg.n_workers
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    alpha = lambda pos: cfg.alpha - (cfg.alpha - cfg.min_alpha) * pos / total  # noqa: E731
    with StopOnSignal(active=save is not None) as stop:
        try:
            Pending = deque[tuple[Future[tuple[float, int, int]], int, int]]

            def finish(pending: Pending) -> None:
                fut, n_ids, n_words = pending.popleft()
                loss, preds, eff = fut.result()
                state.loss += loss
                state.predictions += preds
                state.effective_words += eff
                state.words += n_words
                state.done += n_ids
                state.chunk += 1
                bar.update(n_ids)
                if state.predictions:
                    bar.set_postfix(epoch=state.epoch + 1, loss=f"{state.loss / state.predictions:.4f}",
                                    refresh=False)

            while state.epoch < cfg.epochs:
                t0 = time.perf_counter() - state.seconds
                pending: Pending = deque()
                cursor = state.done
                for c, ids in enumerate(read_chunks(stream, CHUNK_TOKENS)):
                    if c < state.chunk + len(pending):
                        continue  # trained before an interruption
                    if stop.requested:
                        break
                    seed = _chunk_seed(cfg.seed, state.epoch, c)
                    args = (ids, alpha(cursor), alpha(cursor + len(ids)), seed)
                    cursor += len(ids)
                    n_words = int(np.count_nonzero(ids >= 0))
                    if pool is None:
                        done: Future[tuple[float, int, int]] = Future()
                        done.set_result(model.train_chunk(*args))
                        pending.append((done, len(ids), n_words))
                    else:
                        pending.append((pool.submit(model.train_chunk, *args), len(ids), n_words))
                    while len(pending) >= (2 * workers if pool else 1):
                        finish(pending)
                while pending:
                    finish(pending)
                state.seconds = time.perf_counter() - t0
                if stop.requested:
                    assert save is not None
                    where = save(state)
                    bar.close()
                    raise RunInterrupted(
                        f"stopped at {state.done / total:.0%} (epoch {state.epoch + 1}); checkpoint saved "
                        f"in {where}; run the same command again to resume"
                    )
                report = state.close_epoch()
                if not math.isfinite(report.loss):
                    raise WarmstartError("training diverged (loss is not finite); lower --alpha")
                if save is not None and state.epoch < cfg.epochs:
                    save(state)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
    return state.reports

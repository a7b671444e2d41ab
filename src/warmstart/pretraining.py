"""Transformer pretraining: a corpus in, an encoder or decoder artifact out.

    >>> from warmstart import pretrain
    >>> result = pretrain("reviews.txt.gz", out="runs/mlm", objective="mlm", size="small",
    ...                   time_budget="20m")                                # doctest: +SKIP

The corpus is tokenized once into cached memory-mapped shards (with a tokenizer given by
``tokenizer``, taken from ``init``, or trained on the corpus and cached); the objective turns
packed sequences (or whole documents, for the denoising autoencoder) into a loss; the one
training loop (:mod:`warmstart.train.loop`) does the rest. ``OUT/checkpoint/`` lets an
interrupted run continue: call again with the same settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenizers
import torch

from warmstart.artifact import (
    METRICS_FILE,
    TOKENIZER_FILE,
    append_metrics,
    building,
    check_out,
    check_room,
)
from warmstart.config import opt, split_settings
from warmstart.corpus import Corpus
from warmstart.errors import WarmstartError
from warmstart.models.io import HEADS_FILE, Pretrained, load_pretrained, save_model
from warmstart.models.transformer import SIZES, Decoder, Encoder, TransformerConfig
from warmstart.objectives import KINDS, OBJECTIVES, Objective, ObjectiveConfig, make_objective
from warmstart.objectives.base import SpecialTokens
from warmstart.sequences import DocumentSequences, PackedSequences, PretrainBatches
from warmstart.shards import build_shards
from warmstart.tokenize.subword import load_tokenizer, train_tokenizer
from warmstart.train.budget import Budget, parse_duration
from warmstart.train.distributed import Distributed
from warmstart.train.loop import TrainConfig, TrainResult, train


@dataclass
class PretrainConfig:
    """What to pretrain and on what: the objective, the model's shape, the data."""

    objective: str = opt("mlm", "mlm, clm, electra or dae")
    size: str = opt("small", "model size: " + ", ".join(SIZES) + " (not with --init)")
    init: str = opt("", "start from this encoder/decoder: ours or a Hugging Face folder")
    tokenizer: str = opt("", "tokenizer.json or a folder holding one (default: --init's, or "
                             "train one on the corpus)")
    vocab_size: int = opt(16000, "vocabulary of a tokenizer trained on the corpus", at_least=16, at_most=1 << 24)
    lowercase: bool = opt(False, "lowercase text in a tokenizer trained on the corpus")
    seq_len: int = opt(128, "tokens per training sequence")
    n_layers: int = opt(0, "layers (0: as --size says)", at_least=0)
    hidden: int = opt(0, "hidden width (0: as --size says)", at_least=0)
    n_heads: int = opt(0, "attention heads (0: as --size says)", at_least=0)
    ffn: int = opt(0, "feed-forward width (0: as --size says)", at_least=0)
    dropout: float = opt(0.1, "dropout on hidden states and attention", at_least=0, below=1)
    valid_fraction: float = opt(0.01, "share of documents held out for validation", at_least=0, below=1)
    cache_dir: str = opt("", "where tokenized shards are cached (default ~/.cache/warmstart)")

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise WarmstartError(f"--objective {self.objective}: use one of {', '.join(OBJECTIVES)}")
        if self.size not in SIZES:
            raise WarmstartError(f"--size {self.size}: use one of {', '.join(SIZES)}")
        if self.seq_len < 8:
            raise WarmstartError(f"--seq-len {self.seq_len}: must be at least 8")


SETTINGS = (PretrainConfig, ObjectiveConfig, TrainConfig)
# Settings that change how a run goes but not what it computes: a resumed run may change them.
_RUNTIME = {"threads", "device", "compile", "eval_every", "eval_batches", "checkpoint_every",
            "log_every", "cache_dir", "epochs", "max_steps", "max_tokens", "time_budget"}


def make_settings(options: dict[str, Any], *, where: str = "options") -> tuple[Any, ...]:
    """Sort keyword options into the three settings dataclasses, refusing unknown ones."""
    parts = split_settings(SETTINGS, options, where=where)
    return tuple(cls(**values) for cls, values in zip(SETTINGS, parts, strict=True))


@dataclass
class PretrainResult:
    """What a pretraining run made: the model, its tokenizer and how training went."""

    model: Encoder | Decoder
    tokenizer: tokenizers.Tokenizer
    training: TrainResult
    out: Path | None

    @property
    def summary(self) -> dict[str, Any]:
        t = self.training
        final = t.final_valid
        return {
            "out": str(self.out) if self.out else None,
            "steps": t.steps,
            "tokens": t.tokens,
            "seconds": round(t.seconds, 1),
            "tokens_per_second": round(t.tokens / max(t.seconds, 1e-9), 1),
            "stopped_by": t.stopped_by,
            **{k: v for k, v in final.items() if k.startswith("valid_")},
        }


def pretrain(
    corpus: Corpus | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
    **options: Any,
) -> PretrainResult:
    """Pretrain a transformer on ``corpus`` and save it as an artifact in ``out``.

    ``options`` are the fields of :class:`PretrainConfig` (objective, size, init, tokenizer,
    seq_len...), :class:`~warmstart.objectives.base.ObjectiveConfig` (mask_prob...) and
    :class:`~warmstart.train.loop.TrainConfig` (batch_size, lr, max_steps, time_budget...),
    the same names as the CLI's options. Re-running with the same settings continues an
    interrupted run from ``out/checkpoint``.
    """
    pcfg, ocfg, tcfg = make_settings(options)
    if not isinstance(corpus, Corpus):
        corpus = Corpus(list(corpus) if isinstance(corpus, list | tuple) else [corpus])  # type: ignore[list-item]
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_out(out_dir)
    device_type = "cuda" if tcfg.device.startswith("cuda") or (
        tcfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    dist = Distributed.from_env(device_type)

    init = load_pretrained(pcfg.init, kind=KINDS[pcfg.objective]) if pcfg.init else None
    cache = Path(pcfg.cache_dir or os.environ.get("WARMSTART_CACHE") or
                 Path.home() / ".cache" / "warmstart").expanduser()
    tokenizer = _tokenizer(pcfg, init, corpus, cache, progress=progress and dist.main, dist=dist)
    special = SpecialTokens.of(tokenizer)
    model_cfg = _model_config(pcfg, init, tokenizer, special)

    if not dist.main:
        dist.barrier()  # the main process tokenizes; the others then read its cache
    train_shards, valid_shards = build_shards(
        corpus, tokenizer, cache_dir=cache / "shards", valid_fraction=pcfg.valid_fraction,
        progress=progress and dist.main,
    )
    if dist.main:
        dist.barrier()

    torch.manual_seed(tcfg.seed)  # initialisation
    objective = make_objective(pcfg.objective, model_cfg, tokenizer=tokenizer, settings=ocfg,
                               model=init.model if init else None)
    if init is not None:
        _load_heads(objective, Path(pcfg.init))
    rows = _rows(objective, pcfg.seq_len, special)
    train_rows = rows(train_shards)
    valid_rows = rows(valid_shards) if valid_shards.n_docs else None
    if len(train_rows) == 0:
        raise WarmstartError(
            f"the corpus ({', '.join(map(str, corpus.paths))}) has {train_shards.n_tokens} tokens: "
            f"too few for one sequence of --seq-len {pcfg.seq_len}"
        )
    batches = PretrainBatches(objective, train_rows, valid_rows, batch_size=tcfg.batch_size,
                              seed=tcfg.seed)
    budget = _budget(tcfg, n_rows=len(train_rows))
    settings = {
        "pretrain": dataclasses.asdict(pcfg),
        "objective": dataclasses.asdict(ocfg),
        "train": dataclasses.asdict(tcfg),
    }
    fingerprint = {
        "settings": {part: {k: v for k, v in values.items() if k not in _RUNTIME}
                     for part, values in settings.items()},
        "model": model_cfg.to_dict(),
        "tokenizer": hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16],
        "data": corpus.describe()["fingerprint"],
    }
    if out_dir is not None and dist.main:
        n_params = sum(p.numel() for p in objective.parameters())
        # fp32 weights in the artifact and the checkpoint, AdamW's two moments, the tokenizer
        check_room(out_dir, 16 * n_params + 2 * len(tokenizer.to_str()),
                   what="the model and its checkpoint")
    result = train(objective, batches, tcfg, budget=budget, out=out_dir, fingerprint=fingerprint,
                   progress=progress)
    model = objective.model().cpu().eval()
    if out_dir is not None and dist.main:
        _save(out_dir, objective, tokenizer, settings, result, init=pcfg.init or None,
              data=corpus.describe(), title=f"{pcfg.objective} pretraining")
    dist.close()
    return PretrainResult(model=model, tokenizer=tokenizer, training=result, out=out_dir)


def _tokenizer(
    pcfg: PretrainConfig, init: Pretrained | None, corpus: Corpus, cache: Path, *,
    progress: bool, dist: Distributed,
) -> tokenizers.Tokenizer:
    if pcfg.tokenizer:
        tok = load_tokenizer(pcfg.tokenizer, option="--tokenizer")
        if init is not None and tok.get_vocab_size() != init.model.config.vocab_size:
            raise WarmstartError(
                f"--tokenizer {pcfg.tokenizer} has {tok.get_vocab_size()} tokens but --init "
                f"{pcfg.init} has {init.model.config.vocab_size}; use the model's own tokenizer"
            )
        return tok
    if init is not None:
        if init.tokenizer is None:
            raise WarmstartError(f"--init {pcfg.init}: has no {TOKENIZER_FILE}; give --tokenizer")
        return init.tokenizer
    key = hashlib.sha256(repr((corpus.describe()["fingerprint"], pcfg.vocab_size,
                               pcfg.lowercase)).encode()).hexdigest()[:16]
    folder = cache / "tokenizers" / key
    if not (folder / TOKENIZER_FILE).exists():
        if dist.main:
            train_tokenizer(corpus, out=folder, model="wordpiece",
                            vocab_size=pcfg.vocab_size, lowercase=pcfg.lowercase,
                            progress=progress)
        dist.barrier()  # the others wait here until the main process has saved it
    return load_tokenizer(folder)


def _model_config(
    pcfg: PretrainConfig, init: Pretrained | None, tokenizer: tokenizers.Tokenizer,
    special: SpecialTokens,
) -> TransformerConfig:
    if init is not None:
        cfg = init.model.config
        if pcfg.seq_len > cfg.max_positions:
            raise WarmstartError(
                f"--seq-len {pcfg.seq_len}: the model from --init takes at most "
                f"{cfg.max_positions} positions"
            )
        return cfg
    overrides = {k: getattr(pcfg, k) for k in ("n_layers", "hidden", "n_heads", "ffn")
                 if getattr(pcfg, k)}
    extra = Decoder.defaults() if pcfg.objective == "clm" else {}
    return TransformerConfig.sized(
        pcfg.size, vocab_size=tokenizer.get_vocab_size(), max_positions=max(512, pcfg.seq_len),
        dropout=pcfg.dropout, attention_dropout=pcfg.dropout, pad_id=special.pad,
        **overrides, **extra,
    )


def _rows(objective: Objective, seq_len: int, special: SpecialTokens) -> Any:
    def make(shards: Any) -> PackedSequences | DocumentSequences:
        if objective.rows == "documents":
            return DocumentSequences(shards, max_len=seq_len, bos_id=special.cls,
                                     eos_id=special.sep, pad_id=special.pad)
        bos = None if objective.kind == "decoder" else special.cls
        return PackedSequences(shards, seq_len=seq_len, bos_id=bos, eos_id=special.sep)

    return make


def _budget(tcfg: TrainConfig, *, n_rows: int) -> Budget:
    seconds = parse_duration(tcfg.time_budget) if tcfg.time_budget else 0.0
    max_steps = tcfg.max_steps
    if tcfg.epochs or not (max_steps or tcfg.max_tokens or seconds):
        epoch_steps = math.ceil((tcfg.epochs or 1.0) * n_rows / tcfg.batch_size)
        max_steps = min(max_steps, epoch_steps) if max_steps else epoch_steps
    return Budget(max_steps=max_steps, max_tokens=tcfg.max_tokens, seconds=seconds)




def _heads(objective: Objective) -> dict[str, torch.Tensor]:
    """The objective's own weights (heads, generator...), without the model it trains."""
    model = objective.model()
    prefix = next(name for name, m in objective.named_children() if m is model) + "."
    return {k: v.detach().cpu().contiguous() for k, v in objective.state_dict().items()
            if not k.startswith(prefix)}


def _load_heads(objective: Objective, init: Path) -> None:
    """Continue with the heads a previous run of the same objective saved beside its model."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = init / HEADS_FILE
    if not path.exists():
        return
    with safe_open(str(path), "pt") as f:
        made_by = (f.metadata() or {}).get("objective")
    if made_by != objective.name:
        return
    heads = load_file(str(path))
    own = _heads(objective)
    if heads.keys() == own.keys() and all(heads[k].shape == own[k].shape for k in own):
        objective.load_state_dict(heads, strict=False)


def _save(
    out: Path, objective: Objective, tokenizer: tokenizers.Tokenizer,
    settings: dict[str, Any], result: TrainResult, *, init: str | None,
    data: dict[str, Any], title: str,
) -> None:
    from safetensors.torch import save_file

    from warmstart.train.plots import plot_losses

    model = objective.model()
    with building(out) as folder:
        save_model(folder, model, tokenizer=tokenizer, config=settings, parent=init, data=data)
        # The heads let --init continue this objective where it stopped; the model alone is
        # what downstream tasks and the Hugging Face export use.
        save_file(_heads(objective), str(folder / HEADS_FILE), metadata={"objective": objective.name})
        append_metrics(folder / METRICS_FILE, result.history)
        plot_losses(result.history, folder / "plots" / "loss.png", title=title)

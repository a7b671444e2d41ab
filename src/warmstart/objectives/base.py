"""The interface every pretraining objective implements, and what objectives share.

An objective is a module that owns the model it trains (and any heads), turns a global batch
of token rows into model inputs and targets (``prepare``), and maps a slice of that batch to
a loss (``forward``). The training loop (``warmstart.train``) does everything else;
the batch contract it shares with them is in :mod:`warmstart.train.batches`.

``prepare`` sees the whole global batch and draws its randomness from a generator seeded by
the step, so masks do not depend on how the batch is split into micro-batches or across
processes; the normalisers it returns (numbers of predictions in the global batch) make the
sum of micro-batch losses equal the loss of the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import tokenizers
import torch
from torch import nn

from warmstart.config import opt, option_name
from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig
from warmstart.train.batches import Prepared


@dataclass
class ObjectiveConfig:
    """Settings of the pretraining objectives (each uses the ones that concern it)."""

    mask_prob: float = opt(0.15, "MLM/ELECTRA: share of tokens to predict")
    whole_word_mask: bool = opt(False, "MLM/ELECTRA: mask all pieces of a word together")
    generator_scale: float = opt(0.25, "ELECTRA: generator width as a share of the model's")
    discriminator_weight: float = opt(50.0, "ELECTRA: weight of the replaced-token loss", above=0)
    delete_prob: float = opt(0.6, "DAE: share of tokens deleted from the input")
    decoder_layers: int = opt(1, "DAE: layers of the reconstructing decoder")

    def __post_init__(self) -> None:
        for name in ("mask_prob", "delete_prob"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise WarmstartError(f"{option_name(name)} {value}: must be between 0 and 1")
        if not 0.0 < self.generator_scale <= 1.0:
            raise WarmstartError(f"--generator-scale {self.generator_scale}: must be in (0, 1]")
        if self.decoder_layers < 1:
            raise WarmstartError(f"--decoder-layers {self.decoder_layers}: must be at least 1")


@dataclass
class SpecialTokens:
    """Ids of the tokens objectives insert or must never mask, read from the tokenizer."""

    pad: int
    cls: int
    sep: int
    mask: int | None
    unk: int | None

    @classmethod
    def of(cls, tokenizer: tokenizers.Tokenizer) -> SpecialTokens:
        def find(*names: str) -> int | None:
            for name in names:
                i = tokenizer.token_to_id(name)
                if i is not None:
                    return int(i)
            return None

        pad, cls_, sep = find("[PAD]", "<pad>"), find("[CLS]", "<s>"), find("[SEP]", "</s>")
        missing = [n for n, i in (("[PAD]", pad), ("[CLS]", cls_), ("[SEP]", sep)) if i is None]
        if missing or pad is None or cls_ is None or sep is None:
            raise WarmstartError(
                f"the tokenizer has no {', '.join(missing)} token; train one with "
                "`warmstart tokenizer train` (it adds [PAD] [UNK] [CLS] [SEP] [MASK])"
            )
        return cls(pad=pad, cls=cls_, sep=sep, mask=find("[MASK]", "<mask>"), unk=find("[UNK]"))

    def ids(self) -> list[int]:
        return [i for i in (self.pad, self.cls, self.sep, self.mask, self.unk) if i is not None]


def word_starts(tokenizer: tokenizers.Tokenizer) -> np.ndarray:
    """(V,) bool: which vocabulary entries begin a word (for whole-word masking).

    WordPiece marks continuations with ``##``; Metaspace (Unigram) and byte-level BPE mark
    word beginnings with ``▁`` and ``Ġ``.
    """
    vocab = tokenizer.get_vocab()
    starts = np.ones(tokenizer.get_vocab_size(), dtype=bool)
    pieces = list(vocab)
    if any(p.startswith("##") for p in pieces):
        for p, i in vocab.items():
            starts[i] = not p.startswith("##")
    elif any(p.startswith(("▁", "Ġ")) for p in pieces):
        for p, i in vocab.items():
            starts[i] = p.startswith(("▁", "Ġ")) or (p.startswith("[") and p.endswith("]"))
    return starts


class Objective(nn.Module):
    """Base of the pretraining objectives; see the module docstring for the contract."""

    name: ClassVar[str]
    kind: ClassVar[str]  # the artifact kept: "encoder" or "decoder"
    rows: ClassVar[str] = "packed"  # "packed" sequences or one "documents" per row

    def model(self) -> Encoder | Decoder:
        """The encoder or decoder this objective trains and the artifact keeps."""
        raise NotImplementedError

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        """Inputs and targets for the global batch ``ids`` (B, T) (row ``lengths`` if padded)."""
        raise NotImplementedError

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This slice's share of the global batch loss, and summed statistics for logging.

        Statistics come in ``<name>_correct`` / ``<name>_total`` pairs (accuracies) and
        ``<name>_loss`` sums, all summed over predictions so they aggregate across slices.
        """
        raise NotImplementedError


def encoder_to_train(config: TransformerConfig, encoder: Encoder | None) -> Encoder:
    """``encoder``, or a fresh one of ``config``, ready for an objective that does not pool."""
    encoder = encoder if encoder is not None else Encoder(config)
    # BERT's pooler plays no part in pretraining; frozen, so DDP need not wait for its gradient.
    encoder.pooler.requires_grad_(False)
    return encoder


class Masking:
    """BERT's choice and corruption of the positions to predict, shared by MLM and ELECTRA.

    Masks are drawn on the CPU, where batches are made, whatever device the model is on.
    """

    def __init__(
        self, special: SpecialTokens, word_starts: np.ndarray, settings: ObjectiveConfig, *,
        vocab_size: int, objective: str,
    ) -> None:
        if special.mask is None:
            raise WarmstartError(f"the tokenizer has no [MASK] token, which {objective} needs")
        self.mask_id = special.mask
        self.mask_prob = settings.mask_prob
        self.special_ids = torch.tensor(special.ids())
        self.starts = torch.from_numpy(word_starts) if settings.whole_word_mask else None
        vocab = torch.arange(vocab_size)
        # Random replacements are never special tokens (a random [PAD] would be hidden).
        self.ordinary = vocab[~torch.isin(vocab, self.special_ids)]

    def __call__(
        self, ids: torch.Tensor, *, generator: torch.Generator,
        replace: tuple[float, float] = (0.8, 0.1),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs, labels, chosen) for ``ids`` (B, T): ``replace`` = shares of [MASK], random."""
        chosen = self.choose(ids, generator=generator)
        u = torch.rand(ids.shape, generator=generator)
        random_tokens = self.ordinary[
            torch.randint(len(self.ordinary), ids.shape, generator=generator)
        ]
        to_mask = chosen & (u < replace[0])
        to_random = chosen & (u >= replace[0]) & (u < replace[0] + replace[1])
        inputs = ids.clone()
        inputs[to_mask] = self.mask_id
        inputs[to_random] = random_tokens[to_random]
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        return inputs, labels, chosen

    def choose(self, ids: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """(B, T) bool: the positions to predict, never special tokens, whole words if asked."""
        B, T = ids.shape
        candidate = ~torch.isin(ids, self.special_ids)
        r = torch.rand(B, T, generator=generator)
        if self.starts is not None:
            # Every piece takes the draw of the piece that starts its word.
            is_start = self.starts[ids] | ~candidate
            word = is_start.long().cumsum(1) - 1  # (B, T) index of each position's word
            r = torch.gather(r, 1, word.clamp(min=0))
        return (r < self.mask_prob) & candidate


def top1_correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) bool: the target's logit is above every other logit of its row. A tie for the
    top counts as wrong: bf16 logits tie, and a model that scores every class alike must
    score 0, not 100%. (One comparison pass: far faster than an argmax over bf16 logits.)"""
    target = logits.gather(1, targets.unsqueeze(1))  # (N, 1)
    return (logits >= target).sum(-1) == 1


def accuracy_stats(
    name: str, logits: torch.Tensor, targets: torch.Tensor, loss_sum: torch.Tensor
) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {
            f"{name}_loss": loss_sum.detach().float(),
            f"{name}_correct": top1_correct(logits, targets).sum().float(),
            f"{name}_total": torch.tensor(float(targets.numel())),
        }

"""Masked language modelling (BERT): predict 15% of the tokens from the rest.

Masks are drawn afresh for every batch (dynamic masking); a chosen token becomes [MASK] 80%
of the time, a random token 10% and stays itself 10%. With ``whole_word_mask`` all pieces of
a word are chosen together. Only the chosen positions go through the vocabulary projection.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from warmstart.models.transformer import Encoder, MaskedLMHead, TransformerConfig
from warmstart.objectives.base import (
    Masking,
    Objective,
    ObjectiveConfig,
    SpecialTokens,
    accuracy_stats,
    encoder_to_train,
    top1_correct,
)
from warmstart.train.batches import Prepared


class MaskedLM(Objective):
    name = "mlm"
    kind = "encoder"

    def __init__(
        self,
        config: TransformerConfig,
        *,
        special: SpecialTokens,
        word_starts: np.ndarray,
        settings: ObjectiveConfig,
        encoder: Encoder | None = None,
    ) -> None:
        super().__init__()
        self.masking = Masking(special, word_starts, settings, vocab_size=config.vocab_size,
                               objective="MLM")
        self.encoder = encoder_to_train(config, encoder)
        self.head = MaskedLMHead(config, self.encoder.tok_emb)
        self.special = special
        self.settings = settings

    def model(self) -> Encoder:
        return self.encoder

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        inputs, labels, chosen = self.masking(ids, generator=generator)
        return Prepared(
            tensors={"inputs": inputs, "labels": labels},
            norms={"masked": max(1.0, float(chosen.sum()))},
        )

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, labels = batch["inputs"], batch["labels"]
        hidden = self.encoder(inputs, attention_mask=inputs != self.special.pad)  # (B, T, C)
        chosen = labels != -100
        logits = self.head(hidden[chosen])  # (N, V): only the positions to predict
        targets = labels[chosen]
        loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        stats = accuracy_stats("mlm", logits, targets, loss_sum)
        # Where the input says [MASK]: no copying the input helps there (a tenth of the
        # chosen tokens stay themselves), so this is what reading the context is worth.
        mask_id = -1 if self.special.mask is None else self.special.mask
        at_mask = inputs[chosen] == mask_id
        with torch.no_grad():
            stats["mlm_at_mask_correct"] = top1_correct(logits[at_mask], targets[at_mask]).sum().float()
            stats["mlm_at_mask_total"] = at_mask.sum().float()
        return loss_sum / norms["masked"], stats

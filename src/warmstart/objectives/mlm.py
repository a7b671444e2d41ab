"""Masked language modelling (BERT): predict 15% of the tokens from the rest.

Masks are drawn afresh for every batch (dynamic masking); a chosen token becomes [MASK] 80%
of the time, a random token 10% and stays itself 10%. With ``whole_word_mask`` all pieces of
a word are chosen together. Only the chosen positions go through the vocabulary projection.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.models.transformer import Encoder, MaskedLMHead, TransformerConfig
from warmstart.objectives.base import (
    Objective,
    ObjectiveConfig,
    Prepared,
    SpecialTokens,
    accuracy_stats,
    choose_masked,
    corrupt_for_mlm,
)


class MaskedLM(Objective):
    name = "mlm"
    kind = "encoder"
    special_ids: torch.Tensor  # buffers
    starts: torch.Tensor

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
        if special.mask is None:
            raise WarmstartError("the tokenizer has no [MASK] token, which MLM needs")
        self.encoder = encoder if encoder is not None else Encoder(config)
        # BERT's pooler plays no part here; frozen, so DDP need not wait for its gradient.
        self.encoder.pooler.requires_grad_(False)
        self.head = MaskedLMHead(config, self.encoder.tok_emb)
        self.special = special
        self.settings = settings
        self.register_buffer("special_ids", torch.tensor(special.ids()), persistent=False)
        self.register_buffer("starts", torch.from_numpy(word_starts), persistent=False)

    def model(self) -> Encoder:
        return self.encoder

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        masked = choose_masked(
            ids,
            mask_prob=self.settings.mask_prob,
            special=self.special_ids,
            starts=self.starts if self.settings.whole_word_mask else None,
            generator=generator,
        )
        inputs = corrupt_for_mlm(
            ids, masked, mask_id=int(self.special.mask),  # type: ignore[arg-type]
            vocab_size=self.encoder.config.vocab_size, special=self.special_ids,
            generator=generator,
        )
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        return Prepared(
            tensors={"inputs": inputs, "labels": labels},
            norms={"masked": max(1.0, float(masked.sum()))},
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
        return loss_sum / norms["masked"], accuracy_stats("mlm", logits, targets, loss_sum)

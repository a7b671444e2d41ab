"""Causal language modelling (GPT-2): predict every next token of packed sequences."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from warmstart.models.transformer import Decoder, TransformerConfig
from warmstart.objectives.base import Objective, ObjectiveConfig, accuracy_stats
from warmstart.train.batches import Prepared


class CausalLM(Objective):
    name = "clm"
    kind = "decoder"

    def __init__(
        self,
        config: TransformerConfig,
        *,
        settings: ObjectiveConfig,
        decoder: Decoder | None = None,
    ) -> None:
        super().__init__()
        self.decoder = decoder if decoder is not None else Decoder(config)
        self.settings = settings

    def model(self) -> Decoder:
        return self.decoder

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        B, T = ids.shape
        return Prepared(tensors={"ids": ids}, norms={"targets": float(B * (T - 1))})

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ids = batch["ids"]
        hidden = self.decoder(ids[:, :-1])  # (B, T-1, C)
        logits = self.decoder.logits(hidden).flatten(0, 1)  # (B*(T-1), V)
        targets = ids[:, 1:].flatten()
        loss_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        return loss_sum / norms["targets"], accuracy_stats("clm", logits, targets, loss_sum)

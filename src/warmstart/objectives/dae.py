"""Denoising autoencoder (TSDAE): rebuild a sentence from one vector of its damaged copy.

A share of each document's tokens is deleted; the encoder reads what is left and its [CLS]
hidden state becomes the sentence vector; a light causal decoder, sharing the encoder's
embeddings, must reconstruct the whole original text from that vector alone. What squeezes
through the single vector is the meaning, so the encoder becomes a sentence encoder without
any labels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from warmstart.models.transformer import (
    Attention,
    Encoder,
    FeedForward,
    MaskedLMHead,
    TransformerConfig,
    init_weights,
)
from warmstart.objectives.base import (
    Objective,
    ObjectiveConfig,
    SpecialTokens,
    accuracy_stats,
    encoder_to_train,
)
from warmstart.train.batches import Prepared


class ReconstructionLayer(nn.Module):
    """Causal self-attention, attention to the sentence vector, feed-forward; post-LN."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg, causal=True)
        self.ln_attn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        # Attending to a single key gives it weight 1, so cross-attention to one sentence
        # vector is exactly its value projection followed by the output projection.
        self.cross_value = nn.Linear(cfg.hidden, cfg.hidden)
        self.cross_proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.ln_cross = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.ln_ffn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        # x (B, T, C); sentence (B, C). Causal attention needs no padding mask: padding sits
        # at the end of each row, after every position whose output is used.
        x = self.ln_attn(x + self.attn(x))
        cross = self.dropout(self.cross_proj(self.cross_value(sentence)))  # (B, C)
        x = self.ln_cross(x + cross[:, None, :])
        return self.ln_ffn(x + self.ffn(x))


class DenoisingAutoencoder(Objective):
    name = "dae"
    kind = "encoder"
    rows = "documents"

    def __init__(
        self,
        config: TransformerConfig,
        *,
        special: SpecialTokens,
        settings: ObjectiveConfig,
        encoder: Encoder | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder_to_train(config, encoder)
        self.layers = nn.ModuleList(ReconstructionLayer(config) for _ in range(settings.decoder_layers))
        self.layers.apply(init_weights)
        self.ln_emb = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.head = MaskedLMHead(config, self.encoder.tok_emb)
        self.special = special
        self.settings = settings
        self.special_ids = torch.tensor(special.ids())  # used on the CPU, where batches are made

    def model(self) -> Encoder:
        return self.encoder

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        B, T = ids.shape
        pad = self.special.pad
        real = ids != pad
        deletable = real & ~torch.isin(ids, self.special_ids)
        delete = deletable & (torch.rand(B, T, generator=generator) < self.settings.delete_prob)
        # Keep at least one ordinary token of every row that has one.
        nothing_left = (deletable & ~delete).sum(1) == 0
        first = deletable.float().argmax(1)
        delete[nothing_left, first[nothing_left]] = False
        keep = real & ~delete
        # Close the gaps: stable sort puts kept tokens first, in their order.
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
        noisy = torch.where(keep, ids, torch.full_like(ids, pad)).gather(1, order)
        width = max(1, int(keep.sum(1).max()))
        n_targets = float((real[:, 1:]).sum())
        return Prepared(
            tensors={"noisy": noisy[:, :width].contiguous(), "ids": ids},
            norms={"targets": max(1.0, n_targets)},
        )

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        noisy, ids = batch["noisy"], batch["ids"]
        pad = self.special.pad
        sentence = self.encoder(noisy, attention_mask=noisy != pad)[:, 0]  # (B, C): [CLS]
        enc = self.encoder
        pos = torch.arange(ids.shape[1] - 1, device=ids.device)
        x = self.ln_emb(enc.tok_emb(ids[:, :-1]) + enc.pos_emb(pos))  # (B, T-1, C)
        for layer in self.layers:
            x = layer(x, sentence)
        targets = ids[:, 1:]
        real = targets != pad
        logits = self.head(x[real])  # (N, V)
        loss_sum = F.cross_entropy(logits.float(), targets[real], reduction="sum")
        return loss_sum / norms["targets"], accuracy_stats("reconstruct", logits, targets[real], loss_sum)

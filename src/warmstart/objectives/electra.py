"""ELECTRA replaced-token detection: a small generator and a discriminator trained together.

The generator is a narrow masked language model that reads the discriminator's embeddings
(shared, as in ELECTRA) and fills the masked positions with tokens sampled from its
predictions; the discriminator sees the filled-in text and, at every position, tells
original from replaced tokens. Learning from every position rather than 15% of them is what
makes ELECTRA the most compute-efficient objective on small budgets. The discriminator is the
encoder that is kept.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.models.transformer import (
    Encoder,
    EncoderLayer,
    MaskedLMHead,
    TransformerConfig,
    init_weights,
    run_layers,
)
from warmstart.objectives.base import (
    Masking,
    Objective,
    ObjectiveConfig,
    SpecialTokens,
    accuracy_stats,
    encoder_to_train,
)
from warmstart.train.batches import Prepared


def generator_config(config: TransformerConfig, scale: float) -> TransformerConfig:
    """The generator's shape: ``scale`` of the width, heads of 64 dimensions at most."""
    n_heads = max(1, round(config.n_heads * scale))
    hidden = max(n_heads, round(config.hidden * scale / n_heads) * n_heads)
    return TransformerConfig.from_dict(
        {**config.to_dict(), "hidden": hidden, "n_heads": n_heads, "ffn": 4 * hidden}
    )


class Generator(nn.Module):
    """A narrow MLM over the discriminator's embeddings: (B, T, C) -> logits of chosen rows."""

    def __init__(self, config: TransformerConfig, small: TransformerConfig, tied: nn.Embedding):
        super().__init__()
        self.proj_in = nn.Linear(config.hidden, small.hidden)
        self.layers = nn.ModuleList(EncoderLayer(small) for _ in range(small.n_layers))
        self.head = MaskedLMHead(config, tied, in_features=small.hidden)
        self.layers.apply(init_weights)
        init_weights(self.proj_in)

    def forward(
        self, embedded: torch.Tensor, attention_mask: torch.Tensor, chosen: torch.Tensor
    ) -> torch.Tensor:
        h = run_layers(self.layers, self.proj_in(embedded), attention_mask)  # (B, T, Cg)
        return self.head(h[chosen])  # (N, V)


class ReplacedTokenDetection(Objective):
    name = "electra"
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
                               objective="ELECTRA")
        self.discriminator = encoder_to_train(config, encoder)
        self.generator = Generator(
            config, generator_config(config, settings.generator_scale), self.discriminator.tok_emb
        )
        # The detection head keeps torch's default initialisation (uniform, about 0.05 at
        # this width), not BERT's N(0, 0.02): the encoder's gradient passes through both of
        # the head's layers, and at 0.02 each their product is so small that the
        # discriminator sat at the base rate ("original" everywhere) for 1,000 steps on
        # text where the context gives most replacements away (1,500 with random words in
        # place of the generator's samples); at the default it leaves it in 200
        # (tests/test_pretrain.py, test_electra_discriminator_reads_the_context).
        self.detect = nn.Sequential(
            nn.Linear(config.hidden, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1)
        )
        self.special = special
        self.settings = settings

    def model(self) -> Encoder:
        return self.discriminator

    def prepare(
        self, ids: torch.Tensor, lengths: torch.Tensor | None, *, generator: torch.Generator
    ) -> Prepared:
        # ELECTRA masks every chosen token (no random or kept tokens for the generator).
        inputs, labels, chosen = self.masking(ids, generator=generator, replace=(1.0, 0.0))
        # One uniform draw per position to sample the generator's token by inverse CDF, so
        # sampling, like masking, is fixed by the step and not by how the batch is split.
        uniform = torch.rand(ids.shape, generator=generator)
        return Prepared(
            tensors={"inputs": inputs, "labels": labels, "uniform": uniform, "original": ids},
            norms={
                "masked": max(1.0, float(chosen.sum())),
                "tokens": max(1.0, float((ids != self.special.pad).sum())),
            },
        )

    @staticmethod
    def sample(gen_logits: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """One token per row of ``gen_logits`` (N, V), drawn from its softmax by inverse CDF
        with the uniform draws ``uniform`` (N,)."""
        cdf = gen_logits.float().softmax(-1).cumsum(-1)  # (N, V)
        # u > 0, or a draw of exactly 0 would pick token 0 whatever its probability.
        u = uniform.clamp_min(torch.finfo(cdf.dtype).tiny).unsqueeze(1) * cdf[:, -1:]
        return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=cdf.shape[1] - 1)

    def forward(  # type: ignore[override]
        self, batch: dict[str, torch.Tensor], norms: dict[str, float]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs, labels, original = batch["inputs"], batch["labels"], batch["original"]
        attention = inputs != self.special.pad
        chosen = labels != -100
        targets = labels[chosen]

        gen_logits = self.generator(self.discriminator.embed(inputs), attention, chosen)  # (N, V)
        gen_loss = F.cross_entropy(gen_logits.float(), targets, reduction="sum")

        with torch.no_grad():
            replaced_inputs = original.clone()
            replaced_inputs[chosen] = self.sample(gen_logits, batch["uniform"][chosen])
            is_replaced = (replaced_inputs != original).float()  # (B, T)

        hidden = self.discriminator(replaced_inputs, attention_mask=attention)  # (B, T, C)
        scores = self.detect(hidden[attention]).squeeze(-1).float()  # (M,)
        truth = is_replaced[attention]
        disc_loss = F.binary_cross_entropy_with_logits(scores, truth, reduction="sum")

        loss = gen_loss / norms["masked"] + self.settings.discriminator_weight * (
            disc_loss / norms["tokens"]
        )
        stats = accuracy_stats("generator", gen_logits, targets, gen_loss)
        with torch.no_grad():
            stats.update(
                {
                    "discriminator_loss": disc_loss.detach(),
                    "discriminator_correct": ((scores > 0).float() == truth).sum().float(),
                    "discriminator_total": torch.tensor(float(truth.numel())),
                    "replaced_correct": ((scores > 0) & (truth > 0)).sum().float(),
                    "replaced_total": truth.sum(),
                    # What a discriminator that always says "original" scores: the bar.
                    "always_original_correct": (truth == 0).sum().float(),
                    "always_original_total": torch.tensor(float(truth.numel())),
                }
            )
        return loss, stats

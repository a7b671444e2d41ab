"""The transformer, in one file: a BERT-style encoder and a GPT-2-style causal decoder.

The encoder follows BERT exactly (learned positions, token types, post-LayerNorm, erf GELU),
so BERT-family checkpoints load into it and produce the same hidden states; the decoder
follows GPT-2 (pre-LayerNorm, tanh GELU, tied output embedding). Both use PyTorch's
``scaled_dot_product_attention``. Objectives (``warmstart.objectives``) put their heads on
top; only masked or predicted positions are sent through the vocabulary projection.

    >>> cfg = TransformerConfig.sized("tiny", vocab_size=1000)
    >>> h = Encoder(cfg)(torch.zeros(2, 16, dtype=torch.long))   # (B, T, C) = (2, 16, 128)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from warmstart.errors import WarmstartError

# Named sizes: layers, hidden width, heads, feed-forward width. "small" is BERT-mini's shape.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(n_layers=2, hidden=128, n_heads=2, ffn=512),
    "small": dict(n_layers=4, hidden=256, n_heads=4, ffn=1024),
    "medium": dict(n_layers=8, hidden=512, n_heads=8, ffn=2048),
    "base": dict(n_layers=12, hidden=768, n_heads=12, ffn=3072),
}


@dataclass
class TransformerConfig:
    """The shape of an encoder or decoder; saved in every model artifact."""

    vocab_size: int = 30522
    n_layers: int = 4
    hidden: int = 256
    n_heads: int = 4
    ffn: int = 1024
    max_positions: int = 512
    type_vocab_size: int = 2  # encoder only
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"  # "gelu" (erf, BERT) or "gelu_tanh" (GPT-2)
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.hidden % self.n_heads:
            raise WarmstartError(
                f"hidden={self.hidden} is not divisible by n_heads={self.n_heads}; "
                "choose a width that is a multiple of the number of heads"
            )
        if self.activation not in _ACTIVATIONS:
            raise WarmstartError(f"activation={self.activation!r}: use one of {sorted(_ACTIVATIONS)}")

    @classmethod
    def sized(cls, size: str, **overrides: Any) -> TransformerConfig:
        """The named ``size`` (tiny, small, medium, base) with ``overrides`` applied."""
        if size not in SIZES:
            raise WarmstartError(f"--size {size}: unknown size; use one of {', '.join(SIZES)}")
        return cls(**{**SIZES[size], **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformerConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


class Attention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection."""

    def __init__(self, cfg: TransformerConfig, *, causal: bool) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.causal = causal
        self.attention_dropout = cfg.attention_dropout
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)
        v = v.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2)
        dropout = self.attention_dropout if self.training else 0.0
        if x.device.type == "cpu" and T <= _CPU_EXPLICIT_ATTENTION_MAX_LEN and torch.is_grad_enabled():
            y = _explicit_attention(q, k, v, mask, dropout=dropout, causal=self.causal)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v,
                attn_mask=mask,  # (B, 1, 1, T) bool, True where a key may be attended to
                dropout_p=dropout,
                is_causal=self.causal,
            )
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.dropout(self.proj(y))


# Up to this length, attention written as two batched matmuls and a softmax runs fwd+bwd 3x
# faster on CPU than torch's fused CPU kernel (128 tokens, bf16, two cores); the (T, T)
# weights it keeps for the backward pass are small there. Without gradients (prediction,
# embedding, validation) the fused kernel is the faster one: 1.3-1.4x on MiniLM at 256 tokens
# (fp32 and bf16; docs/benchmarks.md, ONNX section), the same at 32.
_CPU_EXPLICIT_ATTENTION_MAX_LEN = 256


def _explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *,
    dropout: float, causal: bool,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, what ``F.scaled_dot_product_attention`` computes."""
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, nh, T, T)
    if causal:
        T = q.shape[-2]
        mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    if dropout:
        weights = F.dropout(weights, p=dropout)
    return weights.to(v.dtype) @ v


class FeedForward(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.hidden, cfg.ffn)
        self.proj = nn.Linear(cfg.ffn, cfg.hidden)
        self.act = _ACTIVATIONS[cfg.activation]
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.act(self.fc(x))))


class EncoderLayer(nn.Module):
    """BERT's layer: LayerNorm after each residual addition (post-LN)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg, causal=False)
        self.ln_attn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.ln_ffn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.ln_attn(x + self.attn(x, mask))
        return self.ln_ffn(x + self.ffn(x))


class Encoder(nn.Module):
    """A BERT-style bidirectional encoder: token ids (B, T) -> hidden states (B, T, C)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.hidden, padding_idx=cfg.pad_id)
        self.pos_emb = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.type_emb = nn.Embedding(cfg.type_vocab_size, cfg.hidden)
        self.ln_emb = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.n_layers))
        self.pooler = nn.Linear(cfg.hidden, cfg.hidden)  # BERT's [CLS] pooler, kept for export
        self.apply(init_weights)

    def forward(
        self,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T = ids.shape
        if T > self.config.max_positions:
            raise WarmstartError(
                f"sequence length {T} exceeds max_positions={self.config.max_positions}"
            )
        return self.encode(self.embed(ids, token_type_ids), attention_mask)

    def embed(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token + position + type embeddings, normalised: (B, T) -> (B, T, C)."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(ids)
        x = self.tok_emb(ids) + self.pos_emb(pos) + self.type_emb(types)  # (B, T, C)
        return self.dropout(self.ln_emb(x))

    def encode(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the layers over embedded input (B, T, C); padding is where the mask is 0."""
        return run_layers(self.layers, x, attention_mask)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """BERT's pooled output: tanh(dense(hidden state of the first token)), (B, C)."""
        return torch.tanh(self.pooler(hidden[:, 0]))


class DecoderBlock(nn.Module):
    """GPT-2's block: LayerNorm before each sub-layer (pre-LN)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.attn = Attention(cfg, causal=True)
        self.ln_ffn = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.ffn(self.ln_ffn(x))


class Decoder(nn.Module):
    """A GPT-2-style causal decoder: token ids (B, T) -> hidden states (B, T, C).

    ``logits(hidden)`` projects (selected) hidden states onto the tied token embedding.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.pos_emb = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.apply(init_weights)
        # GPT-2 scales the residual projections by depth so the residual stream stays O(1).
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def defaults() -> dict[str, Any]:
        """The settings in which GPT-2 differs from BERT."""
        return {"layer_norm_eps": 1e-5, "activation": "gelu_tanh"}

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        if T > self.config.max_positions:
            raise WarmstartError(
                f"sequence length {T} exceeds max_positions={self.config.max_positions}"
            )
        pos = torch.arange(T, device=ids.device)
        x = self.dropout(self.tok_emb(ids) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.ln_out(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.tok_emb.weight.t()  # (..., V)


class MaskedLMHead(nn.Module):
    """BERT's MLM head: dense + GELU + LayerNorm, then the tied token embedding plus a bias.

    It is given only the hidden states of the positions to predict, (N, C) -> (N, V): the
    vocabulary projection is the largest matmul of a small model, and computing it for
    every position would waste most of a training step.
    """

    tied: nn.Embedding

    def __init__(
        self, cfg: TransformerConfig, embedding: nn.Embedding, *, in_features: int | None = None
    ) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features or cfg.hidden, cfg.hidden)
        self.act = _ACTIVATIONS[cfg.activation]
        self.ln = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        # Tied to the model's token embedding, which the model owns: kept out of this module's
        # parameters and state so that it is neither initialised nor saved twice.
        object.__setattr__(self, "tied", embedding)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        init_weights(self.dense)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.act(self.dense(hidden)))  # (N, C)
        return F.linear(h, self.tied.weight, self.bias)  # (N, V)


def run_layers(
    layers: nn.ModuleList, x: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """Run encoder layers over (B, T, C); skip the mask when nothing is padding (faster)."""
    mask = None
    if attention_mask is not None and not bool(attention_mask.all()):
        mask = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T)
    for layer in layers:
        x = layer(x, mask)
    return x


def init_weights(module: nn.Module) -> None:
    """BERT's and GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

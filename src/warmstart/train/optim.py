"""The optimizer's parameter groups: which parameters AdamW decays."""

from __future__ import annotations

from typing import Any

from torch import nn


def decays(parameter: nn.Parameter) -> bool:
    """Whether weight decay applies to ``parameter``: to matrices and embeddings, not to
    biases and LayerNorm gains (vectors), as in BERT and GPT-2."""
    return parameter.dim() >= 2


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of ``module``'s trainable parameters: decay matrices and embeddings;
    leave biases and LayerNorm gains alone.

        >>> optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=5e-4)  # doctest: +SKIP
    """
    seen: set[int] = set()
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in module.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if decays(p) else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]

"""Pretraining objectives, one file each, behind the interface in ``base``."""

from __future__ import annotations

import tokenizers

from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig
from warmstart.objectives.base import (
    Objective,
    ObjectiveConfig,
    SpecialTokens,
    word_starts,
)

OBJECTIVES = ("mlm", "clm", "electra", "dae")
KINDS = {"mlm": "encoder", "clm": "decoder", "electra": "encoder", "dae": "encoder"}


def make_objective(
    name: str,
    config: TransformerConfig,
    *,
    tokenizer: tokenizers.Tokenizer,
    settings: ObjectiveConfig,
    model: Encoder | Decoder | None = None,
) -> Objective:
    """The objective ``name`` around ``model`` (a fresh one of ``config`` if None)."""
    from warmstart.objectives.clm import CausalLM
    from warmstart.objectives.dae import DenoisingAutoencoder
    from warmstart.objectives.electra import ReplacedTokenDetection
    from warmstart.objectives.mlm import MaskedLM

    if name not in OBJECTIVES:
        raise WarmstartError(f"--objective {name}: unknown; use one of {', '.join(OBJECTIVES)}")
    if model is not None and not isinstance(model, Decoder if name == "clm" else Encoder):
        want = "a decoder (GPT-2 style)" if name == "clm" else "an encoder (BERT style)"
        raise WarmstartError(f"--objective {name} trains {want}, but --init gave the other kind")
    if name == "clm":
        return CausalLM(config, settings=settings, decoder=model)  # type: ignore[arg-type]
    special = SpecialTokens.of(tokenizer)
    encoder: Encoder | None = model  # type: ignore[assignment]
    if name == "dae":
        return DenoisingAutoencoder(config, special=special, settings=settings, encoder=encoder)
    cls = MaskedLM if name == "mlm" else ReplacedTokenDetection
    return cls(
        config, special=special, word_starts=word_starts(tokenizer), settings=settings,
        encoder=encoder,
    )


__all__ = [
    "KINDS", "OBJECTIVES", "Objective", "ObjectiveConfig", "SpecialTokens",
    "make_objective",
]

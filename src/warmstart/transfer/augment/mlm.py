"""Contextual replacement: subword tokens masked and refilled by a warmstart MLM.

The model is an encoder pretrained with ``warmstart pretrain --objective mlm``, whose MLM head
was saved beside it (read by :func:`warmstart.models.io.read_mlm_head`).

    >>> mlm = ContextualMLM("runs/mlm", rate=0.15)                          # doctest: +SKIP
    >>> mlm.augment(["the film was wonderful"], np.random.default_rng(0))  # doctest: +SKIP
    ['the film was superb']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from warmstart.artifact import TOKENIZER_FILE
from warmstart.errors import WarmstartError
from warmstart.transfer.augment.base import Augmenter, check_rate, n_touched


def load_mlm(path: str | os.PathLike[str]) -> tuple[Any, Any, Any]:
    """The encoder, its MLM head and its tokenizer, from a ``--objective mlm`` artifact.

    Refuses, naming the folder and what to use instead, a model without an MLM head: one
    imported from Hugging Face, or pretrained with another objective.
    """
    from warmstart.models.io import HEADS_FILE, load_pretrained, read_mlm_head
    from warmstart.models.transformer import Encoder

    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"--mlm {folder}: no such model folder")
    no_head = WarmstartError(
        f"--mlm {folder}: has no MLM head ({HEADS_FILE} written by `warmstart pretrain "
        f"--objective mlm`), so it cannot fill in masked words; continue its pretraining "
        f"with `warmstart pretrain CORPUS --init {folder} --objective mlm --out DIR` and "
        "give DIR, or augment with word vectors instead (EDA: --vectors)")
    if not (folder / HEADS_FILE).is_file():  # before loading a model that could not be used
        raise no_head
    loaded = load_pretrained(folder)
    encoder = loaded.model
    head = read_mlm_head(folder, encoder) if isinstance(encoder, Encoder) else None
    if head is None:
        raise no_head
    if loaded.tokenizer is None:
        raise WarmstartError(f"--mlm {folder}: the encoder has no {TOKENIZER_FILE}")
    return encoder.eval(), head, loaded.tokenizer


class ContextualMLM(Augmenter):
    """Contextual replacement: refill a share of the tokens with an MLM's guesses.

    In each text ``n_touched(tokens, rate)`` subword tokens (special tokens aside) are
    masked, and each is replaced by a token sampled from the MLM head's ``top_k`` likeliest,
    never a special token nor the original, and a word start for a word start, a continuation
    for a continuation. The rest of the text is kept character for character (replacements
    are placed by the tokenizer's offsets), so spacing and script are preserved. One forward
    pass per ``batch_size`` texts; tokens past ``max_len`` are left alone.

    ``model`` is an encoder artifact from ``warmstart pretrain --objective mlm``
    (see :func:`load_mlm`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        rate: float = 0.15,
        top_k: int = 10,
        batch_size: int = 32,
        max_len: int = 512,
        device: str = "cpu",
    ) -> None:
        from warmstart.objectives.base import SpecialTokens, word_starts

        self.rate = check_rate("mlm_rate", rate)
        if top_k < 1:
            raise WarmstartError(f"--top-k {top_k}: must be at least 1")
        self.top_k, self.batch_size, self.device = top_k, batch_size, torch.device(device)
        encoder, head, tok = load_mlm(model)
        self.encoder, self.head = encoder.to(self.device), head.to(self.device)
        tok.no_padding()
        tok.no_truncation()
        self.tokenizer = tok
        self.special = SpecialTokens.of(tok)
        if self.special.mask is None:
            raise WarmstartError(f"--mlm {model}: the tokenizer has no [MASK] token")
        self.mask_id: int = self.special.mask
        self.max_len = min(max_len, encoder.config.max_positions) - 2
        vocab = encoder.config.vocab_size
        # What each token reads as in text: its piece without ## (WordPiece) or ▁/Ġ marks.
        decode = tok.decoder.decode if tok.decoder is not None else "".join
        pieces = [tok.id_to_token(i) or "" for i in range(vocab)]
        self.surface = [decode([p.removeprefix("##")]).strip() for p in pieces]
        allowed = np.array([bool(s) for s in self.surface])
        allowed[self.special.ids()] = False
        self._allowed = torch.from_numpy(allowed).to(self.device)  # (V,)
        starts = np.ones(vocab, dtype=bool)  # the tokenizer may know fewer tokens than the model
        known = word_starts(tok)[:vocab]
        starts[: len(known)] = known
        self._starts = torch.from_numpy(starts).to(self.device)  # (V,)

    def replacements(
        self, texts: Sequence[str], rng: np.random.Generator
    ) -> list[list[tuple[int, int, str]]]:
        """For each text, the (start, end, new text) of each replaced token, in order."""
        enc = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        specials = set(self.special.ids())
        out: list[list[tuple[int, int, str]]] = [[] for _ in texts]
        picked: list[tuple[int, list[int]]] = []  # (text, token positions) with something to do
        for t, e in enumerate(enc):
            ids, offsets = e.ids[: self.max_len], e.offsets[: self.max_len]
            eligible = [j for j, (i, (a, b)) in enumerate(zip(ids, offsets, strict=True))
                        if i not in specials and b > a]
            n = n_touched(len(eligible), self.rate)
            if n:
                picked.append((t, sorted(rng.choice(eligible, size=n, replace=False).tolist())))
        for start in range(0, len(picked), self.batch_size):
            batch = picked[start : start + self.batch_size]
            rows = [[self.special.cls, *enc[t].ids[: self.max_len], self.special.sep]
                    for t, _ in batch]
            x = torch.full((len(rows), max(map(len, rows))), self.special.pad)  # (B, T)
            for r, row in enumerate(rows):
                x[r, : len(row)] = torch.tensor(row)
            chosen = torch.zeros_like(x, dtype=torch.bool)
            for r, (_, positions) in enumerate(batch):
                chosen[r, [p + 1 for p in positions]] = True  # +1: after [CLS]
            original = x[chosen]  # (N,) in row-major order, as the positions are listed
            x[chosen] = self.mask_id
            new = self._sample(x.to(self.device), chosen.to(self.device),
                               original.to(self.device), rng)
            k = 0
            for t, positions in batch:
                offsets = enc[t].offsets
                for p in positions:
                    out[t].append((*offsets[p], self.surface[new[k]]))
                    k += 1
        return out

    @torch.inference_mode()
    def _sample(self, x: torch.Tensor, chosen: torch.Tensor, original: torch.Tensor,
                rng: np.random.Generator) -> list[int]:
        """One forward pass; a token id drawn from the top-k of each masked position."""
        hidden = self.encoder(x, attention_mask=x != self.special.pad)  # (B, T, C)
        logits = self.head(hidden[chosen]).float()  # (N, V)
        ok = self._allowed[None, :] & (self._starts[None, :] == self._starts[original][:, None])
        ok[torch.arange(len(original)), original] = False
        logits = logits.masked_fill(~ok, float("-inf"))
        top, ids = logits.topk(min(self.top_k, logits.shape[1]), dim=1)  # (N, k)
        probs = torch.softmax(top, dim=1).nan_to_num(0.0).cpu().numpy().astype(np.float64)
        cum = probs.cumsum(axis=1)
        u = rng.random(len(cum)) * cum[:, -1]
        pick = np.minimum((cum < u[:, None]).sum(axis=1), cum.shape[1] - 1)
        return ids.cpu().numpy()[np.arange(len(pick)), pick].tolist()

    def augment(self, texts: Sequence[str], rng: np.random.Generator) -> list[str]:
        if self.rate == 0:
            return list(texts)
        out = []
        for text, spans in zip(texts, self.replacements(texts, rng), strict=True):
            parts, last = [], 0
            for a, b, new in spans:
                parts += [text[last:a], new]
                last = b
            out.append("".join([*parts, text[last:]]))
        return out

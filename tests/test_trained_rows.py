"""Training only the looked-up rows of an embedding table gives the dense table's weights.

The claim of :mod:`warmstart.transfer.trained_rows`: AdamW (the loop's, fused, with weight
decay, a learning-rate schedule and gradient clipping) on the rows that batches look up, plus
the decay row, ends where AdamW on the whole table ends, including every row no batch saw,
and a row outside the set reads what the dense table holds at that step.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from warmstart.labeled import LabeledDataset
from warmstart.transfer.bodies import WordVectorBody
from warmstart.transfer.finetune import finetune
from warmstart.transfer.trained_rows import TrainedRows, train_seen_rows


class Bag(nn.Module):
    def __init__(self, rows: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(rows, 8, padding_idx=0)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids).mean(1))


def _train(model: Bag, batches: list[torch.Tensor], *, check_outside: torch.Tensor) -> list:
    """The loop's optimizer and order of work; the rows of ``check_outside`` read after each
    step (in eval mode, as validation reads them)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.1,
                                  betas=(0.9, 0.98), eps=1e-6, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    reads = []
    for ids in batches:
        model.train()
        target = torch.arange(len(ids)) % 3
        loss = nn.functional.cross_entropy(model(ids), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        model.eval()
        with torch.no_grad():
            reads.append(model.emb(check_outside).clone())
    return reads


def test_training_only_seen_rows_ends_where_the_dense_table_ends() -> None:
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(1, 40, (6, 5), generator=generator) for _ in range(25)]
    batches[0][0, -2:] = 0  # padding
    outside = torch.tensor([[45, 199, 0, 3]])  # rows no batch looks up (3 may be seen)

    dense = Bag(200)
    dense_reads = _train(dense, batches, check_outside=outside)

    sparse = Bag(200)
    seen = torch.unique(torch.cat([b.flatten() for b in batches]))
    with train_seen_rows([(sparse, "emb", seen)]):
        assert isinstance(sparse.emb, TrainedRows)
        assert sparse.emb.weight.shape[0] == len(seen) + 1 < 200  # the seen rows and the decay row
        names = {name for name, _ in sparse.named_parameters()}
        assert "emb.weight" in names  # the optimizer's groups and snapshots see the same name
        sparse_reads = _train(sparse, batches, check_outside=outside)
    assert isinstance(sparse.emb, nn.Embedding)

    # Training moved the weights (so the comparison is not of two untouched tables) ...
    assert (dense.emb.weight - Bag(200).emb.weight)[1:40].abs().max() > 1e-2
    # ... unseen rows only decayed (by a factor well below 1 with this decay) ...
    start = Bag(200).emb.weight.detach()
    ratio = dense.emb.weight.detach()[100:] / start[100:]
    assert float(ratio.std()) < 1e-5 and 0.5 < float(ratio.mean()) < 0.999
    # ... and both ways end in the same table, head and reads along the way.
    torch.testing.assert_close(sparse.emb.weight, dense.emb.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.head.weight, dense.head.weight, rtol=1e-5, atol=1e-6)
    for a, b in zip(sparse_reads, dense_reads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert float(sparse.emb.weight.detach()[0].abs().max()) == 0.0  # the padding row stays 0


def test_a_training_batch_outside_the_rows_is_an_error_not_a_silent_freeze() -> None:
    model = Bag(50)
    with train_seen_rows([(model, "emb", torch.tensor([1, 2, 3]))]):
        model.train()
        with pytest.raises(RuntimeError, match="not among the rows"):
            model(torch.tensor([[1, 7]]))
        model.eval()
        with torch.no_grad():
            assert model(torch.tensor([[1, 7]])).shape == (1, 3)


def test_a_frozen_table_is_left_as_it_is() -> None:
    model = Bag(50)
    model.emb.requires_grad_(False)
    with train_seen_rows([(model, "emb", torch.tensor([1, 2]))]):
        assert isinstance(model.emb, nn.Embedding)


def _texts() -> LabeledDataset:
    words = {"sport": "goal match team coach league win score player season",
             "money": "bank stock market price profit trade shares rate fund"}
    rng = np.random.default_rng(0)
    rows = []
    for label, vocab in words.items():
        pool = vocab.split()
        for _ in range(40):
            rows.append((" ".join(rng.choice(pool, 6)) + f" filler{rng.integers(500)}", label))
    labels = list(words)
    return LabeledDataset(texts=[t for t, _ in rows], y=np.array([labels.index(lab) for _, lab in rows]),
                          labels=labels, multi_label=False, source="generated")


def test_a_word_vector_classifier_trains_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """finetune's word-vector classifier (word and n-gram tables, dev split, best epoch kept):
    the same probabilities with the seen-rows training as with whole tables."""
    data = _texts()
    held_out = ["goal match team unseenword filler999", "bank stock profit filler998"]
    common = dict(progress=False, seed=0, buckets=5_000, dim=16, dropout=0.0)
    fast = finetune(data, **common).classifier  # type: ignore[arg-type]
    monkeypatch.setattr(WordVectorBody, "training_only_seen_rows",
                        lambda self, encoded: contextlib.nullcontext())
    dense = finetune(data, **common).classifier  # type: ignore[arg-type]
    np.testing.assert_allclose(fast.predict_proba(held_out + data.texts[:20]),
                               dense.predict_proba(held_out + data.texts[:20]), atol=1e-5)
    # It learned something to compare (a sport text, a money text; unseen words among them).
    assert list(fast.predict(held_out)) == ["sport", "money"]

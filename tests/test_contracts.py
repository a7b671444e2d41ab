"""One contract per plug-in family, run over every member of it (as optuna tests its samplers).

* bodies: ``describe()`` -> ``Body.from_spec`` gives a body that reads texts as the original;
* augmenters: one text per text, the labels kept, the same copies for the same seed;
* labeled-data readers: every format reads one tiny dataset to the same texts and labels;
* word tokenizers: a list of strings, re-made from ``config()`` alike, lowercasing honoured.

A new member of a family must join its list here: each test checks that its list is complete.
Everything is built in the test (a random tiny encoder, random vectors), so nothing is trained.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import tokenizers
import torch
from safetensors.torch import save_file
from tokenizers import models, pre_tokenizers

from warmstart.labeled import LabeledDataset
from warmstart.labeled_formats import LABELED_FORMATS
from warmstart.models.io import HEADS_FILE, save_model
from warmstart.models.transformer import Encoder, MaskedLMHead, TransformerConfig
from warmstart.tokenize import TOKENIZER_NAMES, make_tokenizer
from warmstart.transfer.augment.base import Augmenter, OneOf
from warmstart.transfer.augment.dataset import augment_dataset
from warmstart.transfer.augment.eda import EDA
from warmstart.transfer.augment.mlm import ContextualMLM
from warmstart.transfer.bodies import BODY_KINDS, Body, EncoderBody, TfidfBody, WordVectorBody
from warmstart.vectors.keyed import KeyedVectors

TEXTS = [
    "a fine film with a fine cast",
    "the plot was dull and the film too long",
    "fine acting , dull plot",
    "an unknown word : zyzzyva",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = sorted({w for t in TEXTS for w in t.split()})


def word_level_tokenizer() -> tokenizers.Tokenizer:
    """A WordPiece-free word-level tokenizer over the words of TEXTS, with BERT's specials."""
    vocab = {t: i for i, t in enumerate([*SPECIALS, *WORDS])}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def tiny_encoder(seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    cfg = TransformerConfig.sized("tiny", vocab_size=len(SPECIALS) + len(WORDS),
                                  max_positions=64, pad_id=0, n_layers=1, hidden=32, ffn=64)
    return Encoder(cfg).eval()


# -- bodies ---------------------------------------------------------------------------------


def make_body(kind: str) -> Body:
    words = make_tokenizer("words", lowercase=True)
    if kind == "encoder":
        return EncoderBody(tiny_encoder(), word_level_tokenizer(), pooling="mean", max_len=32)
    if kind == "words":
        torch.manual_seed(0)
        return WordVectorBody.from_texts(TEXTS, tokenizer=words, dim=8, ngrams=2, buckets=50,
                                         hidden=4, static_dim=8)
    return TfidfBody.from_texts(TEXTS, tokenizer=words, ngrams=2, min_df=1)


BODIES = ["encoder", "words", "tfidf"]


def test_every_body_kind_is_under_contract() -> None:
    assert sorted(BODY_KINDS) == sorted(BODIES)


@pytest.mark.parametrize("kind", BODIES)
def test_body_describe_then_from_spec_reads_texts_alike(kind: str, tmp_path: Path) -> None:
    body = make_body(kind).eval()
    spec = body.describe()
    assert spec["kind"] == kind == body.kind
    json.dumps(spec)  # saved in warmstart.json as it is
    body.save_vocabulary(tmp_path)
    again = Body.from_spec(json.loads(json.dumps(spec)), tmp_path)
    assert type(again) is type(body) and again.describe() == spec
    again.load_state_dict(body.state_dict(), strict=True)  # the weights come from the artifact
    again.eval()
    texts = [*TEXTS, "FINE film !"]
    assert again.encode(texts) == body.encode(texts)
    with torch.no_grad():
        a = body(body.batch(body.encode(texts)))
        b = again(again.batch(again.encode(texts)))
    assert a.shape == (len(texts), body.dim)
    torch.testing.assert_close(a, b)


# -- augmenters -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An encoder artifact with an (untrained) MLM head beside it, as `pretrain` leaves one."""
    folder = tmp_path_factory.mktemp("mlm")
    encoder = tiny_encoder(1)
    save_model(folder, encoder, tokenizer=word_level_tokenizer(), config={})
    head = MaskedLMHead(encoder.config, encoder.tok_emb)
    # Cloned: the head's decoder shares the token embedding, and safetensors stores no aliases.
    tensors = {f"head.{k}": v.detach().clone() for k, v in head.state_dict().items()}
    save_file(tensors, str(folder / HEADS_FILE), metadata={"objective": "mlm"})
    return folder


def make_augmenter(kind: str, mlm_folder: Path) -> Augmenter:
    rng = np.random.default_rng(0)
    vectors = KeyedVectors(WORDS, rng.normal(size=(len(WORDS), 8)).astype(np.float32))
    if kind == "eda_no_synonyms":
        return EDA(sr=0, ri=0, rs=0.3, rd=0.3)
    eda = EDA(synonyms=vectors, sr=0.2, ri=0.2, rs=0.2, rd=0.2)
    if kind == "eda":
        return eda
    mlm = ContextualMLM(mlm_folder, rate=0.3, top_k=5, batch_size=2)
    return mlm if kind == "mlm" else OneOf([eda, mlm])


AUGMENTERS = ["eda", "eda_no_synonyms", "mlm", "one_of"]


def test_every_augmenter_is_under_contract() -> None:
    ours = {c for c in Augmenter.__subclasses__() if c.__module__.startswith("warmstart.")}
    assert ours == {EDA, ContextualMLM, OneOf}  # each made by make_augmenter below


@pytest.mark.parametrize("kind", AUGMENTERS)
def test_augmenter_keeps_labels_returns_texts_and_follows_the_seed(
    kind: str, mlm_folder: Path, tmp_path: Path
) -> None:
    aug = make_augmenter(kind, mlm_folder)
    texts = list(TEXTS)
    out = aug.augment(texts, np.random.default_rng(0))
    assert texts == TEXTS  # the input is left as it was
    assert len(out) == len(texts) and all(isinstance(t, str) and t for t in out)
    assert out == aug.augment(texts, np.random.default_rng(0))
    assert aug.augment([], np.random.default_rng(0)) == []

    src = tmp_path / "train.jsonl"
    labels = [["pos"], ["neg"], ["neg", "pos"], ["neg"]]  # several: in label-map order
    src.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                           for t, y in zip(TEXTS, labels, strict=True)), encoding="utf-8")
    for name in ("a.jsonl", "b.jsonl"):
        augment_dataset(src, out=tmp_path / name, augmenter=aug, copies=2, seed=3, progress=False)
    written = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text("utf-8").splitlines()]
    assert [r["label"] for r in written] == [y for y in labels for _ in range(3)]
    assert [r["text"] for r in written[::3]] == TEXTS
    assert all(isinstance(r["text"], str) and r["text"] for r in written)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


# -- labeled-data readers -------------------------------------------------------------------

EXAMPLES = [("a fine film, truly", "pos"), ("dull \"and\" long", "neg"), ("fine cast", "pos"),
            ("第三部电影", "neg")]


def write_dataset(fmt: str, root: Path) -> tuple[Path, dict[str, str]]:
    """The EXAMPLES in format ``fmt`` under ``root``, and the options that read them."""
    if fmt == "csv":
        rows = "".join(f'"{t.replace(chr(34), 2 * chr(34))}",{y}\n' for t, y in EXAMPLES)
        path = root / "d.csv"
        path.write_text("text,label\n" + rows, encoding="utf-8")
    elif fmt == "tsv":
        path = root / "d.tsv"
        path.write_text("".join(f"{t}\t{y}\n" for t, y in EXAMPLES), encoding="utf-8")
        return path, {"has_header": False, "text_field": "0", "label_field": "1"}
    elif fmt == "jsonl":
        path = root / "d.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write("".join(json.dumps({"review": t, "class": y}) + "\n" for t, y in EXAMPLES))
    elif fmt == "fasttext":
        path = root / "d.txt"  # a .txt file is sniffed: fastText when it starts with __label__
        path.write_text("".join(f"__label__{y} {t}\n" for t, y in EXAMPLES), encoding="utf-8")
    else:
        path = root / "d"
        for i, (t, y) in enumerate(EXAMPLES):
            (path / y).mkdir(parents=True, exist_ok=True)
            (path / y / f"{i}.txt").write_text(t + "\n", encoding="utf-8")
    return path, {}


@pytest.mark.parametrize("fmt", LABELED_FORMATS)
def test_every_format_reads_the_same_examples(fmt: str, tmp_path: Path) -> None:
    path, options = write_dataset(fmt, tmp_path)
    ds = LabeledDataset.read(path, **options)  # type: ignore[arg-type]
    assert ds.labels == ["neg", "pos"] and not ds.multi_label
    got = sorted(zip(ds.texts, (ds.labels[k] for k in ds.y), strict=True))
    assert got == sorted(EXAMPLES)
    named = LabeledDataset.read(path, format=fmt, **options)  # type: ignore[arg-type]
    assert (named.texts, named.y.tolist()) == (ds.texts, ds.y.tolist())


# -- word tokenizers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
def test_every_word_tokenizer_keeps_the_interface(name: str) -> None:
    if name == "jieba":
        pytest.importorskip("jieba")
    text = "Fine FILMS, 好电影/n !"
    tok = make_tokenizer(name, lowercase=True)
    tokens = tok.tokenize(text)
    assert tokens and all(isinstance(t, str) and t and not t.isspace() for t in tokens)
    assert tok.config()["name"] == name == tok.name
    assert make_tokenizer(**tok.config()).tokenize(text) == tokens
    assert tokens == make_tokenizer(name).tokenize(text.lower())
    assert tok.tokenize("") == []

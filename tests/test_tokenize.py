"""Word-level tokenizers (exact worked examples) and subword tokenizers (train, save, load)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import tokenizers

from warmstart import artifact
from warmstart.corpus import Corpus
from warmstart.errors import WarmstartError
from warmstart.tokenize import TOKENIZER_NAMES, Tokenizer, make_tokenizer
from warmstart.tokenize.remembered import remember_tokens, tokens_of
from warmstart.tokenize.subword import (
    SPECIAL_TOKENS,
    SUBWORD_MODELS,
    load_tokenizer,
    train_tokenizer,
)
from warmstart.tokenize.words import JiebaTokenizer

ENGLISH = "Don't stop<br />now: it's state-of-the-art (really)!<br/>Naïve café—done."


def tok(name: str, text: str, **kw: bool) -> list[str]:
    return make_tokenizer(name, **kw).tokenize(text)


# -- word-level: worked examples -----------------------------------------------------------


def test_words_english() -> None:
    assert tok("words", ENGLISH) == [
        "Don't", "stop", "now", ":", "it's", "state-of-the-art", "(", "really", ")", "!",
        "Naïve", "café", "—", "done", ".",
    ]  # fmt: skip


def test_words_lowercase_unicode_and_han_runs() -> None:
    assert tok("words", "The END", lowercase=True) == ["the", "end"]
    assert tok("words", "'quoted' -- e-mail hello_world 42") == [
        "'", "quoted", "'", "-", "-", "e-mail", "hello_world", "42",
    ]  # fmt: skip
    # combining marks stay inside words (Python's \w alone would cut these)
    assert tok("words", "हिन्दी cafe\u0301") == ["हिन्दी", "cafe\u0301"]
    assert tok("words", "我用Python写代码，好！") == ["我用", "Python", "写代码", "，", "好", "！"]


def test_whitespace() -> None:
    assert tok("whitespace", " it 's  a\tgood film . \n") == ["it", "'s", "a", "good", "film", "."]
    assert tok("whitespace", "The END", lowercase=True) == ["the", "end"]
    assert make_tokenizer("whitespace").tokenize is str.split  # the fast path is str.split itself


def test_tagged_peoples_daily() -> None:
    line = "19980101-01-001-002/m  中共中央/nt  总书记/n  、/w  [中央/n  人民/n  广播/vn  电台/n]nt  //w  plain"
    assert tok("tagged", line) == [
        "19980101-01-001-002", "中共中央", "总书记", "、", "中央", "人民", "广播", "电台", "/",
        "plain",
    ]  # fmt: skip
    assert tok("tagged", "ＵＮ/nx  Hello/nx", lowercase=True) == ["ｕｎ", "hello"]


def test_jieba() -> None:
    assert tok("jieba", "我来到北京清华大学") == ["我", "来到", "北京", "清华大学"]
    # mixed text: ASCII words and numbers whole, whitespace dropped
    assert tok("jieba", "我用Python 3写代码") == ["我用", "Python", "3", "写", "代码"]
    assert tok("jieba", "Hello World", lowercase=True) == ["hello", "world"]


def test_jieba_presegmented_passthrough() -> None:
    # whitespace between short Han words: already segmented, not segmented again
    assert tok("jieba", "我 来到 北京清华 大学") == ["我", "来到", "北京清华", "大学"]
    assert tok("jieba", "１２月  ３１日  ，  中共中央  总书记") == [
        "１２月", "３１日", "，", "中共中央", "总书记",
    ]  # fmt: skip
    # raw text with an occasional space (common in reviews) is still segmented
    assert tok("jieba", "很好 ，物流快，价格也便宜") == [
        "很", "好", "，", "物流", "快", "，", "价格", "也", "便宜",
    ]  # fmt: skip


def test_chars() -> None:
    assert tok("chars", "我用Python 3写代码，It's好！") == [
        "我", "用", "Python", "3", "写", "代", "码", "，", "It's", "好", "！",
    ]  # fmt: skip
    assert tok("chars", "ABC中", lowercase=True) == ["abc", "中"]


@pytest.mark.parametrize("name", TOKENIZER_NAMES)
@pytest.mark.parametrize("lowercase", [False, True])
def test_contract(name: str, lowercase: bool) -> None:
    t = make_tokenizer(name, lowercase=lowercase)
    assert isinstance(t, Tokenizer)
    assert t.name == name
    cfg = t.config()
    assert json.loads(json.dumps(cfg)) == cfg == {"name": name, "lowercase": lowercase}
    again = make_tokenizer(**cfg)
    text = "Hello World, 我来到 北京！"
    assert again.tokenize(text) == t.tokenize(text)
    assert t.tokenize("") == []
    assert all(isinstance(s, str) and s and not s.isspace() for s in t.tokenize(text))


def test_bad_tokenizer_name() -> None:
    with pytest.raises(WarmstartError, match="--tokenizer 'spaces'.*words, whitespace"):
        make_tokenizer("spaces")


# -- subword ----------------------------------------------------------------------------------

CHINESE = ["我来到北京清华大学", "北京是中国的首都"] * 3


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small tokenizer artifact per model, trained on the Lee corpus plus some Chinese."""
    root = tmp_path_factory.mktemp("subword")
    texts = [*Corpus(shared_data / "en" / "tiny" / "lee_background.cor"), *CHINESE]
    out = {}
    for model in SUBWORD_MODELS:
        out[model] = root / model
        train_tokenizer(
            texts, out=out[model], model=model, vocab_size=500, progress=False,
            corpus_info={"paths": ["lee_background.cor"]},
        )  # fmt: skip
    return out


@pytest.mark.parametrize("model", SUBWORD_MODELS)
def test_subword_artifact_round_trip(trained: dict[str, Path], model: str) -> None:
    folder = trained[model]
    meta = artifact.read_meta(folder, kind="tokenizer")
    assert meta["config"]["model"] == model and meta["config"]["vocab_size"] == 500
    assert meta["data"] == {"paths": ["lee_background.cor"]}
    tok = load_tokenizer(folder)
    assert [tok.token_to_id(s) for s in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tok.get_vocab_size() <= 500
    text = "The bushfire near Sydney was contained, officials said on Tuesday."
    from_file = load_tokenizer(folder / "tokenizer.json")
    assert tok.encode(text).ids == from_file.encode(text).ids
    # a foreign folder holding just tokenizer.json (e.g. a Hugging Face model folder)
    hf = folder.parent / f"hf-{model}"
    hf.mkdir(exist_ok=True)
    shutil.copy(folder / "tokenizer.json", hf)
    assert load_tokenizer(hf).encode(text).ids == tok.encode(text).ids


def test_wordpiece_specials_and_cjk(trained: dict[str, Path]) -> None:
    tok = load_tokenizer(trained["wordpiece"])
    enc = tok.encode("the fire")
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.ids[0] == 2 and enc.ids[-1] == 3
    pair = tok.encode("the fire", "was out")
    assert pair.type_ids[-1] == 1 and pair.tokens.count("[SEP]") == 2
    assert tok.encode("北京大学").tokens == ["[CLS]", "北", "京", "大", "学", "[SEP]"]


def test_bpe_decodes_what_it_encodes(trained: dict[str, Path]) -> None:
    tok = load_tokenizer(trained["bpe"])
    for text in ["Fire crews battled the blaze.", "Zürich ✓ 北京大学 {weird} tokens"]:
        enc = tok.encode(text)
        assert 1 not in enc.ids  # byte-level: nothing is unknown
        assert tok.decode(enc.ids) == text


def test_unigram_decodes_known_text(trained: dict[str, Path]) -> None:
    tok = load_tokenizer(trained["unigram"])
    assert tok.decode(tok.encode("the fire was out").ids) == "the fire was out"


def test_subword_lowercase(tmp_path: Path) -> None:
    tok = train_tokenizer(
        ["Hello HELLO hello World"] * 5, out=tmp_path / "t", model="wordpiece",
        vocab_size=60, lowercase=True, progress=False,
    )  # fmt: skip
    assert tok.encode("HELLO").tokens == ["[CLS]", "hello", "[SEP]"]
    assert artifact.read_meta(tmp_path / "t")["config"]["lowercase"] is True


def test_subword_corpus_provenance(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("some words here\n" * 10)
    corpus = Corpus(tmp_path / "a.txt")
    train_tokenizer(corpus, out=tmp_path / "t", vocab_size=50, progress=False)
    assert artifact.read_meta(tmp_path / "t")["data"] == corpus.describe()


def test_subword_errors(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match="--model 'sentencepiece'.*bpe, wordpiece, unigram"):
        train_tokenizer(["x"], out=tmp_path / "t", model="sentencepiece")
    with pytest.raises(WarmstartError, match="--vocab-size"):
        train_tokenizer(["x"], out=tmp_path / "t", vocab_size=3)
    with pytest.raises(WarmstartError, match="no texts"):
        train_tokenizer([], out=tmp_path / "t", progress=False)
    assert not (tmp_path / "t").exists()


def test_subword_corpus_error_surfaces(tmp_path: Path) -> None:
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\0" * 100)
    with pytest.raises(WarmstartError, match="looks binary"):
        train_tokenizer(Corpus(binary), out=tmp_path / "t", progress=False)
    assert not (tmp_path / "t").exists()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(WarmstartError, match="no such file"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmstartError, match="no tokenizer.json"):
        load_tokenizer(tmp_path / "empty")
    vectors = tmp_path / "vecs"
    vectors.mkdir()
    artifact.write_meta(vectors, kind="vectors", config={})
    with pytest.raises(WarmstartError, match="'vectors' artifact without a tokenizer.json"):
        load_tokenizer(vectors)
    junk = tmp_path / "tokenizer.json"
    junk.write_text("{not a tokenizer")
    with pytest.raises(WarmstartError, match="not a valid Hugging Face tokenizer.json"):
        load_tokenizer(junk)


def test_returns_hf_tokenizer(trained: dict[str, Path]) -> None:
    assert isinstance(load_tokenizer(trained["bpe"]), tokenizers.Tokenizer)


class _CountingJieba(JiebaTokenizer):
    """jieba that counts the texts it segments."""

    def __init__(self, *, lowercase: bool = False) -> None:
        super().__init__(lowercase=lowercase)
        self.calls = 0

    def tokenize(self, text: str) -> list[str]:
        self.calls += 1
        return super().tokenize(text)


def test_remember_tokens_splits_each_text_once_inside_the_block() -> None:
    texts = ["我来到北京清华大学", "很好 ，物流快，价格也便宜", "我来到北京清华大学"]
    plain = [make_tokenizer("jieba").tokenize(t) for t in texts]
    first, second, lower = _CountingJieba(), _CountingJieba(), _CountingJieba(lowercase=True)
    with remember_tokens():
        assert [tokens_of(first, t) for t in texts] == plain
        assert first.calls == 2  # the repeated text was read back
        # another tokenizer of the same name and case reads what the first one split ...
        assert [tokens_of(second, t) for t in texts] == plain and second.calls == 0
        # ... one that lowercases does not
        assert tokens_of(lower, "Hello World") == ["hello", "world"] and lower.calls == 1
        got = tokens_of(first, texts[0])
        got.append("changed")  # the caller's copy: what is remembered stays
        assert tokens_of(first, texts[0]) == plain[0]
    # outside the block every call splits again
    assert [tokens_of(first, t) for t in texts] == plain and first.calls == 5
    with remember_tokens(max_texts=1):  # bounded: texts beyond the first are split each time
        for _ in range(3):
            assert [tokens_of(second, t) for t in texts[:2]] == plain[:2]
        assert second.calls == 1 + 3


def test_bodies_read_the_same_tokens_with_and_without_remembering() -> None:
    from warmstart.transfer.bodies import TfidfBody, WordVectorBody

    texts = ["我来到北京清华大学", "很好 ，物流快，价格也便宜", "物流快 很好", "价格 便宜"] * 3
    tok = make_tokenizer("jieba")

    def build() -> tuple[list[str], list[object], list[list[str]]]:
        words = WordVectorBody.from_texts(texts, tokenizer=tok, dim=4)
        tfidf = TfidfBody.from_texts(texts, tokenizer=tok, ngrams=2, min_df=1)
        return words.words, words.encode(texts), [tfidf.terms(t) for t in texts]

    without = build()
    with remember_tokens():
        assert build() == without

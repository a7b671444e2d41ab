"""Corpus: formats, compression, folders and globs, restartability, and every user error."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import write

from warmstart import artifact, textfiles
from warmstart import corpus as corpus_mod
from warmstart.corpus import (
    MAX_DOC_CHARS,
    Corpus,
    InvalidUTF8Warning,
    LongLineWarning,
    split_long,
    text_batches,
)
from warmstart.errors import WarmstartError

DOCS = ["first document here", "second one, with ünïcödé", "third 第三"]



def raises_user_error(match: str) -> Any:
    """``pytest.raises(WarmstartError, match=...)``."""
    return pytest.raises(WarmstartError, match=match)


# -- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz", ".txt.bz2", ".txt.xz", ""])
def test_txt_plain_and_compressed(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"docs{suffix}", "\n".join(DOCS) + "\n")
    assert list(Corpus(path)) == DOCS


def test_txt_skips_blank_lines_and_strips_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "\ufeffone\r\n\r\n   \n\t\ntwo  \nthree")
    # the BOM goes, trailing spaces inside a line stay, a missing final newline is fine
    assert list(Corpus(path)) == ["one", "two  ", "three"]


def test_jsonl_text_field(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "body": d}, ensure_ascii=False) for i, d in enumerate(DOCS)]
    path = write(tmp_path / "a.jsonl.gz", "\n".join(lines[:2]) + "\n\n" + lines[2] + "\n")
    assert list(Corpus(path, text_field="body")) == DOCS
    ndjson = write(tmp_path / "b.ndjson", lines[0] + "\n")
    assert list(Corpus(ndjson, text_field="body")) == DOCS[:1]


def test_csv_named_column_with_quoting(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        'label,text\npos,"hello, world"\nneg,"said ""hi""\nover two lines"\n\npos,plain\n',
    )
    assert list(Corpus(path)) == ["hello, world", 'said "hi"\nover two lines', "plain"]


def test_tsv_named_column_without_quote_processing(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv.gz", 'label\ttext\npos\t"quoted" start\nneg\tit"s odd\n')
    assert list(Corpus(path)) == ['"quoted" start', 'it"s odd']


def test_headerless_tsv_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "a news story\tWorld\nanother one\tSports\n")
    assert list(Corpus(path, has_header=False, text_field="0")) == ["a news story", "another one"]
    assert list(Corpus(path, has_header=False, text_field="1")) == ["World", "Sports"]


def test_long_csv_field(tmp_path: Path) -> None:
    long = "word " * 100_000  # beyond the csv module's default 128 KiB field limit
    path = write(tmp_path / "a.csv", f"text\n{long}\n")
    with pytest.warns(LongLineWarning, match=r"a\.csv \(1\)"):
        pieces = list(Corpus(path))
    assert "".join(pieces) == long  # read whole, then cut into documents
    assert len(pieces) == 5 and all(len(p) <= MAX_DOC_CHARS for p in pieces)


# -- folders, globs, restartability, provenance --------------------------------------------


def test_folder_recursive_sorted_known_suffixes(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "b\n")
    write(tmp_path / "a.txt.gz", "a\n")
    write(tmp_path / "sub" / "c.jsonl", '{"text": "c"}\n')
    write(tmp_path / "sub" / "notes.md", "ignored: unknown suffix in a folder\n")
    write(tmp_path / ".hidden" / "d.txt", "ignored: hidden\n")
    corpus = Corpus(tmp_path)
    assert [p.name for p in corpus.files] == ["a.txt.gz", "b.txt", "c.jsonl"]
    assert list(corpus) == ["a", "b", "c"]


def test_globs_and_lists(tmp_path: Path) -> None:
    for name in ["x1.txt", "x2.txt", "y.txt", "deep/x3.txt"]:
        write(tmp_path / name, name + "\n")
    assert list(Corpus(str(tmp_path / "x?.txt"))) == ["x1.txt", "x2.txt"]
    assert list(Corpus(str(tmp_path / "**" / "x*.txt"))) == ["deep/x3.txt", "x1.txt", "x2.txt"]
    # argument order is kept; a file named twice is read once
    both = Corpus([tmp_path / "y.txt", str(tmp_path / "x[12].txt"), tmp_path / "x1.txt"])
    assert list(both) == ["y.txt", "x1.txt", "x2.txt"]


def test_named_file_with_unknown_suffix_is_text(tmp_path: Path) -> None:
    path = write(tmp_path / "news.cor", "one\ntwo\n")
    assert list(Corpus(path)) == ["one", "two"]


def test_restartable(tmp_path: Path) -> None:
    corpus = Corpus(write(tmp_path / "a.txt.gz", "\n".join(DOCS)))
    first = iter(corpus)
    assert next(first) == DOCS[0]
    assert list(corpus) == DOCS  # a second pass, started while the first is open
    assert list(first) == DOCS[1:]
    assert list(corpus) == list(corpus)


def test_describe(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x\n")
    info = Corpus(str(path)).describe()
    assert info["paths"] == [str(path)]
    assert info["fingerprint"] == artifact.file_fingerprint([str(path)])
    json.dumps(info)


def test_real_lee_corpus(shared_data: Path) -> None:
    corpus = Corpus(shared_data / "en" / "tiny" / "lee_background.cor")
    docs = list(corpus)
    assert len(docs) == 300
    assert docs[0].startswith("Hundreds of people have been forced to vacate their homes")
    assert corpus.n_invalid_utf8 == 0


# -- user errors -----------------------------------------------------------------------------


def test_missing_path_and_empty_glob_fail_at_construction(tmp_path: Path) -> None:
    with raises_user_error(re.escape(str(tmp_path / "nope.txt")) + ": no such file"):
        Corpus(tmp_path / "nope.txt")
    with raises_user_error(re.escape(str(tmp_path / "*.txt")) + ": no files match"):
        Corpus(str(tmp_path / "*.txt"))
    with raises_user_error("no input paths"):
        Corpus([])


def test_folder_without_text_files(tmp_path: Path) -> None:
    write(tmp_path / "data" / "image.png", b"\x89PNG")
    with raises_user_error(re.escape(str(tmp_path / "data")) + ": folder has no readable text files"):
        Corpus(tmp_path / "data")


def test_binary_file(tmp_path: Path) -> None:
    path = write(tmp_path / "model.bin", b"\x00\x01\x02" * 100)
    with raises_user_error(re.escape(str(path)) + ": looks binary"):
        list(Corpus(path))
    utf16 = write(tmp_path / "u16.txt.gz", "hello\n".encode("utf-16"))
    with raises_user_error(re.escape(str(utf16)) + ": looks binary"):
        list(Corpus(utf16))


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_corrupt_compressed_file(tmp_path: Path, suffix: str) -> None:
    good = write(tmp_path / f"good.txt{suffix}", "some text\n" * 5000)
    bad = tmp_path / f"bad.txt{suffix}"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated
    with raises_user_error(re.escape(str(bad)) + ": corrupt or truncated compressed file"):
        list(Corpus(bad))
    garbage = tmp_path / f"garbage.txt{suffix}"
    garbage.write_bytes(b"this is not compressed at all\n" * 10)
    with raises_user_error(re.escape(str(garbage)) + ": corrupt or truncated"):
        list(Corpus(garbage))


def test_empty_corpus(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "\n  \n")
    write(tmp_path / "b.jsonl", "")
    with raises_user_error("no text found in .*2 file"):
        list(Corpus([tmp_path / "a.txt", tmp_path / "b.jsonl"]))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"body": "x"}', r"no field 'text' \(fields: body\)"),
        ('{"text": 3}', "field 'text' holds int"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "a.jsonl", '{"text": "ok"}\n\n' + line + "\n")
    with raises_user_error(re.escape(f"{path}:3: ") + message):
        list(Corpus(path))


def test_table_missing_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "sentence\tlabel\nfine\t1\n")
    with raises_user_error(re.escape(f"{path}:1: no column 'text'") + r".*columns: sentence, label"):
        list(Corpus(path))
    assert list(Corpus(path, text_field="sentence")) == ["fine"]


def test_table_short_row_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "label,text\npos,fine\nneg\n")
    with raises_user_error(re.escape(f"{path}:3: row has 1 column")):
        list(Corpus(path))


def test_headerless_needs_index(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "text\tlabel\n")
    with raises_user_error(re.escape(str(path)) + ".*text_field"):
        Corpus(path, has_header=False)
    # a text file does not care about has_header
    assert list(Corpus(write(tmp_path / "b.txt", "x\n"), has_header=False)) == ["x"]


def test_invalid_utf8_replaced_counted_and_warned_once(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", b"caf\xe9 ok\nfine \xef\xbf\xbd real\nbad \xff\xfe end\n")
    b = write(tmp_path / "b.txt.gz", b"clean\n")
    corpus = Corpus([a, b])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(corpus)
    assert docs == ["caf\ufffd ok", "fine \ufffd real", "bad \ufffd\ufffd end", "clean"]
    assert corpus.n_invalid_utf8 == 3  # the genuine U+FFFD is not counted
    assert len(caught) == 1
    assert issubclass(caught[0].category, InvalidUTF8Warning)
    text = str(caught[0].message)
    assert "3 invalid UTF-8" in text and str(a) in text and "--strict" in text
    assert str(b) not in text


def test_invalid_utf8_strict(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"text\nok\nbad \xff\n")
    with raises_user_error(re.escape(f"{path}:3: invalid UTF-8")):
        list(Corpus(path, strict=True))


# -- long lines: memory bounded by MAX_DOC_CHARS, not by the longest line -------------------------


def imdb_one_line(shared_data: Path, n_chars: int) -> str:
    """IMDB unlabeled reviews joined by spaces into one line of about ``n_chars`` characters."""
    reviews, n = [], 0
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        for review in f:
            reviews.append(review.strip())
            n += len(reviews[-1]) + 1
            if n >= n_chars:
                break
    return " ".join(reviews)


def read_warned(corpus: Corpus) -> tuple[list[str], list[warnings.WarningMessage]]:
    """All documents of one pass, and the long-line warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(corpus)
    return docs, [w for w in caught if issubclass(w.category, LongLineWarning)]


def test_one_long_line_becomes_documents_cut_at_whitespace(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 20_000
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", limit)
    line = imdb_one_line(shared_data, 3_000_000)  # 3 MB: several 1 MiB read blocks
    path = write(tmp_path / "dump.txt", line + "\n")
    corpus = Corpus(path)
    for _ in range(2):  # one warning in each pass
        docs, warned = read_warned(corpus)
        assert len(warned) == 1
        message = str(warned[0].message)
        assert f"{path} (1)" in message and "split 1 line(s) longer than 20,000 characters" in message
    assert corpus.n_split_lines == 1
    assert "".join(docs) == line  # nothing lost: each piece keeps the space it was cut after
    assert all(len(d) <= limit for d in docs)
    assert all(d[-1].isspace() for d in docs[:-1])  # English text: always cut at a space ...
    assert all(len(d) >= 0.9 * limit for d in docs[:-1])  # ... near the limit
    assert len(docs) < 1.12 * len(line) / limit


@pytest.mark.parametrize("suffix", [".txt", ".txt.gz", ".txt.bz2", ".txt.xz", ".jsonl", ".csv"])
def test_every_format_cuts_long_text_and_keeps_short_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 1000)
    monkeypatch.setattr(textfiles, "_READ_BLOCK", 777)  # blocks end inside lines and characters
    long = " ".join(f"wörd{i} 第{i}" for i in range(1500))  # non-ASCII across the block ends
    docs = ["short one", long, "short two", long + " again"]
    if suffix == ".jsonl":
        text = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs)
    elif suffix == ".csv":
        text = "text\n" + "".join(f'"{d}"\r\n' for d in docs)
    else:
        text = "\r\n".join(docs)  # no line break at the end of the file
    path = write(tmp_path / f"a{suffix}", text)
    got, warned = read_warned(Corpus(path))
    assert len(warned) == 1 and f"a{suffix} (2)" in str(warned[0].message)
    assert got[0] == "short one" and "short two" in got
    i = got.index("short two")
    assert "".join(got[1:i]) == long and "".join(got[i + 1 :]) == docs[3]
    assert all(len(d) <= 1000 for d in got)


def test_text_without_spaces_is_cut_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 300)
    monkeypatch.setattr(textfiles, "_READ_BLOCK", 1000)  # not a multiple of 3 UTF-8 bytes
    han = "".join(chr(0x4E00 + i % 2000) for i in range(10_000))
    path = write(tmp_path / "zh.txt", f"{han}\n短\n")
    docs, warned = read_warned(Corpus(path))
    assert len(warned) == 1
    assert [len(d) for d in docs] == [300] * 33 + [100, 1]
    assert "".join(docs[:-1]) == han and docs[-1] == "短"


def test_normal_lines_are_read_as_before(shared_data: Path) -> None:
    with gzip.open(shared_data / "en" / "imdb" / "unsup.txt.gz", "rt", encoding="utf-8") as f:
        expected = [line.rstrip("\n") for line in itertools.islice(f, 3000)]
    path = shared_data / "en" / "imdb" / "unsup.txt.gz"
    docs, warned = read_warned(Corpus(path))
    assert docs[:3000] == expected and not warned


def test_invalid_utf8_across_block_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 50)
    monkeypatch.setattr(textfiles, "_READ_BLOCK", 7)
    raw = "é".encode() * 40 + b"\xff" + "ü".encode() * 10 + b"\xe4\n"  # truncated at the end
    path = write(tmp_path / "a.txt", raw)
    corpus = Corpus(path)
    with pytest.warns(InvalidUTF8Warning), pytest.warns(LongLineWarning):
        docs = list(corpus)
    assert "".join(docs) == raw.decode("utf-8", "replace").rstrip("\n")
    assert corpus.n_invalid_utf8 == 2
    # strict mode names the byte within the whole line, not within a block
    with raises_user_error(re.escape(f"{path}:1: invalid UTF-8 at byte 81 of the line")):
        list(Corpus(path, strict=True))


def test_reading_a_long_line_does_not_hold_it(tmp_path: Path) -> None:
    size = 20_000_000
    sentence = b"a plain sentence of words, repeated until the line is long enough "
    path = tmp_path / "one-line.txt"
    path.write_bytes(sentence * (size // len(sentence)) + b"\n")
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LongLineWarning)
            longest = max(map(len, Corpus(path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert longest <= MAX_DOC_CHARS
    assert peak < size / 2  # about a 1 MiB read block at a time; the old reader took 5x the line


def test_split_long_and_text_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(split_long("one two three", 8)) == ["one two ", "three"]
    assert list(split_long("abcdefghij", 4)) == ["abcd", "efgh", "ij"]
    assert list(split_long("short", 8)) == ["short"]
    monkeypatch.setattr(corpus_mod, "MAX_DOC_CHARS", 10)
    texts = ["a" * 25, "b", "c", "d", "e" * 9]
    batches = list(text_batches(texts, max_docs=3, max_chars=12))
    assert batches == [["a" * 10, "a" * 10], ["a" * 5, "b", "c"], ["d", "e" * 9]]

"""Fuzzing the corpus reader: every suffix and compression, through the public Corpus API.

Two properties: files written by the standard library's own writers (one document per line,
JSON Lines, csv) come back as the documents written; and any bytes at all, under any suffix,
read to documents or to a WarmstartError that names the file.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import pytest
from fuzzkit import (
    COMPRESSION_SUFFIXES,
    budget,
    cited_lines,
    compress,
    maybe_mutated,
    mutated,
    user_error,
    utf8_text,
    workdir,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from warmstart.corpus import Corpus
from warmstart.errors import WarmstartError

SUFFIXES = (".txt", ".jsonl", ".ndjson", ".csv", ".tsv", ".cor")
FIELDS = ("text", "body", "0", "1", "-1", "01", "", " text", "\u00b2", "\u0663")


def blank(doc: str) -> bool:
    return not doc or doc.isspace()


def read_all(corpus: Corpus) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(corpus)


# -- round trips ---------------------------------------------------------------------------


@st.composite
def written(draw: st.DrawFn) -> tuple[str, bytes, list[str], str]:
    """(suffix, file bytes, the documents a reader must find, text field) by a stdlib writer."""
    fmt = draw(st.sampled_from(("txt", "jsonl", "csv", "tsv")))
    docs = draw(st.lists(utf8_text, min_size=1, max_size=8))
    field = "text"
    if fmt == "txt":
        # one document per line: no line break inside, none at the end, no BOM first
        docs = [d for d in docs if "\n" not in d and "\x00" not in d]
        docs = [d.rstrip("\r") for d in docs]
        if docs and docs[0].startswith("\ufeff"):
            docs[0] = docs[0].lstrip("\ufeff")
        body = "".join(d + draw(st.sampled_from(("\n", "\r\n"))) for d in docs)
    elif fmt == "jsonl":
        docs = [d for d in docs if "\x00" not in d]
        field = draw(st.sampled_from(("text", "body", "")))
        ascii_ = draw(st.booleans())
        body = "".join(json.dumps({"id": i, field: d}, ensure_ascii=ascii_) + "\n"
                       for i, d in enumerate(docs))
    elif fmt == "csv":
        docs = [d for d in docs if "\x00" not in d]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        writer.writerows([i, d] for i, d in enumerate(docs))
        body = out.getvalue()
    else:  # TSV is read without quote processing: no tab or line break inside a document
        docs = [d for d in docs if not set(d) & {"\t", "\n", "\r", "\x00"}]
        body = "id\ttext\n" + "".join(f"{i}\t{d}\n" for i, d in enumerate(docs))
    return f".{fmt}", body.encode("utf-8"), [d for d in docs if not blank(d)], field


@given(written(), st.sampled_from(COMPRESSION_SUFFIXES))
@budget(40)
def test_documents_come_back_as_written(case: tuple[str, bytes, list[str], str], zsuffix: str) -> None:
    suffix, data, docs, field = case
    with workdir() as d:
        path = d / f"docs{suffix}{zsuffix}"
        path.write_bytes(compress(data, zsuffix))
        corpus = Corpus(path, text_field=field)
        if not docs:
            try:
                read_all(corpus)
            except WarmstartError as e:
                user_error(e, path)
                return
            raise AssertionError("a file without documents read without an error")
        assert read_all(corpus) == docs
        assert read_all(corpus) == docs  # restartable: a second pass reads the same


# -- any bytes -----------------------------------------------------------------------------


@st.composite
def corpus_bytes(draw: st.DrawFn, suffix: str) -> bytes:
    """Bytes that look more or less like a file of ``suffix``, often damaged."""
    docs = draw(st.lists(utf8_text, max_size=6))
    if suffix in (".jsonl", ".ndjson"):
        values = st.one_of(st.builds(lambda k, v: {k: v}, st.sampled_from(("text", "body")),
                                     st.none() | st.integers() | utf8_text | st.lists(st.integers())),
                           st.integers(), st.lists(st.integers(), max_size=2), utf8_text)
        lines = [json.dumps({"text": doc}) for doc in docs]
        lines += [json.dumps(v) for v in draw(st.lists(values, max_size=3))]
        lines = draw(st.permutations(lines))
        body = "\n".join(lines)
    elif suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        header = draw(st.sampled_from(("text", "id,text", "text\tid", "", "a,b,c")))
        body = header + "\n" + "\n".join(sep.join(doc.split(sep)[:3]) for doc in docs)
    else:
        body = "\n".join(docs)
    return draw(maybe_mutated(body.encode("utf-8")))


@st.composite
def corpus_case(draw: st.DrawFn) -> tuple[str, str, bytes, bool]:
    suffix = draw(st.sampled_from(SUFFIXES))
    zsuffix = draw(st.sampled_from(COMPRESSION_SUFFIXES))
    data = compress(draw(corpus_bytes(suffix)), zsuffix)
    corrupt = draw(st.booleans()) if zsuffix else False
    if corrupt:  # damage the compressed stream itself
        data = draw(mutated(data, max_ops=2))
    return suffix, zsuffix, data, corrupt


@given(corpus_case(), st.sampled_from(FIELDS) | st.text(max_size=4), st.booleans(),
       st.booleans(), st.sampled_from(("file", "folder", "glob")))
@budget(60)
def test_any_bytes_read_or_fail_naming_the_file(case: tuple[str, str, bytes, bool], field: str,
                                                has_header: bool, strict: bool, how: str) -> None:
    suffix, zsuffix, data, _ = case
    # known, and kept by test_digit_like_text_field_without_header until corpus.py is fixed
    assume(has_header or not field.isdigit() or field.isascii())
    with workdir() as d:
        path = d / "in" / f"docs{suffix}{zsuffix}"
        path.parent.mkdir()
        path.write_bytes(data)
        arg: Path | str = {"file": path, "folder": path.parent,
                           "glob": str(path.parent / "*")}[how]
        try:
            docs = read_all(Corpus(arg, text_field=field, has_header=has_header, strict=strict))
        except WarmstartError as e:
            message = user_error(e, path, arg)
            n_lines = data.count(b"\n") + 1 if not zsuffix else None
            for line in cited_lines(message, path):
                assert line >= 1 and (n_lines is None or line <= n_lines), message
            return
        assert docs and all(isinstance(doc, str) and not blank(doc) for doc in docs)


@given(st.binary(max_size=64), st.sampled_from(SUFFIXES), st.sampled_from(COMPRESSION_SUFFIXES))
@budget(30)
def test_random_bytes(data: bytes, suffix: str, zsuffix: str) -> None:
    """Bytes that are not even meant to be text (a compressed suffix on raw bytes too)."""
    with workdir() as d:
        path = d / f"x{suffix}{zsuffix}"
        path.write_bytes(data)
        try:
            docs = read_all(Corpus(path))
        except WarmstartError as e:
            user_error(e, path)
            return
        assert docs and all(isinstance(doc, str) and not blank(doc) for doc in docs)


# Found by the campaign: without a header, --text-field was checked with str.isdigit(), which
# '²' and '①' pass and int() then refuses (ValueError).
@pytest.mark.parametrize("field", ["\u00b2", "\u2460"])
def test_digit_like_text_field_without_header(tmp_path: Path, field: str) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("a,b\nx,y\n", encoding="utf-8")
    with pytest.raises(WarmstartError) as e:
        read_all(Corpus(path, text_field=field, has_header=False))
    user_error(e.value, path)

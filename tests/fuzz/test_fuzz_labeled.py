"""Fuzzing the labeled-data reader: CSV, TSV, JSONL, fastText, class folders, compressed.

Properties: examples written by the standard library's writers in each format read back as
written (texts and label sets); and damaged files, odd options and label maps give a
dataset or a WarmstartError naming the file (and a line that exists).
"""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzkit import (
    COMPRESSION_SUFFIXES,
    budget,
    cited_lines,
    compress,
    maybe_mutated,
    user_error,
    utf8_text,
    workdir,
)
from hypothesis import example, given
from hypothesis import strategies as st

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset

FORMATS = ("csv", "tsv", "jsonl", "fasttext", "folder")
SUFFIX = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "fasttext": ".ft", "folder": ""}


def read(path: Path, **kw: Any) -> LabeledDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LabeledDataset.read(path, **kw)


def names_of(ds: LabeledDataset, i: int) -> set[str]:
    if ds.multi_label:
        return {ds.labels[k] for k in np.flatnonzero(ds.y[i])}
    return {ds.labels[int(ds.y[i])]}


def check_dataset(ds: LabeledDataset, labels: list[str] | None) -> None:
    assert len(ds.texts) == len(ds.y) > 0
    assert all(isinstance(t, str) and t.strip() for t in ds.texts)
    if ds.multi_label:
        assert ds.y.shape == (len(ds.texts), len(ds.labels))
    else:
        assert ds.y.ndim == 1 and 0 <= ds.y.min() and ds.y.max() < len(ds.labels)
    if labels is not None:
        assert ds.labels == labels


# -- round trips ---------------------------------------------------------------------------

# Label names every format can hold: no whitespace (fastText), not starting with a dot or
# "unsup" (folders), no path separator.
label_names = st.text(st.characters(codec="utf-8", exclude_characters="/\\\x00"),
                      min_size=1, max_size=6).filter(
    lambda s: not re.search(r"\s", s) and not s.startswith(".") and s.strip() == s
    and s.lower() not in ("unsup", "unlabeled", "unlabelled", "..") and s.isprintable())


@st.composite
def examples(draw: st.DrawFn, fmt: str) -> list[tuple[str, list[str]]]:
    multi = fmt in ("jsonl", "fasttext") and draw(st.booleans())
    pool = draw(st.lists(label_names, min_size=1, max_size=4, unique=True))
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        text = draw(utf8_text.filter(lambda t: t.strip() and "\x00" not in t))
        if fmt == "tsv":
            text = re.sub(r"[\t\n\r]", " ", text)
        elif fmt == "fasttext":  # one line; the text starts after the labels' whitespace
            text = re.sub(r"[\n\r]", " ", text).strip()
            if text.startswith("__label__"):
                text = "x" + text
        elif fmt == "folder":
            text = text.strip()
        if not text.strip():
            text = "x"
        k = draw(st.integers(1, len(pool))) if multi else 1
        rows.append((text, draw(st.permutations(pool)).__getitem__(slice(k))))
    return rows


def write_examples(folder: Path, fmt: str, rows: list[tuple[str, list[str]]], zsuffix: str) -> Path:
    if fmt == "folder":
        root = folder / "data"
        for i, (text, labels) in enumerate(rows):
            sub = root / labels[0]
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:03d}.txt{zsuffix}").write_bytes(compress(text.encode(), zsuffix))
        return root
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["text", "label"])
        writer.writerows([t, ls[0]] for t, ls in rows)
        body = out.getvalue()
    elif fmt == "tsv":
        body = "text\tlabel\n" + "".join(f"{t}\t{ls[0]}\n" for t, ls in rows)
    elif fmt == "jsonl":
        body = "".join(json.dumps({"text": t, "label": ls if len(ls) > 1 else ls[0]},
                                  ensure_ascii=False) + "\n" for t, ls in rows)
    else:
        body = "".join(" ".join(f"__label__{x}" for x in ls) + f" {t}\n" for t, ls in rows)
    path = folder / f"data{SUFFIX[fmt]}{zsuffix}"
    path.write_bytes(compress(body.encode("utf-8"), zsuffix))
    return path


@st.composite
def formats_and_examples(draw: st.DrawFn) -> tuple[str, list[tuple[str, list[str]]]]:
    fmt = draw(st.sampled_from(FORMATS))
    rows = draw(examples(fmt))
    if fmt == "folder":  # one document per file: folder names must differ by more than case
        seen: dict[str, str] = {}
        rows = [(t, [seen.setdefault(ls[0].casefold(), ls[0])]) for t, ls in rows]
    return fmt, rows


@given(formats_and_examples(), st.sampled_from(COMPRESSION_SUFFIXES))
@budget(40)
def test_examples_come_back_as_written(case: tuple[str, list[tuple[str, list[str]]]],
                                       zsuffix: str) -> None:
    fmt, rows = case
    with workdir() as d:
        path = write_examples(d, fmt, rows, zsuffix)
        ds = read(path)
        check_dataset(ds, None)
        got = [(t, names_of(ds, i)) for i, t in enumerate(ds.texts)]
        want = [(t.strip() if fmt == "folder" else t, set(ls)) for t, ls in rows]
        if fmt == "folder":  # read class by class, file by file
            want = sorted(want, key=lambda r: (min(r[1]), ))
            got = sorted(got, key=lambda r: (min(r[1]), ))
        assert got == want
        # the same file read with its own label map gives the same dataset
        again = read(path, labels=ds.labels, multi_label=ds.multi_label)
        assert again.texts == ds.texts and np.array_equal(again.y, ds.y)


# -- damaged files and odd options -----------------------------------------------------------


@st.composite
def labeled_bytes(draw: st.DrawFn, fmt: str) -> bytes:
    """A file of ``fmt`` with plausible and implausible rows, often damaged."""
    rows = draw(st.lists(st.tuples(utf8_text, utf8_text), max_size=6))
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        header = draw(st.sampled_from(("text{s}label", "label{s}text", "sentence{s}class",
                                       "text{s}sentence{s}label", "", "a", "0{s}1")))
        lines = [header.format(s=sep)] + [f"{t}{sep}{lab}" for t, lab in rows]
    elif fmt == "jsonl":
        label_values = (utf8_text | st.integers() | st.booleans() | st.none()
                        | st.lists(utf8_text | st.integers() | st.floats(), max_size=3)
                        | st.dictionaries(utf8_text, st.integers(), max_size=2))
        keys = st.sampled_from(("text", "label", "labels", "sentence", "review", "class", "x"))
        objs = draw(st.lists(st.dictionaries(keys, label_values, max_size=4), max_size=4))
        lines = [json.dumps({"text": t, "label": lab}) for t, lab in rows]
        lines += [json.dumps(o) for o in objs] + draw(st.lists(st.sampled_from(
            ("[]", "1", '"x"', "null", "{", '{"text": "a", "label": NaN}')), max_size=2))
        lines = draw(st.permutations(lines))
    else:  # fastText
        lines = [f"__label__{lab} {t}" for t, lab in rows]
        lines += draw(st.lists(st.sampled_from(("__label__", "__label__ ", "__label__a",
                                                "__label__a __label__b text", "no label")),
                               max_size=2))
        lines = draw(st.permutations(lines))
    return draw(maybe_mutated("\n".join(lines).encode("utf-8")))


FIELD_OPTIONS = st.sampled_from(("text", "label", "0", "1", "2", "-1", "labels", "",
                                 "\u00b2", "\u0661", " text")) | st.text(max_size=4)


@st.composite
def read_options(draw: st.DrawFn) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if draw(st.booleans()):
        kw["text_field"] = draw(FIELD_OPTIONS)
    if draw(st.booleans()):
        kw["label_field"] = draw(FIELD_OPTIONS)
    if draw(st.booleans()):
        kw["has_header"] = draw(st.booleans())
    if draw(st.booleans()):
        kw["label_sep"] = draw(st.sampled_from((None, ",", "|", " ", "", "__")))
    if draw(st.booleans()):
        kw["format"] = draw(st.sampled_from((None, *FORMATS, "txt", "CSV")))
    if draw(st.booleans()):
        kw["labels"] = draw(st.lists(st.sampled_from(("a", "b", "pos", "neg", "0", "1", "")),
                                     max_size=4))
    if draw(st.booleans()):
        kw["multi_label"] = draw(st.sampled_from((None, True, False)))
    return kw


@st.composite
def labeled_file(draw: st.DrawFn) -> tuple[str, str, bytes]:
    fmt = draw(st.sampled_from(("csv", "tsv", "jsonl", "fasttext")))
    suffix = draw(st.sampled_from((SUFFIX[fmt], ".txt", "", ".dat")))
    zsuffix = draw(st.sampled_from(COMPRESSION_SUFFIXES))
    return suffix, zsuffix, draw(labeled_bytes(fmt))


def check_read(path: Path, kw: dict[str, Any], n_lines: int | None, *names: object) -> None:
    try:
        ds = read(path, **kw)
    except WarmstartError as e:
        message = user_error(e, path, *names)
        for line in cited_lines(message, path):
            assert line >= 1 and (n_lines is None or line <= n_lines), message
        return
    check_dataset(ds, kw.get("labels"))


@given(labeled_file(), read_options())
@budget(80)
@example((".csv", "", b"text,label"), {"label_field": "\u00b2"}).via(
    "found by the campaign: int('²') after str.isdigit()")
@example((".csv", "", b"a,b\nx,y"), {"text_field": "\u2460", "has_header": False}).via(
    "found by the campaign: int('①') after str.isdigit()")
def test_damaged_files_read_or_fail_naming_the_file(case: tuple[str, str, bytes],
                                                    kw: dict[str, Any]) -> None:
    suffix, zsuffix, data = case
    with workdir() as d:
        path = d / f"data{suffix}{zsuffix}"
        path.write_bytes(compress(data, zsuffix))
        check_read(path, kw, None if zsuffix else data.count(b"\n") + 1)


@st.composite
def class_folders(draw: st.DrawFn) -> dict[str, dict[str, bytes]]:
    """A labeled folder: class sub-folders of files, some of them empty, binary or odd."""
    names = st.sampled_from(("pos", "neg", "unsup", ".hidden", "a b", "0", "1"))
    files = st.dictionaries(
        st.sampled_from(("1.txt", "2.txt.gz", "3.txt.bz2", "4.txt.xz", "5.md", ".6.txt")),
        st.binary(max_size=20) | utf8_text.map(str.encode), max_size=3)
    return draw(st.dictionaries(names, files, max_size=3))


@given(class_folders(), read_options())
@budget(30)
def test_class_folders_read_or_fail_naming_the_folder(tree: dict[str, dict[str, bytes]],
                                                      kw: dict[str, Any]) -> None:
    with workdir() as d:
        root = d / "data"
        root.mkdir()
        for cls, files in tree.items():
            (root / cls).mkdir()
            for name, data in files.items():
                (root / cls / name).write_bytes(data)
        check_read(root, kw, None, root)


@pytest.mark.parametrize("field", ["\u00b2", "\u0661", "\u2460"])
def test_digit_like_field_names(tmp_path: Path, field: str) -> None:
    """str.isdigit() holds for superscripts and other scripts' digits, which int() refuses
    (or reads as a number the user did not mean): such a field is a name, never a crash."""
    path = tmp_path / "data.csv"
    path.write_text("a,b\nx,y\n", encoding="utf-8")
    for has_header in (True, False):
        with pytest.raises(WarmstartError) as e:
            read(path, text_field=field, label_field="1", has_header=has_header)
        user_error(e.value, path)


@given(formats_and_examples())
@budget(20)
def test_augment_writes_what_reads_back(case: tuple[str, list[tuple[str, list[str]]]]) -> None:
    """The one writer of labeled data (`warmstart augment`, JSON Lines): read -> write ->
    read gives each example back (each followed by its copy, here the text unchanged), and
    writing again gives the same bytes."""
    from warmstart.transfer.augment.base import Augmenter
    from warmstart.transfer.augment.dataset import augment_dataset

    class Same(Augmenter):
        def augment(self, texts: Any, rng: Any) -> list[str]:
            return list(texts)

    fmt, rows = case
    no_edits: dict[str, Any] = dict(augmenter=Same(), copies=1, sr=0.0, ri=0.0, progress=False)
    with workdir() as d:
        ds = read(write_examples(d, fmt, rows, ""))
        augment_dataset(ds, out=d / "one.jsonl", **no_edits)
        back = read(d / "one.jsonl", labels=ds.labels, multi_label=ds.multi_label)
        originals = back.subset(np.arange(0, len(back), 2))
        assert originals.texts == ds.texts and np.array_equal(originals.y, ds.y)
        augment_dataset(originals, out=d / "two.jsonl", **no_edits)
        assert (d / "two.jsonl").read_bytes() == (d / "one.jsonl").read_bytes()

"""LabeledDataset: formats, label maps, multi-label, splits, sampling, and every user error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write

from warmstart.errors import WarmstartError
from warmstart.labeled import LabeledDataset

TEXTS = ["a fine film", "dull, and too long", "ünïcödé 第三 works"]
LABELS = ["pos", "neg", "pos"]



def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def raises_user_error(match: str) -> Any:
    return pytest.raises(WarmstartError, match=match)


def balanced(n_per_class: dict[str, int], tmp_path: Path) -> LabeledDataset:
    """A TSV dataset with the given number of examples per class, classes interleaved."""
    rows = [(i, f"doc {name} {i}", name) for name, n in n_per_class.items() for i in range(n)]
    text = "".join(f"{t}\t{c}\n" for _, t, c in sorted(rows))
    return LabeledDataset.read(write(tmp_path / "bal.tsv", "text\tlabel\n" + text))


def check_basic(ds: LabeledDataset) -> None:
    assert ds.texts == TEXTS
    assert ds.labels == ["neg", "pos"]
    assert not ds.multi_label
    assert ds.y.dtype == np.int64
    assert ds.y.tolist() == [1, 0, 1]
    assert len(ds) == 3
    assert ds.class_counts() == {"neg": 1, "pos": 2}


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.bz2", ".csv.xz"])
def test_csv_with_quoting(tmp_path: Path, suffix: str) -> None:
    body = (
        'id,text,label\n1,a fine film,pos\n2,"dull, and too long",neg\n\n'
        "3,ünïcödé 第三 works,pos\n"
    )
    ds = LabeledDataset.read(write(tmp_path / f"d{suffix}", body))
    check_basic(ds)
    assert ds.line_numbers is not None and ds.line_numbers.tolist() == [2, 3, 5]
    assert ds.source == str(tmp_path / f"d{suffix}")


def test_csv_multiline_record_keeps_its_start_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,label\n"two\nlines",a\nthird,\n')
    with raises_user_error(r"d\.csv:4: empty label"):
        LabeledDataset.read(path)


@pytest.mark.parametrize("suffix", [".tsv", ".tsv.gz"])
def test_tsv_header_without_quote_processing(tmp_path: Path, suffix: str) -> None:
    body = 'label\ttext\npos\t"quoted" start\nneg\tit"s odd\n'
    ds = LabeledDataset.read(write(tmp_path / f"d{suffix}", body))
    assert ds.texts == ['"quoted" start', 'it"s odd']
    assert ds.labels == ["neg", "pos"]


def test_tsv_without_header_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "".join(f"{t}\t{c}\n" for t, c in zip(TEXTS, LABELS, strict=True)))
    check_basic(LabeledDataset.read(path, has_header=False, text_field="0", label_field="1"))


def test_jsonl_with_other_field_names(tmp_path: Path) -> None:
    rows = [{"body": t, "y": c, "id": i} for i, (t, c) in enumerate(zip(TEXTS, LABELS, strict=True))]
    path = write(tmp_path / "d.jsonl.xz", jsonl(rows[:2]) + "\n" + jsonl(rows[2:]))
    check_basic(LabeledDataset.read(path, text_field="body", label_field="y"))


@pytest.mark.parametrize("name", ["d.ft", "d.ft.bz2", "d.txt", "d.data"])
def test_fasttext_by_suffix_sniffed_or_explicit(tmp_path: Path, name: str) -> None:
    body = "\n" + "".join(f"__label__{c} {t}\n" for t, c in zip(TEXTS, LABELS, strict=True))
    path = write(tmp_path / name, body)
    fmt = "fasttext" if name == "d.data" else None
    ds = LabeledDataset.read(path, format=fmt)
    check_basic(ds)
    assert ds.line_numbers is not None and ds.line_numbers.tolist() == [2, 3, 4]


def test_folder_per_class(tmp_path: Path) -> None:
    root = tmp_path / "train"
    for i, (t, c) in enumerate(zip(TEXTS, LABELS, strict=True)):
        write(root / c / f"{i}_7.txt", t + "\n")
    write(root / "urls_pos.txt", "top-level files are not documents\n")
    write(root / "pos" / "notes.md", "ignored: not .txt\n")
    ds = LabeledDataset.read(root)
    assert ds.labels == ["neg", "pos"]
    got = sorted(zip(ds.texts, ds.y.tolist(), strict=True))
    assert got == sorted(zip(TEXTS, [1, 0, 1], strict=True))
    assert ds.doc_files is not None and ds.doc_files[0] == str(root / "neg" / "1_7.txt")


def test_folder_of_unlabeled_texts_is_not_a_class(tmp_path: Path) -> None:
    """IMDB's train/ holds pos/, neg/ and unsup/ (the 50,000 unlabeled reviews)."""
    root = tmp_path / "train"
    for i, (t, c) in enumerate(zip(TEXTS, LABELS, strict=True)):
        write(root / c / f"{i}_7.txt", t + "\n")
    write(root / "unsup" / "0_0.txt", "an unlabeled review\n")
    with pytest.warns(UserWarning, match="unsup.*unlabeled texts"):
        ds = LabeledDataset.read(root)
    assert ds.labels == ["neg", "pos"] and len(ds) == len(TEXTS)


def test_multiline_document_in_folder(tmp_path: Path) -> None:
    write(tmp_path / "a" / "1.txt", "line one\nline two\n\n")
    write(tmp_path / "b" / "2.txt.gz", "other")
    ds = LabeledDataset.read(tmp_path)
    assert ds.texts == ["line one\nline two", "other"]
    assert ds.class_counts() == {"a": 1, "b": 1}


# -- label maps ----------------------------------------------------------------------------


def test_int_labels_sort_numerically(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": lab} for i, lab in enumerate([10, 2, "1", 2, -3])]
    ds = LabeledDataset.read(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert ds.labels == ["-3", "1", "2", "10"]
    assert ds.y.tolist() == [3, 2, 1, 2, 0]


def test_string_labels_sort_lexicographically(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,b2\nb,B\nc,10\nd,a\n")
    assert LabeledDataset.read(path).labels == ["10", "B", "a", "b2"]


def test_label_cells_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na, pos \nb,pos\n")
    assert LabeledDataset.read(path).class_counts() == {"pos": 2}


def test_default_columns_fall_back_to_common_names(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "sentence\tclass\nnice\t1\nbad\t0\n")
    ds = LabeledDataset.read(path)
    assert ds.texts == ["nice", "bad"] and ds.y.tolist() == [1, 0]
    path = write(tmp_path / "d.jsonl", jsonl([{"review": "ok", "label": "p"}]))
    assert LabeledDataset.read(path).texts == ["ok"]


def test_ambiguous_default_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "review,sentence,label\na,b,c\n")
    with raises_user_error(r"d\.csv:1: no column 'text'.*review, sentence.*--text-field"):
        LabeledDataset.read(path)


# -- multi-label ---------------------------------------------------------------------------


def test_multi_label_fasttext(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.ft",
        "__label__b __label__a  first text\n__label__b second\n__label__c\tthird\n",
    )
    ds = LabeledDataset.read(path)
    assert ds.multi_label and ds.labels == ["a", "b", "c"]
    assert ds.texts == ["first text", "second", "third"]
    assert ds.y.dtype == np.uint8
    assert ds.y.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert ds.class_counts() == {"a": 1, "b": 2, "c": 1}


def test_multi_label_jsonl_lists(tmp_path: Path) -> None:
    rows = [
        {"text": "x", "label": ["sport", "news"]},
        {"text": "y", "label": "news"},
        {"text": "z", "label": ["tech", "tech"]},
    ]
    ds = LabeledDataset.read(write(tmp_path / "d.jsonl", jsonl(rows)))
    assert ds.multi_label and ds.labels == ["news", "sport", "tech"]
    assert ds.y.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_multi_label_csv_label_sep(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'text,label\na,"x, y"\nb,y\n')
    ds = LabeledDataset.read(path, label_sep=",")
    assert ds.multi_label and ds.labels == ["x", "y"]
    assert ds.y.tolist() == [[1, 1], [0, 1]]
    # without label_sep the cell is one label
    assert LabeledDataset.read(path).labels == ["x, y", "y"]


def test_multi_label_forced_and_refused(tmp_path: Path) -> None:
    single = write(tmp_path / "single.ft", "__label__a one\n__label__b two\n")
    ds = LabeledDataset.read(single, multi_label=True)
    assert ds.multi_label and ds.y.tolist() == [[1, 0], [0, 1]]
    multi = write(tmp_path / "multi.ft", "__label__a one\n__label__a __label__b two\n")
    with raises_user_error(r"multi\.ft:2: 2 labels \(a, b\) but multi_label=False"):
        LabeledDataset.read(multi, multi_label=False)


# -- splits and sampling -------------------------------------------------------------------


def test_split_is_stratified_disjoint_and_seeded(tmp_path: Path) -> None:
    ds = balanced({"a": 50, "b": 23, "c": 7}, tmp_path)
    train, dev = ds.split(0.2, seed=0)
    assert len(train) + len(dev) == len(ds)
    assert set(train.texts).isdisjoint(dev.texts)
    for name, n in ds.class_counts().items():
        assert abs(dev.class_counts()[name] - 0.2 * n) <= 1
        assert abs(train.class_counts()[name] - 0.8 * n) <= 1
    # file order is kept within each part
    order = {t: i for i, t in enumerate(ds.texts)}
    assert [order[t] for t in dev.texts] == sorted(order[t] for t in dev.texts)
    again = ds.split(0.2, seed=0)[1]
    assert again.texts == dev.texts
    assert ds.split(0.2, seed=1)[1].texts != dev.texts


def test_split_multi_label(tmp_path: Path) -> None:
    lines = [f"__label__common __label__{'rare' if i % 10 == 0 else 'x'} doc {i}\n"
             for i in range(100)]
    ds = LabeledDataset.read(write(tmp_path / "d.ft", "".join(lines)))
    train, dev = ds.split(0.1, seed=3)
    assert dev.class_counts()["rare"] == 1 and dev.class_counts()["x"] == 9
    assert train.y.shape == (90, 3)


def test_split_errors(tmp_path: Path) -> None:
    ds = balanced({"a": 3, "b": 1}, tmp_path)
    with raises_user_error("--dev-fraction 1.5: must be between 0 and 1"):
        ds.split(1.5)
    with raises_user_error("leaves the dev set empty"):
        ds.split(0.1)


def test_sample_per_class(tmp_path: Path) -> None:
    ds = balanced({"a": 30, "b": 12, "c": 5}, tmp_path)
    few = ds.sample_per_class(4, seed=7)
    assert few.class_counts() == {"a": 4, "b": 4, "c": 4}
    assert len(set(few.texts)) == 12 and set(few.texts) <= set(ds.texts)
    pairs = zip(few.texts, few.y.tolist(), strict=True)
    assert all(t.split()[1] == few.labels[k] for t, k in pairs)
    assert ds.sample_per_class(4, seed=7).texts == few.texts
    assert ds.sample_per_class(4, seed=8).texts != few.texts
    assert ds.sample_per_class(5, seed=0).class_counts()["c"] == 5
    with raises_user_error(r"bal\.tsv: cannot take 6 example\(s\) per class: 'c' has 5"):
        ds.sample_per_class(6)
    with raises_user_error("'b' has 12, 'c' has 5; choose n at most 5"):
        ds.sample_per_class(20)


def test_sample_per_class_multi_label(tmp_path: Path) -> None:
    lines = [f"__label__{'r' if i < 6 else 'c'} {'__label__c ' if i < 3 else ''}doc {i}\n"
             for i in range(40)]
    ds = LabeledDataset.read(write(tmp_path / "d.ft", "".join(lines)))
    few = ds.sample_per_class(5, seed=0)
    counts = few.class_counts()
    assert counts["r"] == 5 and counts["c"] == 5
    assert ds.sample_per_class(5, seed=0).texts == few.texts


# -- label maps across files ---------------------------------------------------------------


def test_read_with_train_label_map(tmp_path: Path) -> None:
    train = LabeledDataset.read(write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,z\n"))
    dev_path = write(tmp_path / "dev.csv", "text,label\nd,z\ne,x\n")
    dev = LabeledDataset.read(dev_path, labels=train.labels)
    assert dev.labels == ["x", "y", "z"] and dev.y.tolist() == [2, 0]
    plain = LabeledDataset.read(dev_path)
    assert plain.labels == ["x", "z"]
    re_indexed = plain.with_labels(train.labels)
    assert re_indexed.labels == train.labels and re_indexed.y.tolist() == [2, 0]


def test_unseen_label_names_file_and_line(tmp_path: Path) -> None:
    train = LabeledDataset.read(write(tmp_path / "train.csv", "text,label\na,x\nb,y\n"))
    dev_path = write(tmp_path / "dev.csv", "text,label\nd,x\ne,w\nf,w\n")
    with raises_user_error(r"dev\.csv:3: label 'w' is not in the label map \(2 labels: x, y\)"):
        LabeledDataset.read(dev_path, labels=train.labels)
    with raises_user_error(r"dev\.csv:3: label 'w' is not in the label map"):
        LabeledDataset.read(dev_path).with_labels(train.labels)


def test_with_labels_multi_label_and_folder(tmp_path: Path) -> None:
    ds = LabeledDataset.read(write(tmp_path / "d.ft", "__label__b __label__a t\n__label__b u\n"))
    wider = ds.with_labels(["c", "b", "a"])
    assert wider.y.tolist() == [[0, 1, 1], [0, 1, 0]]
    write(tmp_path / "f" / "odd" / "9.txt", "text")
    with raises_user_error(r"odd.9\.txt: label 'odd' is not in the label map"):
        LabeledDataset.read(tmp_path / "f", labels=["even"])


def test_subset_and_content_hash(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,x\nb,y\nc,x\n")
    ds = LabeledDataset.read(path)
    sub = ds.subset([2, 0])
    assert sub.texts == ["c", "a"] and sub.y.tolist() == [0, 0] and sub.labels == ds.labels
    assert ds.subset(np.array([False, True, False])).texts == ["b"]
    h = ds.content_hash()
    assert len(h) == 16 and h == LabeledDataset.read(path).content_hash()
    assert ds.with_labels(["z", "y", "x"]).content_hash() == h  # the map's order is not content
    changed = write(tmp_path / "e.csv", "text,label\na,x\nb,y\nc,y\n")
    assert LabeledDataset.read(changed).content_hash() != h
    assert "n=3" in repr(ds)


def test_one_class_is_allowed(tmp_path: Path) -> None:
    ds = LabeledDataset.read(write(tmp_path / "d.csv", "text,label\na,x\nb,x\n"))
    assert ds.class_counts() == {"x": 2}


# -- bad input -----------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with raises_user_error(r"nope\.tsv: no such file or folder; check the path"):
        LabeledDataset.read(tmp_path / "nope.tsv")


def test_unknown_column_lists_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "body,label\na,x\n")
    with raises_user_error(r"d\.csv:1: no column 'txt' \(columns: body, label\); choose one"):
        LabeledDataset.read(path, text_field="txt")
    with raises_user_error(r"no column 'y' \(columns: body, label\).*--label-field"):
        LabeledDataset.read(path, text_field="body", label_field="y")
    jpath = write(tmp_path / "d.jsonl", jsonl([{"body": "a", "label": "x"}]))
    with raises_user_error(r"d\.jsonl:1: no field 'text' \(fields: body, label\)"):
        LabeledDataset.read(jpath)


def test_headerless_file_read_with_header_hints(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "some news text\tWorld\nmore\tSports\n")
    with raises_user_error(r"no column 'text' \(columns: some news text, World\).*has_header"):
        LabeledDataset.read(path)
    with raises_user_error(r"has_header=False.*text_field='0', label_field='1'"):
        LabeledDataset.read(path, has_header=False)


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("d.csv", "text,label\na,x\nb,\n", r"d\.csv:3: empty label"),
        ("d.tsv", "text\tlabel\na\tx\n  \ty\n", r"d\.tsv:3: empty text"),
        ("d.jsonl", jsonl([{"text": "a", "label": ""}]), r"d\.jsonl:1: empty label"),
        ("d.jsonl", jsonl([{"text": "", "label": "x"}]), r"d\.jsonl:1: empty text"),
        ("d.jsonl", jsonl([{"text": "a", "label": []}]), r"d\.jsonl:1: empty label"),
        ("d.jsonl", jsonl([{"text": "a", "label": 1.5}]), r"d\.jsonl:1: .*string, an integer"),
        ("d.jsonl", jsonl([{"text": 3, "label": "x"}]), r"d\.jsonl:1: field 'text' holds int"),
        (
            "d.jsonl",
            jsonl([{"text": "a", "label": "x"}, {"text": "b"}]),
            r"d\.jsonl:2: no field 'label'",
        ),
        ("d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b",\n', r"d\.jsonl:2: invalid JSON"),
        ("d.jsonl", '["a", "x"]\n', r"d\.jsonl:1: expected a JSON object"),
        ("d.ft", "__label__a fine\nno label here\n", r"d\.ft:2: no label"),
        ("d.ft", "__label__a fine\n__label__b   \n", r"d\.ft:2: empty text"),
        ("d.ft", "__label__ fine\n", r"d\.ft:1: empty label"),
        ("d.txt", "\njust text\n", r"d\.txt:2: cannot tell the labeled format.*format="),
        ("d.csv", "", r"d\.csv: no labeled examples found"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, name: str, body: str, message: str) -> None:
    with raises_user_error(message):
        LabeledDataset.read(write(tmp_path / name, body))


def test_mixed_delimiters_name_line_and_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "text\tlabel\ngood\tx\nsome, text,y\n")
    with raises_user_error(
        r"d\.tsv:3: 1 tab-separated field\(s\), but the header has 2.*separated by a tab"
        r".*commas but no tab.*format='csv'"
    ):
        LabeledDataset.read(path)
    extra = write(tmp_path / "e.tsv", "a\tx\nb\tc\tx\n")
    with raises_user_error(r"e\.tsv:2: 3 tab-separated field\(s\), but line 1 has 2"):
        LabeledDataset.read(extra, has_header=False, text_field="0", label_field="1")
    short = write(tmp_path / "f.csv", "text,label\na\n")
    with raises_user_error(r"f\.csv:2: 1 comma-separated field\(s\), but the header has 2"):
        LabeledDataset.read(short)


def test_folder_errors(tmp_path: Path) -> None:
    write(tmp_path / "flat" / "1.txt", "a document")
    with raises_user_error(r"flat: folder has no class sub-folders"):
        LabeledDataset.read(tmp_path / "flat")
    write(tmp_path / "t" / "pos" / "1.txt", "good")
    (tmp_path / "t" / "neg").mkdir()
    with raises_user_error(r"neg: class folder holds no \.txt files"):
        LabeledDataset.read(tmp_path / "t")
    write(tmp_path / "t" / "neg" / "2.txt", " \n")
    with raises_user_error(r"neg.2\.txt: empty document"):
        LabeledDataset.read(tmp_path / "t")


def test_bad_format_option(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,x\n")
    with raises_user_error("unknown format 'xml'"):
        LabeledDataset.read(path, format="xml")
    with raises_user_error("format='folder' needs a folder"):
        LabeledDataset.read(path, format="folder")
    with raises_user_error("is a folder"):
        LabeledDataset.read(tmp_path, format="csv")


def test_duplicate_label_map(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "text,label\na,x\n")
    with raises_user_error("'x' twice"):
        LabeledDataset.read(path, labels=["x", "y", "x"])


# -- real data -----------------------------------------------------------------------------


def test_real_agnews(shared_data: Path) -> None:
    ds = LabeledDataset.read(
        shared_data / "en" / "agnews" / "train.tsv", has_header=False, text_field="0",
        label_field="1",
    )
    assert len(ds) == 10_001 and not ds.multi_label
    assert ds.labels == ["Business", "Sci/Tech", "Sports", "World"]
    assert sum(ds.class_counts().values()) == 10_001
    few = ds.sample_per_class(16, seed=0)
    assert few.class_counts() == dict.fromkeys(ds.labels, 16)


def test_real_sst2_sentences(shared_data: Path) -> None:
    ds = LabeledDataset.read(shared_data / "en" / "sst2-sentences" / "train.tsv")
    assert len(ds) == 6_920 and ds.labels == ["0", "1"]
    dev = LabeledDataset.read(shared_data / "en" / "sst2-sentences" / "dev.tsv", labels=ds.labels)
    assert len(dev) == 872


def test_real_imdb(shared_data: Path) -> None:
    ds = LabeledDataset.read(shared_data / "en" / "imdb" / "train.tsv.gz")
    assert len(ds) == 25_000
    assert ds.class_counts() == {"neg": 12_500, "pos": 12_500}
    assert "<br />" in "".join(ds.texts[:200])

"""The classifier artifact: save, load, predict.

    >>> clf = Classifier.load("runs/sentiment")                        # doctest: +SKIP
    >>> clf.predict(["a wonderful film", "dull"])                      # doctest: +SKIP
    ['pos', 'neg']

A classifier folder holds ``model.safetensors`` (body and heads), the body's tokenizer
(``tokenizer.json`` for an encoder, ``vocab.json`` for a word-vector model or TF-IDF's terms), and in
``warmstart.json`` the body's shape, the tasks with their label maps, the decision thresholds
of multi-label tasks, and the settings it was trained with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from warmstart.artifact import META_FILE, WEIGHTS_FILE, is_onnx_folder, read_meta, write_meta
from warmstart.errors import WarmstartError, with_article
from warmstart.labeled import LabeledDataset, ReadConfig
from warmstart.train.precision import bf16_autocast, check_precision
from warmstart.transfer.bodies import Body, EncoderBody, sorted_batches
from warmstart.transfer.model import Task, TextClassifier


def body_autocast(body: Body, device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast for a forward pass of ``body`` as ``precision`` says, for an encoder only:
    word-vector and TF-IDF bodies are cheap and stay fp32."""
    return bf16_autocast(device, precision if isinstance(body, EncoderBody) else "fp32")


class Classifier:
    """A trained :class:`TextClassifier` with what prediction needs around it."""

    def __init__(
        self, model: TextClassifier, *, thresholds: dict[str, float] | None = None,
        batch_size: int = 64, precision: str = "auto",
    ) -> None:
        self.model = model.eval()
        self.tasks = {t.name: t for t in model.tasks}
        self.thresholds = thresholds or {}
        self.batch_size = batch_size
        # bf16, fp32 or auto: an encoder's forward pass in bf16 where the hardware has it
        # (a GPU, or a CPU with AMX or AVX-512 BF16); heads and other bodies stay fp32.
        check_precision(precision, "precision")
        self.precision = precision

    @property
    def labels(self) -> list[str]:
        return self.model.tasks[0].labels

    def task(self, task: str | None = None) -> Task:
        """The task named ``task`` (its labels, multi-label or not); None: the first task."""
        if task is None:
            return self.model.tasks[0]
        if task not in self.tasks:
            raise WarmstartError(f"--task {task}: this classifier has {', '.join(self.tasks)}")
        return self.tasks[task]

    def predict_only(self) -> Classifier:
        """This classifier, made faster to predict with where it predicts in bf16 (its
        ``precision`` on its device): the encoder's weights are held in bf16
        (:meth:`EncoderBody.hold_bf16_weights`). Call it on a classifier loaded to predict,
        after moving it to its device: it cannot be trained or saved in fp32 afterwards."""
        if isinstance(self.model.body, EncoderBody):
            self.model.body.hold_bf16_weights(self.precision)
        return self

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(N, K) class probabilities (softmax), or per-label probabilities (multi-label)."""
        t = self.task(task)
        body = self.model.body
        encoded = body.encode(list(texts))
        out = np.zeros((len(encoded), len(t.labels)), dtype=np.float32)
        device = next(self.model.parameters()).device
        autocast = body_autocast(body, device, self.precision)
        head = self.model.head(t.name)
        for rows, batch in sorted_batches(body, encoded, self.batch_size):
            with autocast:
                features = body({k: v.to(device) for k, v in batch.items()})
            logits = head(features.float())
            probs = torch.sigmoid(logits) if t.multi_label else logits.softmax(-1)
            out[rows] = probs.cpu().numpy()
        return out

    def predict(
        self, texts: Sequence[str], *, task: str | None = None, top_k: int = 1,
    ) -> list[Any]:
        """Labels: one per text, a list of ``top_k`` per text, or a list per text (multi-label)."""
        t = self.task(task)
        probs = self.predict_proba(texts, task=task)
        if t.multi_label:
            cut = self.thresholds.get(t.name, 0.5)
            return [[t.labels[j] for j in np.flatnonzero(p >= cut)] for p in probs]
        if top_k == 1:
            return [t.labels[j] for j in probs.argmax(1)]
        best = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
        return [[t.labels[j] for j in row] for row in best]

    def predict_records(
        self, texts: Iterable[str], *, task: str | None = None, top_k: int = 1,
    ) -> list[dict[str, Any]]:
        """One dict per text: the label(s) and the probabilities, for JSONL output."""
        t = self.task(task)
        texts = list(texts)
        probs = self.predict_proba(texts, task=task)
        records = []
        for p in probs:
            ranked = np.argsort(-p, kind="stable")
            record: dict[str, Any] = {
                "probabilities": {t.labels[j]: round(float(p[j]), 6) for j in ranked[:max(top_k, 1)]}
            }
            if t.multi_label:
                cut = self.thresholds.get(t.name, 0.5)
                record["labels"] = [t.labels[j] for j in ranked if p[j] >= cut]
            else:
                record["label"] = t.labels[int(ranked[0])]
            records.append(record)
        return records

    def export_hf(self, out: str | os.PathLike[str]) -> None:
        """Write a folder that ``transformers.AutoModelForSequenceClassification`` loads."""
        from warmstart.models.hf import SequenceHead, write_hf_folder

        body = self.model.body
        if not isinstance(body, EncoderBody):
            raise WarmstartError("only encoder classifiers export to Hugging Face; this one "
                                 f"reads texts with {with_article(body.kind)} body")
        if body.pooling != "pooler":
            raise WarmstartError(
                f"this classifier pools by {body.pooling!r}, but BertForSequenceClassification "
                "reads BERT's pooler: fine-tune with --pooling pooler to export it")
        if body.normalize:
            raise WarmstartError(
                "this classifier scales its pooled vector to length 1, which "
                "BertForSequenceClassification does not: train with --normalize no to export it")
        if len(self.model.tasks) > 1:
            raise WarmstartError("a multi-task classifier has several heads; Hugging Face's "
                                 "BertForSequenceClassification has one")
        t = self.model.tasks[0]
        head = self.model.head(t.name)
        write_hf_folder(body.encoder, out, tokenizer=body.tokenizer,
                        head=SequenceHead(head.weight, head.bias, t.labels, t.multi_label))

    # -- artifact --------------------------------------------------------------------------
    def save_into(self, folder: Path, *, config: dict[str, Any], parent: str | None = None,
                  data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write weights, tokenizer and ``warmstart.json`` into ``folder`` (which must exist)."""
        body = self.model.body
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        body.save_vocabulary(folder)
        return write_meta(
            folder, kind="classifier", parent=parent, data=data,
            config={"body": body.describe(), "tasks": [t.to_dict() for t in self.model.tasks],
                    "thresholds": self.thresholds, "dropout": self.model.reg.dropout, **config},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, precision: str = "auto") -> Classifier:
        """The classifier saved in folder ``path``; ``precision`` as for prediction above."""
        folder = Path(path)
        if is_onnx_folder(folder):  # exported with --format onnx: run by onnxruntime
            from warmstart.transfer.onnx import load_onnx_classifier

            return load_onnx_classifier(folder)
        meta = read_meta(folder, kind="classifier")
        config = meta["config"]
        if "ensemble" in config:  # several classifiers in one folder (--recipe auto)
            from warmstart.transfer.ensemble import Ensemble

            return Ensemble.load(folder, precision=precision)
        try:
            body = Body.from_spec(config["body"], folder)
            tasks = [Task(**t) for t in config["tasks"]]
            model = TextClassifier(body, tasks)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise WarmstartError(f"{folder / META_FILE}: corrupt artifact metadata (config: "
                                 f"{type(e).__name__}: {e}); re-create the artifact") from None
        try:
            state = load_file(str(folder / WEIGHTS_FILE))
        except (OSError, SafetensorError) as e:
            raise WarmstartError(f"{folder / WEIGHTS_FILE}: cannot read the weights ({e})") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise WarmstartError(f"{folder}: the weights do not fit the model ({e})") from None
        return cls(model, thresholds=config.get("thresholds") or {}, precision=precision)


def load_encoder_classifier(folder: Path, *, option: str, precision: str = "auto",
                            ) -> tuple[Classifier, EncoderBody]:
    """The classifier in ``folder`` and its encoder body, for exports of that encoder; an
    ensemble or a classifier with another body is an error that starts with ``option``."""
    from warmstart.transfer.ensemble import Ensemble

    clf = Classifier.load(folder, precision=precision)
    if isinstance(clf, Ensemble):
        raise WarmstartError(
            f"{option}: {folder} is an ensemble of {len(clf.members)} classifiers, and this "
            "export takes one encoder: export an encoder member's folder "
            f"({', '.join(f'{folder}/members/{n}' for n in clf.members)})")
    body = clf.model.body
    if not isinstance(body, EncoderBody):
        raise WarmstartError(
            f"{option}: {folder} reads texts with {with_article(body.kind)} body, not an "
            "encoder; only encoders and encoder classifiers export this way")
    return clf, body


def source_records(source: str | os.PathLike[str], *, text_field: str = "text",
                   ) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line of ``source`` (``"-"``: standard input), blank ones
    included; of a JSONL or CSV/TSV file, its ``text_field`` per record (see
    :meth:`Corpus.records <warmstart.corpus.Corpus.records>`)."""
    if str(source) == "-":
        for number, line in enumerate(sys.stdin, start=1):
            yield number, line.rstrip("\r\n")
        return
    from warmstart.corpus import Corpus

    for _, number, text in Corpus([source], text_field=text_field).records():
        yield number, text


def predict(
    classifier: Classifier | str | os.PathLike[str],
    source: str | os.PathLike[str] | Iterable[tuple[int, str]] = "-",
    *,
    task: str | None = None,
    top_k: int = 1,
    text_field: str = "text",
    precision: str = "auto",
    batch: int = 1024,
) -> Iterator[dict[str, Any]]:
    """Label the texts of ``source`` with ``classifier``, in order, as ``warmstart predict``
    does; ``batch`` texts at a time, so memory stays flat on any input.

    ``classifier`` is a :class:`Classifier` or its folder (loaded with ``precision``).
    ``source`` is a file (one text per line, or ``text_field`` of each JSONL/CSV/TSV record,
    see :func:`source_records`), ``"-"`` for standard input, or ``(line number, text)`` pairs.
    Each text gives one dict: ``line``, ``text`` and the label(s) with probabilities
    (:meth:`Classifier.predict_records`); a blank text gives ``label`` None (``labels`` []
    for multi-label), so outputs line up with inputs. A file with no lines is an error.

        >>> for record in predict("runs/sentiment", "reviews.txt"):   # doctest: +SKIP
        ...     print(record["line"], record["label"])
    """
    clf = (classifier if isinstance(classifier, Classifier)
           else Classifier.load(classifier, precision=precision).predict_only())
    multi_label = clf.task(task).multi_label
    if not isinstance(source, str | os.PathLike):
        return _labeled(clf, source, task=task, multi_label=multi_label, top_k=top_k, batch=batch)
    where = "standard input" if str(source) == "-" else str(source)
    return _labeled(clf, source_records(source, text_field=text_field), task=task,
                    multi_label=multi_label, top_k=top_k, batch=batch, where=where)


def _labeled(
    clf: Classifier, records: Iterable[tuple[int, str]], *, task: str | None, multi_label: bool,
    top_k: int, batch: int, where: str | None = None,
) -> Iterator[dict[str, Any]]:
    """:func:`predict`'s records; with ``where``, no records at all is an error naming it."""
    empty: dict[str, Any] = {"labels": []} if multi_label else {"label": None}
    chunk: list[tuple[int, str]] = []
    n_records = 0

    def flush() -> Iterator[dict[str, Any]]:
        texts = [text for _, text in chunk if text.strip()]
        labeled = iter(clf.predict_records(texts, task=task, top_k=top_k) if texts else [])
        for line, text in chunk:
            yield {"line": line, "text": text,
                   **(next(labeled) if text.strip() else {**empty, "probabilities": {}})}
        chunk.clear()

    for record in records:
        n_records += 1
        chunk.append(record)
        if len(chunk) == batch:
            yield from flush()
    yield from flush()
    if n_records == 0 and where is not None:
        raise WarmstartError(f"{where}: no lines to label; give one text per line")


def evaluate(
    classifier: Classifier | str | os.PathLike[str],
    dataset: LabeledDataset | str | os.PathLike[str],
    *,
    task: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    no_header: bool = False,
    label_sep: str = "",
    precision: str = "auto",
    out: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The classification report of ``classifier`` on ``dataset``, as ``warmstart evaluate``
    gives it: accuracy, macro-F1, per class, confusion matrix.

    ``classifier`` is a :class:`Classifier` or its folder (loaded with ``precision``).
    ``dataset`` is a :class:`LabeledDataset` or a labeled file or folder, read with
    ``text_field``, ``label_field``, ``no_header`` and ``label_sep`` (see
    :class:`~warmstart.labeled.ReadConfig`) in the label map of the classifier's ``task``.
    With ``out``, ``metrics.json`` and the confusion plot are written into that folder
    (:func:`~warmstart.evaluation.classification.write_report`).

        >>> evaluate("runs/sentiment", "test.tsv")["accuracy"]       # doctest: +SKIP
        0.912
    """
    from warmstart.evaluation.classification import (
        classification_report,
        multilabel_report,
        write_report,
    )
    clf = (classifier if isinstance(classifier, Classifier)
           else Classifier.load(classifier, precision=precision).predict_only())
    t = clf.task(task)
    if not isinstance(dataset, LabeledDataset):
        read = ReadConfig(text_field=text_field, label_field=label_field, no_header=no_header,
                          label_sep=label_sep)
        dataset = read.read(dataset, labels=t.labels, multi_label=t.multi_label)
    dataset = dataset.with_labels(t.labels)
    probs = clf.predict_proba(dataset.texts, task=t.name)
    if t.multi_label:
        cut = clf.thresholds.get(t.name, 0.5)
        report = multilabel_report(dataset.y, (probs >= cut).astype(np.uint8), t.labels)
    else:
        report = classification_report(dataset.y, probs.argmax(1), t.labels, scores=probs)
    if out:
        write_report(report, Path(out))
    return report

"""ONNX exports of encoders and encoder classifiers, run with onnxruntime.

An ONNX folder holds three files:

* ``model.onnx``: inputs ``input_ids`` and ``attention_mask``, int64 ``(batch, sequence)``,
  both axes dynamic; outputs ``embeddings`` ``(batch, C)`` (the pooled, optionally normalised
  vector the model reads a text as) and, for a classifier, ``probabilities_<task>``
  ``(batch, K)`` for each task (softmax, or per-label sigmoid for a multi-label task);
* ``tokenizer.json``: frames a text as ``[CLS] pieces [SEP]`` and cuts it to ``max_len`` as
  the model was trained (head or tail; a ``head+tail`` cut is warmstart's own, recorded
  below), for any runtime that reads Hugging Face tokenizers;
* ``warmstart.json``: kind ``onnx``, and under ``config`` what the graph holds (an encoder or
  a classifier), its pooling, normalisation, ``max_len`` and truncation, the special token
  ids, the tasks with their labels and thresholds, and whether the weights are int8.

The export is :mod:`warmstart.models.onnx_export`. Running an export needs onnxruntime
(``pip install 'warmstart[onnx]'``):

    >>> OnnxModel.load("runs/sentiment-onnx").predict_proba(["a wonderful film"])  # doctest: +SKIP
    array([[0.03, 0.97]], dtype=float32)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers

from warmstart.artifact import META_FILE, ONNX_KIND, TOKENIZER_FILE, read_meta
from warmstart.errors import WarmstartError
from warmstart.tokenize.subword import load_tokenizer

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
EMBEDDINGS = "embeddings"
QUANTIZATIONS = ("int8",)
INSTALL_ONNX = "install the ONNX extra: pip install 'warmstart[onnx]'"


def probabilities_output(task: str) -> str:
    """The name of the graph output with the probabilities of ``task``."""
    return f"probabilities_{task}"


# --- runtime ---


def onnx_session(path: Path, *, threads: int | None) -> Any:
    """An onnxruntime session of the graph at ``path`` on the CPU, with ``threads`` threads
    (None or 0: onnxruntime's choice); a clear error without onnxruntime or for a bad file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise WarmstartError(f"{path}: running an ONNX model needs onnxruntime: {INSTALL_ONNX}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's choice (the physical cores)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a bad file
        raise WarmstartError(f"{path}: cannot load the ONNX model ({e}); export it again") from None


@dataclass(frozen=True)
class OnnxTask:
    """One task of an exported classifier: its labels, and the graph output that scores them."""

    name: str
    labels: list[str]
    multi_label: bool
    output: str


class OnnxModel:
    """An ONNX folder (:func:`export_onnx`) run by onnxruntime: sentence vectors for any, class
    probabilities for a classifier, the same as the torch model's (within 1e-4 in fp32).

        >>> model = OnnxModel.load("runs/sentiment-onnx", threads=2)  # doctest: +SKIP
        >>> model.embed(["a wonderful film", "dull"]).shape           # doctest: +SKIP
        (2, 384)
    """

    def __init__(self, session: Any, tokenizer: tokenizers.Tokenizer, config: dict[str, Any], *,
                 folder: Path, batch_size: int = 64) -> None:
        self.session = session
        self.folder = folder
        self.batch_size = batch_size
        tokenizer.no_padding()  # cut and padded here, per batch, as the torch model does
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        where = folder / META_FILE
        try:
            self.holds = str(config["holds"])
            setup = config["embedding"]
            self.pooling = str(setup["pooling"])
            self.normalize = bool(setup["normalize"])
            self.max_len = int(setup["max_len"])
            self.truncation = str(setup["truncation"])
            tokens = config["tokens"]
            self.cls_id, self.sep_id = int(tokens["cls_id"]), int(tokens["sep_id"])
            self.pad_id = int(tokens["pad_id"])
            self.tasks = [OnnxTask(str(t["name"]), [str(x) for x in t["labels"]],
                                   bool(t["multi_label"]), str(t["output"]))
                          for t in config.get("tasks") or []]
            self.thresholds = {str(k): float(v) for k, v in (config.get("thresholds") or {}).items()}
            self.quantize: str | None = config.get("quantize")
            self.dim = int(config["model"]["hidden"])
        except (KeyError, TypeError, ValueError) as e:
            raise WarmstartError(f"{where}: corrupt ONNX settings ({e!r}); export the model again") from None
        if self.max_len < 2:
            raise WarmstartError(f"{where}: max_len {self.max_len} leaves no room for a text")
        outputs = {o.name for o in session.get_outputs()}
        missing = [n for n in [EMBEDDINGS, *(t.output for t in self.tasks)] if n not in outputs]
        if missing:
            raise WarmstartError(f"{folder / ONNX_FILE}: has no output {', '.join(missing)}; "
                                 "export the model again")

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int | None = None,
             batch_size: int = 64) -> OnnxModel:
        """The ONNX folder ``path``; ``threads``: onnxruntime's intra-op threads (default: one
        per physical core)."""
        folder = Path(path)
        meta = read_meta(folder, kind=ONNX_KIND)
        for name in (ONNX_FILE, TOKENIZER_FILE):
            if not (folder / name).is_file():
                raise WarmstartError(f"{folder}: has no {name}; export the model again")
        tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
        session = onnx_session(folder / ONNX_FILE, threads=threads)
        return cls(session, tokenizer, meta["config"], folder=folder, batch_size=batch_size)

    @property
    def is_classifier(self) -> bool:
        return bool(self.tasks)

    def task(self, task: str | None = None) -> OnnxTask:
        """The task named ``task``; None: the first one."""
        if not self.tasks:
            raise WarmstartError(f"{self.folder}: holds an encoder, not a classifier; it embeds "
                                 "texts but has no labels to predict")
        if task is None:
            return self.tasks[0]
        found = next((t for t in self.tasks if t.name == task), None)
        if found is None:
            raise WarmstartError(f"--task {task}: this classifier has "
                                 f"{', '.join(t.name for t in self.tasks)}")
        return found

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """[CLS] pieces [SEP] per text, cut to ``max_len`` as the model was trained."""
        # The cut is EncoderBody's (head, tail, or head+tail); transfer.bodies holds it.
        from warmstart.transfer.bodies import truncate

        keep = self.max_len - 2
        encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[self.cls_id, *truncate(e.ids, keep, self.truncation), self.sep_id]
                for e in encoded]

    def cut(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is longer than ``max_len`` pieces, so the model reads part of it."""
        room = self.max_len - 2  # [CLS] and [SEP]
        encoded = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) > room for e in encoded]

    def run(self, texts: Sequence[str], outputs: Sequence[str]) -> list[np.ndarray]:
        """The graph's ``outputs`` for ``texts``, in order: batches of similar lengths, padded."""
        encoded = self.encode(texts)
        results = [np.zeros((len(encoded), *self._width(name)), dtype=np.float32)
                   for name in outputs]
        order = np.argsort([len(e) for e in encoded], kind="stable")
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, :len(encoded[i])] = encoded[i]
            mask = (ids != self.pad_id).astype(np.int64)  # as EncoderBody masks
            got = self.session.run(list(outputs), {"input_ids": ids, "attention_mask": mask})
            for out, value in zip(results, got, strict=True):
                out[rows] = value
        return results

    def _width(self, output: str) -> tuple[int, ...]:
        if output == EMBEDDINGS:
            return (self.dim,)
        return (len(next(t for t in self.tasks if t.output == output).labels),)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, C) sentence vectors: an encoder's embeddings, or a classifier's features."""
        return self.run(texts, [EMBEDDINGS])[0]

    def predict_proba(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(N, K) class probabilities (softmax), or per-label probabilities (multi-label)."""
        return self.run(texts, [self.task(task).output])[0]

"""ONNX export of encoders and encoder classifiers, and a runtime that runs them with onnxruntime.

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

Exporting needs ``onnx``, ``onnxscript`` and onnxruntime, running it onnxruntime
(``pip install 'warmstart[onnx]'``):

    >>> export_onnx("runs/sentiment", "runs/sentiment-onnx", quantize="int8")  # doctest: +SKIP
    >>> OnnxModel.load("runs/sentiment-onnx").predict_proba(["a wonderful film"])  # doctest: +SKIP
    array([[0.03, 0.97]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.artifact import META_FILE, TOKENIZER_FILE, building, read_meta, write_meta
from warmstart.errors import WarmstartError
from warmstart.models.transformer import Encoder
from warmstart.tokenize.subword import load_tokenizer

ONNX_KIND = "onnx"
ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask")
EMBEDDINGS = "embeddings"
QUANTIZATIONS = ("int8",)
_FP32_FILE = "model.fp32.onnx"  # the graph before quantisation, removed once quantised
_INSTALL = "install the ONNX extra: pip install 'warmstart[onnx]'"


def probabilities_output(task: str) -> str:
    """The name of the graph output with the probabilities of ``task``."""
    return f"probabilities_{task}"


def is_onnx_folder(path: str | os.PathLike[str]) -> bool:
    """Whether folder ``path`` is an ONNX export (``warmstart.json`` of kind ``onnx``)."""
    folder = Path(path)
    return (folder / META_FILE).is_file() and read_meta(folder).get("kind") == ONNX_KIND


# --- export ---


@dataclass
class _Source:
    """What is exported: an encoder, how it pools, and a classifier's heads (if any)."""

    encoder: Encoder
    tokenizer: tokenizers.Tokenizer
    pooling: str
    normalize: bool
    max_len: int
    truncation: str
    heads: list[tuple[str, list[str], bool, nn.Linear]]  # task, labels, multi-label, head
    thresholds: dict[str, float]
    kind: str  # "encoder" or "classifier"


def export_onnx(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, quantize: str | None = None,
    option: str = "--format onnx",
) -> str:
    """Write the encoder or encoder classifier in folder ``path`` (an artifact, or a Hugging
    Face BERT-family folder) as ONNX folder ``out`` (see the module's docstring); returns a
    summary of what was written.

    An encoder embeds as its artifact says (a sentence-transformers model's pooling and
    normalisation; otherwise mean pooling), a classifier as its body does. ``quantize="int8"``
    stores the weights of the matrix products in int8 (onnxruntime's dynamic quantisation:
    activations are quantised per batch as it runs), about 4x smaller and faster on CPUs with
    int8 dot products, at a small cost in accuracy (``warmstart evaluate`` the folder to
    see it on your data). The fp32 graph is checked against the torch model on a padded
    batch before anything is written. ``option`` is what error messages call the request.

        >>> export_onnx("runs/sentiment", "runs/sentiment-onnx")  # doctest: +SKIP
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise WarmstartError(f"--quantize {quantize}: use {', '.join(QUANTIZATIONS)}")
    _require_onnx(option)
    folder = Path(path)
    with building(out) as tmp:
        source = _read_source(folder, option)
        graph = ExportGraph(source).float().eval()
        ids, mask = _sample_batch(source)
        _torch_to_onnx(graph, tmp / _FP32_FILE, ids, mask,
                       max_positions=source.encoder.config.max_positions)
        names = graph.output_names
        with torch.no_grad():
            expected = [t.numpy() for t in graph(ids, mask)]
        got = _run_file(tmp / _FP32_FILE, ids, mask, names)
        for name, a, b in zip(names, expected, got, strict=True):
            drift = float(np.abs(a - b).max()) / max(1.0, float(np.abs(a).max()))
            if drift > 1e-4:  # a bug in the exporter or here, not in the user's model
                raise RuntimeError(f"ONNX export: {name} differs from the torch model's by {drift:.2g}")
        if quantize == "int8":
            _quantize_int8(tmp / _FP32_FILE, tmp / ONNX_FILE)
            (tmp / _FP32_FILE).unlink()
        else:
            (tmp / _FP32_FILE).rename(tmp / ONNX_FILE)
        _write_tokenizer(source, tmp / TOKENIZER_FILE)
        write_meta(tmp, kind=ONNX_KIND, parent=str(folder.resolve()),
                   config=_config(source, names, quantize))
    tasks = "; ".join(f"{t}: {len(labels)} labels" for t, labels, _, _ in source.heads)
    holds = f"classifier ({tasks})" if source.heads else "encoder"
    return (f"ONNX {holds}, {source.pooling} pooling{', normalised' if source.normalize else ''}"
            f"{', int8 weights' if quantize else ''}; run it with "
            "warmstart.models.onnx.OnnxModel or onnxruntime")


def _require_onnx(option: str) -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise WarmstartError(f"{option} needs {e.name}: {_INSTALL}") from None


def _read_source(folder: Path, option: str) -> _Source:
    # Classifiers live in the transfer layer above this one: imported when asked for.
    if (folder / META_FILE).exists() and read_meta(folder).get("kind") == "classifier":
        from warmstart.transfer.classifier import load_encoder_classifier

        clf, body = load_encoder_classifier(folder, option=option, precision="fp32")
        heads = [(t.name, t.labels, t.multi_label, clf.model.head(t.name)) for t in clf.model.tasks]
        return _Source(body.encoder, body.tokenizer, body.pooling, body.normalize, body.max_len,
                       body.truncation, heads, dict(clf.thresholds), "classifier")
    from warmstart.models.embedding_setup import EmbeddingSetup
    from warmstart.models.io import load_pretrained
    from warmstart.models.transformer import Encoder

    loaded = load_pretrained(folder)
    if not isinstance(loaded.model, Encoder):
        raise WarmstartError(f"{option}: {folder} holds a decoder; only encoders and "
                             "encoder classifiers export to ONNX")
    if loaded.tokenizer is None:
        raise WarmstartError(f"{option}: {folder} has no tokenizer.json (or vocab.txt); "
                             "the ONNX folder needs the encoder's tokenizer")
    setup = loaded.embedding or EmbeddingSetup()
    tokenizer = loaded.tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return _Source(loaded.model, tokenizer, setup.pooling, setup.normalize,
                   min(setup.max_len, loaded.model.config.max_positions), setup.truncation,
                   [], {}, "encoder")


class ExportGraph(nn.Module):
    """What is exported: ids and mask (B, T) -> the pooled vector (B, C) and each task's
    probabilities (B, K)."""

    def __init__(self, source: _Source) -> None:
        super().__init__()
        self.encoder = source.encoder
        self.pooling = source.pooling
        self.normalize = source.normalize
        self.heads = nn.ModuleList(head for *_, head in source.heads)
        self.multi_label = [multi for _, _, multi, _ in source.heads]
        self.output_names = [EMBEDDINGS, *(probabilities_output(t) for t, *_ in source.heads)]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                ) -> tuple[torch.Tensor, ...]:
        enc = self.encoder
        x = enc.embed(input_ids)  # (B, T, C)
        # Always masked: an exported graph cannot skip the mask when a batch has no padding,
        # as the encoder's forward does, and the result is the same.
        mask = attention_mask[:, None, None, :].bool()  # (B, 1, 1, T)
        for layer in enc.layers:
            x = layer(x, mask)
        # Pooled as EncoderBody (classifiers) and sentence-transformers (encoders) pool.
        if self.pooling == "pooler":
            pooled = enc.pool(x)
        elif self.pooling == "cls":
            pooled = x[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        if self.normalize:
            pooled = F.normalize(pooled, dim=1)
        outputs = [pooled]
        for head, multi in zip(self.heads, self.multi_label, strict=True):
            logits = head(pooled)  # (B, K)
            outputs.append(torch.sigmoid(logits) if multi else logits.softmax(-1))
        return tuple(outputs)


def _sample_batch(source: _Source) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch of 3 rows of different lengths, [CLS] pieces [SEP], to trace and check with."""
    cls_id, sep_id, pad_id = _special_ids(source)
    vocab = source.encoder.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    lengths = [min(source.max_len, n) for n in (11, 5, 3)]
    ids = torch.full((len(lengths), lengths[0]), pad_id, dtype=torch.long)
    for row, n in enumerate(lengths):
        pieces = torch.randint(0, vocab, (n,), generator=generator)
        pieces[0], pieces[n - 1] = cls_id, sep_id
        ids[row, :n] = pieces
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids, mask


def _torch_to_onnx(graph: ExportGraph, path: Path, ids: torch.Tensor, mask: torch.Tensor, *,
                   max_positions: int) -> None:
    batch = torch.export.Dim("batch")
    sequence = torch.export.Dim("sequence", max=max_positions)
    axes = {0: batch, 1: sequence}
    # The exporter's warnings and log lines (torchvision missing, deprecations) are about its
    # internals, not about the user's model.
    with _quiet("torch.onnx"):
        program = torch.onnx.export(
            graph, (ids, mask), input_names=list(INPUTS), output_names=graph.output_names,
            dynamic_shapes={"input_ids": axes, "attention_mask": axes}, dynamo=True,
            external_data=False, verbose=False)
    assert program is not None
    program.save(str(path))


def _quantize_int8(src: Path, dst: Path) -> None:
    """The encoder's weight matrices in int8 with one scale per output channel (per-tensor
    scales cost a MiniLM SST-2 probe about 2 points of dev accuracy, per-channel ones
    nothing), and its embedding tables in uint8 with one scale per table (onnxruntime
    quantises Gather that way; measured on a fine-tuned MiniLM: no accuracy change, and the
    file 23 MB instead of 59 MB with fp32 embeddings).

    The heads stay fp32: a probe's logistic regression can have weights spread over three
    orders of magnitude, which int8 rounds mostly to 0, and they are a tiny share of the work.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src)).graph
    constants = {t.name for t in graph.initializer}
    heads = _downstream(graph, EMBEDDINGS)
    nodes = [n.name for n in graph.node if n.name not in heads and (
        (n.op_type == "MatMul" and n.input[1] in constants)
        or (n.op_type == "Gather" and n.input[0] in constants))]
    with _quiet(""):  # it suggests pre-processing, which fails on these graphs
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_quantize=nodes)


def _downstream(graph: Any, tensor: str) -> set[str]:
    """The names of the nodes that read ``tensor`` of ``graph``, directly or not."""
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    found: set[str] = set()
    todo = [tensor]
    while todo:
        for node in readers.get(todo.pop(), []):
            if node.name not in found:
                found.add(node.name)
                todo.extend(node.output)
    return found


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from ``logger`` ("": the root logger) and no warnings, for a while."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _run_file(path: Path, ids: torch.Tensor, mask: torch.Tensor, names: list[str],
              ) -> list[np.ndarray]:
    session = _session(path, threads=1)
    return list(session.run(names, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}))


def _special_ids(source: _Source) -> tuple[int, int, int]:
    """[CLS], [SEP] and padding ids, found as EncoderBody finds them."""
    def find(*names: str) -> int | None:
        return next((int(i) for n in names if (i := source.tokenizer.token_to_id(n)) is not None),
                    None)

    cls_id, sep_id = find("[CLS]", "<s>"), find("[SEP]", "</s>")
    if cls_id is None or sep_id is None:
        raise WarmstartError("--format onnx: the encoder's tokenizer has no [CLS]/[SEP] tokens")
    return cls_id, sep_id, source.encoder.config.pad_id


def _write_tokenizer(source: _Source, path: Path) -> None:
    from warmstart.models.hf_tokenizer import framed_tokenizer

    tok = framed_tokenizer(source.tokenizer, "encoder")
    if source.truncation in ("head", "tail"):  # the other runtimes' way of cutting, where it is one
        tok.enable_truncation(source.max_len,
                              direction="right" if source.truncation == "head" else "left")
    tok.save(str(path))


def _config(source: _Source, outputs: list[str], quantize: str | None) -> dict[str, Any]:
    cls_id, sep_id, pad_id = _special_ids(source)
    return {
        "holds": source.kind,
        "file": ONNX_FILE,
        "inputs": list(INPUTS),
        "outputs": outputs,
        "quantize": quantize,
        "embedding": {"pooling": source.pooling, "normalize": source.normalize,
                      "max_len": source.max_len, "truncation": source.truncation},
        "tokens": {"cls_id": cls_id, "sep_id": sep_id, "pad_id": pad_id},
        "tasks": [{"name": t, "labels": labels, "multi_label": multi,
                   "output": probabilities_output(t)} for t, labels, multi, _ in source.heads],
        "thresholds": source.thresholds,
        "model": source.encoder.config.to_dict(),
    }


# --- runtime ---


def _session(path: Path, *, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise WarmstartError(f"{path}: running an ONNX model needs onnxruntime: {_INSTALL}") from None
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
        session = _session(folder / ONNX_FILE, threads=threads)
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

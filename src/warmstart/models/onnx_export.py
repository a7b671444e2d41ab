"""ONNX export of encoders and encoder classifiers (``warmstart model export --format onnx``):
the folder :class:`warmstart.models.onnx.OnnxModel` runs (its layout is described there).

Exporting needs ``onnx``, ``onnxscript`` and onnxruntime (``pip install 'warmstart[onnx]'``):

    >>> export_onnx("runs/sentiment", "runs/sentiment-onnx", quantize="int8")  # doctest: +SKIP

It reads classifiers as well as encoders, so it sits above the transfer layer's classifier;
the runtime (:mod:`warmstart.models.onnx`) does not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tokenizers
import torch
from torch import nn
from torch.nn import functional as F

from warmstart.artifact import META_FILE, ONNX_KIND, TOKENIZER_FILE, building, read_meta, write_meta
from warmstart.errors import WarmstartError
from warmstart.models.onnx import (
    EMBEDDINGS,
    INPUTS,
    INSTALL_ONNX,
    ONNX_FILE,
    QUANTIZATIONS,
    onnx_session,
    probabilities_output,
)
from warmstart.models.transformer import Encoder

_FP32_FILE = "model.fp32.onnx"  # the graph before quantisation, removed once quantised


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
        raise WarmstartError(f"{option} needs {e.name}: {INSTALL_ONNX}") from None


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

    Weights use 7 of the 8 bits (``reduce_range``): on CPUs without VNNI (AVX2, AVX-512F
    alone) onnxruntime multiplies uint8 activations by int8 weights with an instruction whose
    16-bit sums saturate. On an AVX2-only CPU the test classifier's probabilities (random
    weights, large activations) moved by 0.054 on average with 8-bit weights and 0.014 with
    7-bit ones; a MiniLM classifier's, on the 872 SST-2 dev sentences, by 0.0157 and 0.0159
    (accuracy 81.60 and 81.46 against 81.80 in fp32). An export may run on any CPU.
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
                         reduce_range=True, nodes_to_quantize=nodes)


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
    session = onnx_session(path, threads=1)
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



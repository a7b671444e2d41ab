"""The models a server holds: each artifact folder loaded once, with what it can answer.

A classifier classifies (and embeds, with its body's features, unless it reads texts with
TF-IDF or is an ensemble); an encoder or a Hugging Face folder embeds; word vectors embed (the
mean of a text's word vectors) and answer neighbours and analogies. Folders are read with the
same loaders as the CLI, safetensors only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart.artifact import META_FILE, ONNX_KIND, folder_kind, read_meta
from warmstart.embedding import (
    BodyEmbedder,
    Embedder,
    OnnxEmbedder,
    VectorsEmbedder,
    body_cuts,
    load_embedder,
    pick_device,
)
from warmstart.errors import WarmstartError, with_article
from warmstart.models.onnx import OnnxModel
from warmstart.models.onnx_export import export_onnx
from warmstart.transfer.bodies import EncoderBody
from warmstart.transfer.classifier import Classifier
from warmstart.transfer.onnx import OnnxClassifier
from warmstart.vectors.keyed import KeyedVectors

#: A model's name: it is part of the URL (/v1/models/NAME/...).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_model_specs(specs: Sequence[str]) -> dict[str, str]:
    """``NAME=FOLDER`` (or a bare ``FOLDER``, named after its last part) -> {name: folder}."""
    if not specs:
        raise WarmstartError("give at least one model to serve, as NAME=FOLDER")
    models: dict[str, str] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            name, folder = Path(spec.rstrip("/")).name, spec
        if not folder:
            raise WarmstartError(f"{spec}: write NAME=FOLDER, e.g. sentiment=runs/clf")
        if not NAME_PATTERN.fullmatch(name):
            raise WarmstartError(
                f"{spec}: model name {name!r} must be letters, digits, '_', '.' or '-' (at most "
                "64, starting with a letter or digit): it is part of the URL; write NAME=FOLDER")
        if name in models:
            raise WarmstartError(f"{spec}: two models are named {name!r}; write NAME=FOLDER")
        models[name] = folder
    return models


@dataclass
class ServedModel:
    """One loaded artifact and what it can do: ``capabilities`` names the routes it answers."""

    name: str
    path: str
    kind: str  # classifier, encoder or vectors
    provenance: dict[str, Any]
    runtime: str = "torch"  # or onnxruntime (an ONNX export); word vectors: numpy
    classifier: Classifier | None = None
    embedder: Embedder | None = None
    vectors: KeyedVectors | None = None
    why_not: dict[str, str] = field(default_factory=dict)  # capability -> why it is missing

    @property
    def capabilities(self) -> list[str]:
        found = []
        if self.classifier is not None:
            found.append("classify")
        if self.embedder is not None:
            found.append("embed")
        if self.vectors is not None:
            found += ["neighbors", "analogy"]
        return found

    def cannot(self, capability: str) -> str:
        """Why this model does not answer ``capability``, for the error message."""
        if capability in self.why_not:
            return self.why_not[capability]
        offers = ", ".join(self.capabilities)
        return f"model {self.name!r} is {with_article(self.kind)}: it answers {offers}"

    def cuts(self, texts: Sequence[str]) -> list[bool]:
        """Whether the classifier reads only the start of each text (too many pieces)."""
        clf = self.classifier
        if clf is None:
            return [False] * len(texts)
        if isinstance(clf, OnnxClassifier):
            return clf.runtime.cut(texts)
        flags = [False] * len(texts)
        for m in torch_members(clf):
            flags = [a or b for a, b in zip(flags, body_cuts(m.model.body, texts), strict=True)]
        return flags

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "kind": self.kind, "path": self.path,
                                "runtime": self.runtime, "capabilities": self.capabilities}
        if self.classifier is not None:
            clf = self.classifier
            info["tasks"] = [{"name": t.name, "labels": t.labels, "multi_label": t.multi_label,
                              **({"threshold": clf.thresholds.get(t.name, 0.5)}
                                 if t.multi_label else {})}
                             for t in clf.tasks.values()]
        if self.embedder is not None:
            info["embedding"] = self.embedder.describe()
        if self.vectors is not None:
            info["vectors"] = {"words": len(self.vectors), "dim": self.vectors.dim,
                               "subwords": bool(self.vectors.bucket)}
        info["provenance"] = self.provenance
        return info


def _provenance(folder: Path) -> dict[str, Any]:
    """An artifact's warmstart.json (kind, settings, parent, data, when, which version), or
    what a Hugging Face folder says of itself."""
    if (folder / META_FILE).exists():
        return read_meta(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    return {"format": "huggingface", "model_type": config.get("model_type"),
            "architectures": config.get("architectures") or [],
            "sentence_transformers": (folder / "modules.json").is_file()}


def load_model(name: str, path: str, *, precision: str = "auto", device: str = "auto",
               batch_size: int = 64, runtime: str = "auto", threads: int | None = None,
               compile: bool = False) -> ServedModel:
    """Load folder ``path`` as model ``name``, and run each of its capabilities once (so the
    first request is not the one that pays for warming up).

    An ONNX export runs on onnxruntime with ``threads`` intra-op threads; ``runtime="torch"``
    refuses one (``"onnx"`` expects torch folders exported already: :func:`export_for_onnx`).
    ``compile`` runs torch encoders through ``torch.compile`` (:func:`compile_encoders`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise WarmstartError(f"{name}={path}: no such model folder")
    kind = folder_kind(folder)
    model = ServedModel(name=name, path=str(folder), kind=kind, provenance=_provenance(folder))
    if kind == ONNX_KIND:
        if runtime == "torch":
            raise WarmstartError(f"{name}={path}: is an ONNX export; serve it with --runtime "
                                 "onnx (or auto), or serve the folder it was exported from")
        if device == "cuda":
            raise WarmstartError(f"{name}={path}: an ONNX export runs on the CPU with "
                                 "onnxruntime; use --device cpu (or auto)")
        onnx = OnnxModel.load(folder, threads=threads, batch_size=batch_size)
        model.kind = "classifier" if onnx.is_classifier else "encoder"
        model.runtime = "onnxruntime"
        if onnx.is_classifier:
            model.classifier = OnnxClassifier(onnx)
            model.classifier.predict_proba(["warm up"])
        model.embedder = OnnxEmbedder(onnx, source={"path": str(folder)})
    elif kind == "classifier":
        clf = Classifier.load(folder, precision=precision)
        where = pick_device(device)
        for m in torch_members(clf):
            m.model.to(where)
            m.batch_size = batch_size
        model.classifier = clf.predict_only()
        try:
            model.embedder = Embedder.from_classifier(clf, batch_size=batch_size,
                                                      source={"path": str(folder)})
        except WarmstartError as e:
            model.why_not["embed"] = f"model {name!r}: {e}"
        clf.predict_proba(["warm up"])
    elif kind in ("encoder", "vectors"):
        model.embedder = load_embedder(folder, precision=precision, batch_size=batch_size,
                                       device=device)
        if isinstance(model.embedder, VectorsEmbedder):
            model.vectors = kv = model.embedder.vectors
            model.runtime = "numpy"
            if len(kv) > 1:  # computes the unit vectors every query reads
                kv.most_similar(kv.words[0], topn=1)
    else:
        raise WarmstartError(f"{name}={path}: is {with_article(repr(kind))} artifact; serve a "
                             "classifier, an encoder or word vectors")
    if model.embedder is not None:
        model.embedder.embed(["warm up"])
    if compile:
        compile_encoders(model)
    return model


#: Texts whose batches take each path a compiled encoder has: one text, several of one
#: length (no padding, no attention mask) and several of different lengths (a mask).
_WARM_UP = (["warm up"], ["warm up", "warm up"], ["warm up", "and warm up a longer text too"])


def torch_members(clf: Classifier | None) -> list[Classifier]:
    """The torch classifiers that make ``clf``'s predictions: an ensemble's members, or
    ``clf`` itself; none for an ONNX classifier or none at all."""
    from warmstart.transfer.ensemble import Ensemble

    if clf is None or isinstance(clf, OnnxClassifier):
        return []
    return list(clf.members.values()) if isinstance(clf, Ensemble) else [clf]


def compile_encoders(model: ServedModel) -> None:
    """Run ``model``'s torch encoders through ``torch.compile`` (dynamic shapes: one graph for
    every batch size and length), compiled here on each path a request can take, so that no
    request waits for it. Where compiling fails (inductor needs a C++ compiler at run time)
    the encoders stay eager and ``model.runtime`` says why."""
    import torch

    clf = model.classifier
    bodies = [m.model.body for m in torch_members(clf)]
    if isinstance(model.embedder, BodyEmbedder):
        bodies.append(model.embedder.body)
    encoders = list({id(b): b for b in bodies if isinstance(b, EncoderBody)}.values())
    if not encoders:
        return
    for body in encoders:
        body.forward = torch.compile(body.forward, dynamic=True)  # type: ignore[method-assign]
    try:
        for texts in _WARM_UP:
            if clf is not None:
                clf.predict_proba(texts)
            if model.embedder is not None:
                model.embedder.embed(texts)
    except Exception as e:  # noqa: BLE001 (any failure of the compiler: run eager)
        for body in encoders:
            del body.forward  # the class's forward again
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        model.runtime = f"torch (eager: compiling failed: {type(e).__name__}: {reason})"
        return
    model.runtime = "torch (compiled)"


def load_models(specs: dict[str, str], *, precision: str = "auto", device: str = "auto",
                batch_size: int = 64, runtime: str = "auto", threads: int | None = None,
                compile: bool = False) -> dict[str, ServedModel]:
    """Every model of ``specs`` ({name: folder}) loaded."""
    return {name: load_model(name, path, precision=precision, device=device,
                             batch_size=batch_size, runtime=runtime, threads=threads,
                             compile=compile)
            for name, path in specs.items()}


def export_for_onnx(specs: dict[str, str], into: Path, *,
                    echo: Callable[[str], None] = print) -> dict[str, str]:
    """``specs`` with every torch encoder and encoder classifier exported to ONNX in a folder
    under ``into`` (what ``--runtime onnx`` serves); ONNX exports and word vectors as given."""
    out = {}
    for name, path in specs.items():
        folder = Path(path)
        if not folder.is_dir():
            raise WarmstartError(f"{name}={path}: no such model folder")
        kind = folder_kind(folder)
        if kind in (ONNX_KIND, "vectors"):
            out[name] = path
            continue
        if kind not in ("encoder", "classifier"):
            raise WarmstartError(f"{name}={path}: is {with_article(repr(kind))} artifact; serve "
                                 "a classifier, an encoder or word vectors")
        start = time.perf_counter()
        try:
            export_onnx(folder, into / name, option="--runtime onnx")
        except WarmstartError as e:
            raise WarmstartError(f"{name}={path}: {e}") from None
        echo(f"{name}: exported to ONNX for onnxruntime in {time.perf_counter() - start:.1f} s")
        out[name] = str(into / name)
    return out

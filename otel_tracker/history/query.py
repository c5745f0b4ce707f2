"""Fields of a run by name, and ``--where`` expressions over them (never ``eval``).

A field is ``params.<path>`` (a param, nested keys dotted: ``params.optimizer.lr``),
``<key>`` or ``<key>.<figure>`` of a series logged with ``run.log()`` (``acc`` is its
last value; ``acc.best``, ``acc.min``, ``acc.max``, ``acc.count``), or one of the run's
own: ``name``, ``scenario``, ``kind``, ``status``, ``duration``, ``steps``.

An expression compares fields with numbers, quoted strings or ``true``/``false`` (a
boolean param), and joins comparisons
with ``and``, ``or``, ``not`` and parentheses::

    params.lr < 0.01 and acc > 0.9
    status == "completed" or (loss.best <= 0.2 and not params.model == "small")

A comparison with a missing field, or of a number with a string, is false; a field
that no run has (a typo: ``loss.bset``) is named by :func:`unknown_fields`, so the
CLI can say so rather than list nothing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from ..errors import OtelTrackerError
from ..values import is_real

RUN_FIELDS = ("name", "scenario", "kind", "status", "duration", "steps")
FIGURES = ("last", "best", "min", "max", "count", "first_step", "last_step")
MAX_EXPRESSION = 2_000
MAX_NESTING = 32  # parentheses and nots inside each other
_MISSING = object()

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
    r"|(?P<string>\"[^\"]*\"|'[^']*')"
    r"|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<paren>[()])"
    r"|(?P<word>[A-Za-z_][\w./-]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class QueryError(OtelTrackerError):
    """A ``--where`` expression or a field name that cannot be used."""


def field(doc: dict[str, Any], status: str, name: str) -> Any:
    """The value of field ``name`` of a run (its manifest and its inferred status),
    or :data:`None` when the run has no such value."""
    value = _field(doc, status, name)
    return None if value is _MISSING else value


def _field(doc: dict[str, Any], status: str, name: str) -> Any:
    if name.startswith("params."):
        value: Any = doc.get("params")
        for part in name[len("params.") :].split("."):
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value
    if name in RUN_FIELDS:
        if name == "status":
            return status
        if name == "duration":
            return (
                doc.get("duration_s") if doc.get("duration_s") is not None else doc.get("elapsed_s")
            )
        if name == "steps":
            return doc.get("steps_completed")
        return doc.get(name)
    keys = (doc.get("metrics") or {}).get("keys") or {}
    if not isinstance(keys, dict):
        return _MISSING
    series = keys.get(name)
    figure = "last"
    if series is None and "." in name:
        base, _, figure = name.rpartition(".")
        series = keys.get(base)
        if figure not in FIGURES:
            return _MISSING
    if not isinstance(series, dict):
        return _MISSING
    return series.get(figure, _MISSING)


class Where:
    """A parsed ``--where`` expression: call it with (manifest, status); ``fields``
    are the field names it reads."""

    def __init__(self, predicate: Callable[[dict[str, Any], str], bool], fields: list[str]):
        self._predicate, self.fields = predicate, fields

    def __call__(self, doc: dict[str, Any], status: str) -> bool:
        return self._predicate(doc, status)


def parse_where(text: str) -> Where:
    """``text`` as a predicate over (manifest, status); :class:`QueryError` if it is
    not an expression of the grammar above."""
    if len(text) > MAX_EXPRESSION:
        raise QueryError(f"--where expression longer than {MAX_EXPRESSION} characters")
    tokens = _tokens(text)
    parser = _Parser(tokens, text)
    predicate = parser.expression()
    if parser.position != len(tokens):
        raise QueryError(f"--where {text!r}: unexpected {tokens[parser.position][1]!r}")
    return Where(predicate, list(dict.fromkeys(parser.fields)))


def unknown_fields(names: list[str], runs: list[tuple[dict[str, Any], str]]) -> list[str]:
    """The field names that none of ``runs`` (manifest, status) has."""
    return [n for n in names if all(_field(doc, st, n) is _MISSING for doc, st in runs)]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"--where {text!r}: cannot read {text[position:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """expression := term ("or" term)* ; term := factor ("and" factor)* ;
    factor := "not" factor | "(" expression ")" | field op value"""

    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens, self.text, self.position = tokens, text, 0
        self.depth = 0
        self.fields: list[str] = []

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, what: str) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise QueryError(f"--where {self.text!r}: ends where {what} was expected")
        self.position += 1
        return token

    def expression(self) -> Callable[[dict[str, Any], str], bool]:
        parts = [self.term()]
        while self._peek() == ("word", "or"):
            self.position += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda d, s: any(p(d, s) for p in parts))

    def term(self) -> Callable[[dict[str, Any], str], bool]:
        parts = [self.factor()]
        while self._peek() == ("word", "and"):
            self.position += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda d, s: all(p(d, s) for p in parts))

    def factor(self) -> Callable[[dict[str, Any], str], bool]:
        kind, value = self._take("a comparison")
        if (kind, value) in (("word", "not"), ("paren", "(")):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise QueryError(f"--where: more than {MAX_NESTING} levels of ( and not")
            try:
                if value == "not":
                    negated = self.factor()
                    return lambda d, s: not negated(d, s)
                inner = self.expression()
                if self._take("')'") != ("paren", ")"):
                    raise QueryError(f"--where {self.text!r}: a '(' is not closed")
                return inner
            finally:
                self.depth -= 1
        if kind != "word" or value in ("and", "or"):
            raise QueryError(f"--where {self.text!r}: expected a field, got {value!r}")
        op_kind, op = self._take("a comparison operator")
        if op_kind != "op":
            raise QueryError(
                f"--where {self.text!r}: expected <, <=, >, >=, == or != after {value!r}"
            )
        literal = _literal(self._take("a number or a quoted string"), self.text)
        compare, name = _COMPARE[op], value
        self.fields.append(name)

        def predicate(doc: dict[str, Any], status: str) -> bool:
            found = _field(doc, status, name)
            if found is _MISSING or found is None:
                return False
            if is_real(literal) != is_real(found) or isinstance(literal, bool) != isinstance(
                found, bool
            ):
                return False  # a number is never a string, a bool never a number
            try:
                return bool(compare(found, literal))
            except TypeError:
                return False

        return predicate


def _literal(token: tuple[str, str], text: str) -> Any:
    kind, value = token
    if (kind, value) in (("word", "true"), ("word", "false")):
        return value == "true"
    if kind == "number":
        return float(value)
    if kind == "string":
        return value[1:-1]
    raise QueryError(
        f"--where {text!r}: expected a number or a quoted string (or true, false), got {value!r}"
    )


def sort_key(doc: dict[str, Any], status: str, name: str) -> tuple[int, Any]:
    """For sorting runs by a field: numbers, then strings, then runs without it."""
    value = field(doc, status, name)
    if is_real(value):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, 0)

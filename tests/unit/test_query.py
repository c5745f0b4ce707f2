"""Fields of a run and ``--where`` expressions (history/query.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from otel_tracker.history.query import QueryError, field, parse_where, sort_key

DOC: dict[str, Any] = {
    "name": "sweep",
    "duration_s": 12.5,
    "params": {"lr": 0.01, "opt": {"name": "adam"}, "tags": ["a"], "amp": True},
    "metrics": {
        "keys": {
            "acc": {"last": 0.91, "best": 0.93, "min": 0.1, "max": 0.93, "count": 5},
            "train/loss": {"last": 0.2, "best": None, "min": 0.2, "max": 2.0, "count": 5},
        }
    },
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("params.lr", 0.01),
        ("params.opt.name", "adam"),
        ("params.missing", None),
        ("params.lr.deeper", None),
        ("acc", 0.91),
        ("acc.best", 0.93),
        ("acc.count", 5),
        ("acc.nonsense", None),
        ("train/loss", 0.2),
        ("train/loss.max", 2.0),
        ("name", "sweep"),
        ("status", "completed"),
        ("duration", 12.5),
        ("nothing", None),
    ],
)
def test_fields_by_name(name: str, value: Any) -> None:
    assert field(DOC, "completed", name) == value


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        ("params.lr < 0.05 and acc > 0.9", True),
        ("params.lr < 0.005 or acc >= 0.91", True),
        ("not (params.lr < 0.05)", False),
        ('params.opt.name == "adam"', True),
        ("params.opt.name == 'sgd'", False),
        ("acc.best > 0.92 and (status == 'completed' or name == 'x')", True),
        ("missing > 0", False),  # a missing field: never true
        ("not missing > 0", True),
        ('acc == "0.91"', False),  # a number is never a string
        ("train/loss.max >= 2", True),
        ("duration < 1e2", True),
        ("acc > -1", True),
        ("params.amp == true", True),
        ("params.amp != false", True),
        ("params.amp == 1", False),  # a bool is not a number
        ("acc == true", False),
        ("((((acc > 0))))", True),
    ],
)
def test_expressions(expression: str, holds: bool) -> None:
    assert parse_where(expression)(DOC, "completed") is holds


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("params.lr <", "ends where a number or a quoted string was expected"),
        ("params.lr 0.1", "expected <, <=, >, >=, == or !="),
        ("(acc > 1", "ends where"),
        ("acc > 1)", "unexpected ')'"),
        ('__import__("os").system("x")', "cannot read '.system"),
        ("acc > 1 and", "ends where a comparison was expected"),
        ("acc > params.lr", "expected a number or a quoted string"),
        ("acc ~ 1", "cannot read"),
        ("", "ends where a comparison was expected"),
        ("x" * 3000, "longer than"),
        ("(" * 400 + "acc > 0" + ")" * 400, "more than 32 levels"),
        ("not " * 40 + "acc > 0", "more than 32 levels"),
    ],
)
def test_a_bad_expression_is_one_clear_error(expression: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_where(expression)


def test_sorting_puts_numbers_then_strings_then_missing() -> None:
    docs = [{"params": {"x": v}} for v in (3, "b", None, 1, "a")] + [{}]
    ordered = sorted(docs, key=lambda d: sort_key(d, "completed", "params.x"))
    assert [field(d, "completed", "params.x") for d in ordered] == [1, 3, "a", "b", None, None]

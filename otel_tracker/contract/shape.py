"""Type checks of a manifest against the published schema, for readers.

Readers (``show``, ``summary``, ``status``...) format what they read; a field of
the wrong type in a damaged or hand-edited file must be one clear problem line,
not a traceback from deep inside a renderer. This walks the types of
``schema/manifest.schema.json`` (``type``, ``properties``, ``items``,
``additionalProperties``, ``enum``, ``oneOf``, ``$ref``); it does not check
patterns, bounds or required keys (readers tolerate those, and older files of
the same ``schema_version`` may lack newer keys). Unknown keys are allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..schema import manifest_schema

# Bounds of what readers accept, beyond types (numbers and file sizes:
# :mod:`otel_tracker.contract.jsonfile`). A step costs the writer a rewrite of the whole
# manifest at each transition (26 ms at 2,000 steps), so no real run comes near this.
MAX_STEPS = 10_000
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def type_problem(doc: Any) -> str | None:
    """Where ``doc`` has a value of the wrong type, e.g. ``steps[0].progress.completed:
    expected integer, got 'x'``; ``None`` if every typed value fits."""
    return schema_problem(doc, manifest_schema(), "manifest")


def schema_problem(
    doc: Any, schema: dict[str, Any], what: str, *, required: bool = False
) -> str | None:
    """:func:`type_problem` against any schema of ours (``what`` names the document);
    ``required``: keys the schema requires must be there too."""
    check = _CHECKERS.get((id(schema), required))
    if check is None:  # compiled once per schema (loaded once): 10,000 steps take ~0.1 s
        check = _CHECKERS[id(schema), required] = _compile(schema, schema, {}, required)
    found = check(doc)
    if found is None:
        return None
    where, message = found
    return f"{where.removeprefix('.') or what}: {message}"


# A check returns None, or (where, message) with ``where`` the path below the node
# checked: built only on the way out of a failure, so a valid document costs no strings.
Check = Callable[[Any], "tuple[str, str] | None"]
_CHECKERS: dict[tuple[int, bool], Check] = {}


def _compile(
    node: dict[str, Any], root: dict[str, Any], memo: dict[int, Check], required: bool
) -> Check:
    node = _resolve(root, node)
    key = id(node)
    if key in memo:
        if memo[key] is not _pending:
            return memo[key]
        return lambda value: memo[key](value)  # a recursive $ref (substeps): found when called
    memo[key] = _pending
    variants = node.get("oneOf")
    if variants is not None:
        compiled = [(_resolve(root, v), _compile(v, root, memo, required)) for v in variants]

        def check_variants(value: Any) -> tuple[str, str] | None:
            # the variant of the value's own type is the one to check (null or an object...)
            for variant, check in compiled:
                if _fits(value, variant):
                    return check(value)
            return "", f"unexpected {_show(value)}"

        memo[key] = check_variants
        return check_variants
    expected = node.get("type")
    enum = node.get("enum")
    properties = {
        k: _compile(v, root, memo, required) for k, v in node.get("properties", {}).items()
    }
    extra = node.get("additionalProperties")
    other = _compile(extra, root, memo, required) if isinstance(extra, dict) else None
    items = (
        _compile(node["items"], root, memo, required)
        if isinstance(node.get("items"), dict)
        else None
    )
    names = (
        None
        if expected is None
        else expected
        if isinstance(expected, str)
        else " or ".join(expected)
    )
    needed = tuple(node.get("required", ())) if required else ()

    def check(value: Any) -> tuple[str, str] | None:
        if expected is not None and not _is_type(value, expected):
            return "", f"expected {names}, got {_show(value)}"
        if enum is not None and value not in enum:
            return "", f"{_show(value)} is not one of {enum}"
        if isinstance(value, dict) and needed:
            missing = [k for k in needed if k not in value]
            if missing:
                return "", f"missing {', '.join(map(repr, missing))}"
        if isinstance(value, dict) and (properties or other):
            for k, item in value.items():
                sub = properties.get(k, other)
                if sub is not None and (found := sub(item)) is not None:
                    return f".{k}{found[0]}", found[1]
        elif isinstance(value, list) and items is not None:
            for index, item in enumerate(value):
                if (found := items(item)) is not None:
                    return f"[{index}]{found[0]}", found[1]
        return None

    memo[key] = check
    return check


def _pending(value: Any) -> tuple[str, str] | None:  # pragma: no cover - replaced before use
    raise AssertionError("schema compiled while being compiled")


def _fits(value: Any, node: dict[str, Any]) -> bool:
    expected = node.get("type")
    return expected is None or _is_type(value, expected)


def _is_type(value: Any, expected: str | list[str]) -> bool:
    names = [expected] if isinstance(expected, str) else expected
    for name in names:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, _TYPES[name]):
            return True
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True  # JSON has one number type: 4.0 is an integer
    return False


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

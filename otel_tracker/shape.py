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
from typing import Any

from .schema import manifest_schema

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
    schema = manifest_schema()
    return _check(doc, schema, schema, "")


def _check(value: Any, node: dict[str, Any], root: dict[str, Any], path: str) -> str | None:
    node = _resolve(root, node)
    variants = node.get("oneOf")
    if variants is not None:
        # the variant of the value's own type is the one to check (null or an object...)
        fitting = [v for v in map(lambda v: _resolve(root, v), variants) if _fits(value, v)]
        if not fitting:
            return f"{path or 'manifest'}: unexpected {_show(value)}"
        return _check(value, fitting[0], root, path)
    if not _fits(value, node):
        expected = node["type"]
        names = expected if isinstance(expected, str) else " or ".join(expected)
        return f"{path or 'manifest'}: expected {names}, got {_show(value)}"
    if "enum" in node and value not in node["enum"]:
        return f"{path}: {_show(value)} is not one of {node['enum']}"
    if isinstance(value, dict):
        properties = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                problem = _check(item, sub, root, f"{path}.{key}" if path else str(key))
                if problem:
                    return problem
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            problem = _check(item, node["items"], root, f"{path}[{index}]")
            if problem:
                return problem
    return None


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

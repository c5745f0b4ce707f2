"""A wrapped command's params: the long options on its command line.

``otel-tracker run -- python train.py --epochs 3 --lr=0.01 --amp`` records
``{"command": [...], "epochs": 3, "lr": 0.01, "amp": true}``, so wrapped runs can be
listed, filtered and compared by their configuration (``list --where 'params.lr <
0.05'``, ``compare``) and keyed by it (``--key-params epochs``), like runs that call
``track_run(params=...)`` themselves.

Only long options are read: ``-n 5`` could as well be a flag ``-n`` and an argument
``5``, and short flags bundle (``-vx``). Names are spelled as :mod:`argparse` spells
its ``dest`` (``--learning-rate`` -> ``learning_rate``). Values that read as numbers
are numbers; anything after a bare ``--`` is an argument, not an option. The argv
given here is already redacted (``--api-key ***``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError

MAX_OPTIONS = 64  # a command line is not a params file; the rest stays in "command"
RESERVED = frozenset({"command", "pipeline_file"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_INT = re.compile(r"^[+-]?\d+$")
_NUMBER_START = re.compile(r"^[+-]?(\d|\.\d)")


def param_value(text: str) -> Any:
    """``"3"`` -> 3, ``"0.01"`` -> 0.01, ``"1e-4"`` -> 0.0001; any other text as is."""
    if _INT.match(text):
        return int(text)
    if _NUMBER_START.match(text):
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    return text


def command_options(argv: Sequence[str]) -> dict[str, Any]:
    """The long options of ``argv`` (its program excluded) as params; an option given
    more than once keeps every value, in order."""
    options: dict[str, Any] = {}
    words = list(argv[1:])
    index = 0
    while index < len(words) and len(options) < MAX_OPTIONS:
        word = words[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("--") or len(word) == 2:
            continue
        name, equals, value = word[2:].partition("=")
        if not equals:
            following = words[index] if index < len(words) else None
            if following is not None and (
                not following.startswith("-") or _NUMBER_START.match(following)
            ):
                value, index = following, index + 1
        if not _NAME.match(name):
            continue
        key = name.replace("-", "_")
        if key in RESERVED:
            continue
        parsed: Any = param_value(value) if (equals or value) else True
        if key in options:
            earlier = options[key]
            options[key] = [*earlier, parsed] if isinstance(earlier, list) else [earlier, parsed]
        else:
            options[key] = parsed
    return options


def explicit_params(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``--param KEY=VALUE`` values as params (numbers read as numbers)."""
    params: dict[str, Any] = {}
    for pair in pairs or ():
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--param takes KEY=VALUE, got {pair!r}")
        params[key.strip()] = param_value(value)
    return params


def merged_params(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers win: what the command line says, then ``--param``."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer or {})
    return merged

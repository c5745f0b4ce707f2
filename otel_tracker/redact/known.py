"""Values this process already knows are secrets, scrubbed from every later text.

A value hidden by its name (a ``password`` param, a ``--api-key`` argument, the
``HF_TOKEN`` variable) may turn up again where no pattern recognises it: in an
exception message (``f"auth failed with {token}"``), a wrapped command's log or a
warning. :func:`remember_secret` collects them; :func:`scrub_known` removes them.
Only specific values are kept (see :func:`memorable`), at most ``MAX_KNOWN``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

from .names import SECRET, mixed_word, secrecy

REDACTED = "***"

_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_known_lock = threading.Lock()
MAX_KNOWN = 256


# a relative path ("results/run1"): a -p value may be one, and tracebacks are full of them
_PATH_LIKE = re.compile(r"[\w.-]*/[\w./-]*")


def memorable(value: str) -> bool:
    """Specific enough to scrub wherever it appears: 8+ characters of two kinds or more,
    no spaces, not a path (scrubbing "postgres" or the working directory would maim text)."""
    if REDACTED in value or not mixed_word(value, 8, 1024, symbols=True):
        return False
    return _PATH_LIKE.fullmatch(value) is None


def remember_secret(value: object) -> None:
    """Scrub ``value`` from every later text too (error messages, logs, warnings)."""
    global _known_pattern
    if not isinstance(value, str) or value in _known or not memorable(value):
        return
    with _known_lock:
        if len(_known) < MAX_KNOWN:
            _known.add(value)
            _known_pattern = None


def remember_environment(environ: Mapping[str, str]) -> None:
    """Remember the values of secret-named variables (``HF_TOKEN``, ``DB_PASSWORD``...)."""
    for name, value in environ.items():
        if secrecy(name) == SECRET:
            remember_secret(value)


def scrub_known(text: str) -> str:
    """``text`` with every remembered secret replaced (one pass, longest first)."""
    global _known_pattern
    if not _known:
        return text
    pattern = _known_pattern
    if pattern is None:
        with _known_lock:
            ordered = sorted(_known, key=len, reverse=True)
            pattern = _known_pattern = re.compile("|".join(map(re.escape, ordered)))
    return pattern.sub(REDACTED, text)

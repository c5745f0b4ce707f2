"""Text from files and users, made safe to print on a terminal.

Run, step and scenario names, error messages, skip reasons, warnings: all come
from users or from files anyone may edit. Printed raw, ``ESC ] ... BEL`` retitles
or hyperlinks a reader's terminal, ``ESC [ ... `` moves its cursor or clears it,
and a newline in a step name forges a line such as ``Run train completed``.
:func:`printable` shows every control character as its escape (``\\x1b``,
``\\n``), as do C1 controls, bidirectional overrides (they reorder what a reader
sees), line separators and lone surrogates (they cannot even be encoded), and
cuts text past a length that no screen can use, so printing costs what it shows.

Leaf module: the reading side (CLI, reports) and the writing side (progress lines
of a running tracker) both use it. Keep it free of imports from either.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_CHARS = 2000  # one value on screen: longer text is cut, with how much was cut
# C1 controls, bidirectional marks and overrides, line/paragraph separators, surrogates
_OTHER = r"\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(r"[\x00-\x1f" + _OTHER + "]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f" + _OTHER + "]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# json.dumps escapes C0 controls itself; these it leaves raw (with ensure_ascii=False)
_JSON_RAW = re.compile("[" + _OTHER + "]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: object, limit: int | None = MAX_CHARS, *, lines: bool = False) -> str:
    """``text`` with control characters escaped (``lines``: newlines kept), cut after
    ``limit`` characters. Idempotent: its output has nothing left to escape."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = f"{s[:limit]}… (+{len(s) - limit:,} characters)"
    return (_CONTROL_BUT_NEWLINE if lines else _CONTROL).sub(_escape, s)


def json_text(doc: Any, **options: Any) -> str:
    """``json.dumps(doc, ensure_ascii=False, ...)`` that a terminal can show: the
    characters JSON leaves raw are written as ``\\uXXXX`` escapes (still valid JSON)."""
    text = json.dumps(doc, ensure_ascii=False, **options)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

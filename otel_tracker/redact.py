"""Keep secrets out of manifests and exporters.

Used on command lines, params and allow-listed environment values before they
are recorded anywhere. It errs on the side of redacting: a false positive costs
a ``***`` in a record, a false negative leaks a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "***"

# A key (flag, param, env var) whose value is a secret.
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|"
    r"private[-_]?key|client[-_]?secret|credential|auth|session[-_]?id|cookie|signature|"
    r"dsn|webhook)",
    re.IGNORECASE,
)
# Keys that match the pattern above but are not secrets.
_NOT_SECRET_KEY = re.compile(
    r"^(author|authors|auth[-_]?type|max[-_]?tokens?|num[-_]?tokens?|"
    r"tokenizer(_name)?|tokens?[-_]?per[-_]?\w+)$",
    re.IGNORECASE,
)

_URL_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]+)@"
)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Well-known credential shapes: GitHub, OpenAI-style, Slack, AWS key ids,
# Hugging Face, GitLab, W&B-length hex keys and JWTs.
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{16,}|"
    r"xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|glpat-[A-Za-z0-9_-]{16,}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# key=value inside a single string (query strings, "--opt=..." handled separately).
_INLINE_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=)(?P<value>[^\s&;]+)")


def is_secret_key(key: str) -> bool:
    """Whether a flag, parameter or variable name names a secret."""
    bare = key.lstrip("-")
    return bool(_SECRET_KEY.search(bare)) and not _NOT_SECRET_KEY.match(bare)


def redact_text(text: str) -> str:
    """Redact credentials embedded in free text (URLs, headers, token shapes, k=v)."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _TOKEN_SHAPES.sub(REDACTED, text)

    def _assignment(m: re.Match[str]) -> str:
        if is_secret_key(m["key"]):
            return f"{m['key']}={REDACTED}"
        return m.group(0)

    return _INLINE_ASSIGNMENT.sub(_assignment, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Redact a command line: ``--api-key X``, ``--password=X``, ``TOKEN=x cmd``, URLs."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and "=" in arg:
            flag, _, _value = arg.partition("=")
            if is_secret_key(flag):
                out.append(f"{flag}={REDACTED}")
                continue
        elif arg.startswith("-") and len(arg) > 1 and is_secret_key(arg):
            out.append(arg)
            hide_next = True
            continue
        out.append(redact_text(arg))
    return out


def redact_value(value: Any, key: str | None = None) -> Any:
    """Redact a JSON-like value recursively; a secret key hides its whole value."""
    if key is not None and is_secret_key(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value

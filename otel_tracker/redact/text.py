"""Keep secrets out of manifests, summaries, logs and mirrors.

Used on command lines, params, error messages and tracebacks, skip reasons,
warnings, allow-listed environment values and the tee'd output of wrapped
commands, before they are recorded anywhere. It errs on the side of redacting:
a false positive costs a ``***`` in a record, a false negative leaks a
credential. Which names name a secret: :mod:`otel_tracker.redact.names`.

Every pass is linear in the text's length, whatever the text: patterns only
start where a word, name or flag starts (a look-behind refuses every later
position of the same run), and URL credentials are found by a scanner, not a
backtracking pattern. ``benchmarks/bench_redact.py`` measures 20 MB inputs.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from typing import IO

from .flags import LAUNCHERS, P_FLAGS, TEXT_FLAG, USER_FLAGS, flag_value, program_name, text_flag
from .known import REDACTED, remember_environment, remember_secret, scrub_known
from .names import MAYBE, NAME_STEMS, NOT, hides, is_secret_key, looks_like_credential, secrecy

__all__ = [
    "REDACTED",
    "is_secret_key",
    "redact_argv",
    "redact_endpoint",
    "redact_exception",
    "redact_text",
    "remember_environment",
    "remember_secret",
]


# -- URL userinfo --------------------------------------------------------------------
# Everything from "://" to the end of the word; the userinfo ends at the word's last
# "@" (a password may hold "@", "/", "+", ":" or "?"; over-redacting a path that holds
# an "@" is the price), and never runs into a second URL of the same word.
_URL_WORD = re.compile(r"://\S*")
_SCHEME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-"
_PORT_THEN_PATH = re.compile(r"\d{1,5}(?:[/?#]|$)")


def _url_userinfo(word: str) -> str:
    if "@" not in word:
        return word
    pieces = word.split("://")  # pieces[0] is "": the word starts with "://"
    last = len(pieces) - 1
    for i in range(1, last + 1):
        piece = pieces[i]
        # the next URL's scheme ends this piece: its userinfo cannot run into it
        body = piece if i == last else piece.rstrip(_SCHEME_CHARS)
        at = body.rfind("@")
        if at != -1:
            pieces[i] = _userinfo(body[:at]) + piece[at:]
    return "://".join(pieces)


def _userinfo(info: str) -> str:
    """The userinfo of a URL (before its last "@"), with its credentials hidden."""
    colon = info.find(":")
    if colon == -1:  # a user name, or a token used as one (https://TOKEN@github.com)
        return REDACTED if looks_like_credential(info) else info
    user, password = info[:colon], info[colon + 1 :]
    if not password or any(c in user for c in "/?#") or _PORT_THEN_PATH.match(password):
        return info  # "host:8080/a@b": a port and a path, no userinfo
    remember_secret(password)
    return f"{user}:{REDACTED}"


# -- authorization schemes: "Bearer X", "Basic X" (also outside a header) -------------
_AUTH_SCHEME = re.compile(
    r"(?<![\w-])(?P<scheme>(?i:bearer)|Basic|Token|Digest|Bot)[ \t]+"
    r"(?!(?i:bearer|basic|token|digest|bot)\b)(?P<cred>[\w.~+/=-]+)"
)


def _auth_scheme(m: re.Match[str]) -> str:
    cred = m["cred"]
    bearer = m["scheme"].lower() == "bearer"
    if cred == REDACTED or not (looks_like_credential(cred) or (bearer and len(cred) >= 8)):
        return m.group(0)
    remember_secret(cred)
    return f"{m['scheme']} {REDACTED}"


# -- key=value, 'key': value, Header-Name: value --------------------------------------
# Found key by key, resuming right after each separator, so the value of a harmless key
# is searched too ("url=https://h/?token=X"); only a hidden value is skipped whole.
# (?=(?P<x>...))(?P=x) takes a whole run at once and never gives part of it back
# (an atomic group, which re has only from Python 3.11): no backtracking into names.
# A name must be followed by a separator, then hold one of the stems.
_ASSIGN_KEY = re.compile(
    r"(?<![\w.-])(?=-{0,2}[A-Za-z_][\w.-]*['\"]?[ \t]*[=:])(?=-{0,2}[\w.-]{0,128}?"
    + NAME_STEMS
    + r")(?=(?P<key>-{0,2}[A-Za-z_][\w.-]*))(?P=key)['\"]?"
    r"(?:(?P<eq>[ \t]*=(?!=)[ \t]*)|[ \t]*:(?![/=])[ \t]*)"
)
_QUOTED = r"""[bBrRuUfF]{0,2}(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_EQ_VALUE = re.compile(_QUOTED + r"""|[^\s'"&;,)\]}>=][^\s'"&;,)\]}>]*""")
_COLON_VALUE = re.compile(_QUOTED + r"""|[^\s'"][^\n'"]*""")  # a header runs to the line's end
# an ambiguous name's value ends at "=" and ":" too, so such values never overlap
_SHORT_VALUE = re.compile(_QUOTED + r"""|[^\s'"&;,)\]}>=:]+""")
_LONG_WORD = re.compile(r"""[^\s'"&;,)\]}>=:]{12}""")
_SCHEME_WORD = re.compile(r"(?:Bearer|Basic|Token|Digest|Bot)[ \t]+", re.IGNORECASE)
_SCHEME_VALUE = re.compile(r"""(?:Bearer|Basic|Token|Digest|Bot)[ \t]+[^\s'";,]+""", re.IGNORECASE)
# "password: str" in a traceback's source line is a type hint, not a password
_TYPE_HINT = re.compile(r"(?:str|bytes|int|float|bool|None|Optional|Any|Union|Secret\w*)\b")


def _redact_assignments(text: str) -> str:
    out: list[str] = []
    done = pos = 0
    search = _ASSIGN_KEY.search
    while (m := search(text, pos)) is not None:
        pos = m.end()
        key = m["key"].lstrip("-")
        verdict = secrecy(key)
        if verdict == NOT or text.startswith(REDACTED, pos):
            continue
        colon = m["eq"] is None
        if verdict == MAYBE:  # only a credential-looking value is hidden: 12+ characters
            if _LONG_WORD.match(text, pos) is None and text[pos : pos + 1] not in ("'", '"'):
                continue
            pattern = _SHORT_VALUE
        elif _SCHEME_WORD.match(text, pos):
            # "Authorization: Bearer X; more": the credential, not the rest of the line
            pattern = _SCHEME_VALUE
        elif colon:
            if _TYPE_HINT.match(text, pos):  # before reading to the line's end
                continue
            pattern = _COLON_VALUE
        else:
            pattern = _EQ_VALUE
        value = pattern.match(text, pos)
        if value is None:
            continue
        hidden = _hidden_value(key, value.group(0), colon)
        if hidden is not None:
            out += (text[done:pos], hidden)
            done = pos = value.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _hidden_value(key: str, value: str, colon: bool) -> str | None:
    """``value`` (as written, maybe quoted) with the secret in it hidden, or ``None``."""
    opening = closing = trailing = ""
    if value[-1] in "'\"" and len(value) > 1:
        opening = value[: value.index(value[-1]) + 1]
        closing = value[-1]
        inner = value[len(opening) : -1]
    else:
        inner = value.rstrip()
        trailing = value[len(inner) :]
    if not inner or inner.startswith(REDACTED) or not hides(key, inner):
        return None
    kept = ""
    if scheme := _SCHEME_WORD.match(inner):
        kept = scheme.group(0)  # "Authorization: Bearer ***"
        inner = inner[scheme.end() :]
    remember_secret(inner)
    return f"{opening}{kept}{REDACTED}{closing}{trailing}"


# -- credential shapes ------------------------------------------------------------------
# GitHub, OpenAI/Anthropic-style sk-, Stripe, Slack, AWS key ids, Hugging Face, GitLab,
# Google API keys, npm, PyPI, SendGrid and JWTs.
_TOKEN_SHAPES = re.compile(
    r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|sk-[\w-]{16,}|"
    r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}|"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}|hf_[A-Za-z0-9]{20,}|glpat-[\w-]{16,}|AIza[\w-]{35}|"
    r"npm_[A-Za-z0-9]{36}|pypi-[\w-]{50,}|SG\.[\w-]{16,}\.[\w-]{16,}|"
    r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,})"
)
# A W&B API key is 40 lower-case hex digits, which is also the shape of a git commit:
# kept only where the name says it is a commit (see names.names_a_commit).
_HEX40 = re.compile(r"(?<![\w-])[0-9a-f]{40}(?![\w-])")
# ... and in text when a commit word is right before it ("commit 3f2a...", "sha=3f2a...")
_COMMIT_BEFORE = re.compile(
    r"(?i:commit|sha1?|rev|revision|ref|head|checksum|digest|oid|object)['\"]?[\s:=@'\"]{1,4}$"
)


def _hex40(m: re.Match[str]) -> str:
    if _COMMIT_BEFORE.search(m.string, max(0, m.start() - 24), m.start()):
        return m.group(0)
    return REDACTED


# -- the public functions ---------------------------------------------------------------
def redact_text(text: str, *, keep_hex: bool = False) -> str:
    """Redact credentials in free text: URL userinfo, authorization headers and schemes,
    secret-named ``key=value`` / ``key: value`` / ``--flag value``, ``-u user:pw``,
    ``-pPW``, known token shapes, 40-hex keys (unless ``keep_hex``) and values already
    known to be secrets."""
    if "://" in text:
        text = _URL_WORD.sub(lambda m: _url_userinfo(m.group(0)), text)
    text = _AUTH_SCHEME.sub(_auth_scheme, text)
    if "=" in text or ":" in text:
        text = _redact_assignments(text)
    if "-" in text:
        text = TEXT_FLAG.sub(text_flag, text)
    text = _TOKEN_SHAPES.sub(REDACTED, text)
    if not keep_hex:
        text = _HEX40.sub(_hex40, text)
    return scrub_known(text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Redact a command line: ``--api-key X``, ``--password=X``, ``-pX``, ``-u user:pw``,
    ``TOKEN=x cmd``, ``-H 'X-Api-Key: K'``, URLs, token shapes (see the README)."""
    out: list[str] = []
    program: str | None = None
    pending: str | None = None  # a flag whose value may be the next argument
    expect_program = True
    for raw in argv:
        arg = str(raw)
        flag, pending = pending, None
        if flag is not None:
            new = flag_value(flag, arg, program)
            if new is not None:
                out.append(new)
                continue
        if arg.startswith("-") and len(arg) > 1 and arg != "--":
            if "=" in arg:
                name, _, value = arg.partition("=")
                new = flag_value(name, value, program)
                out.append(f"{name}={new}" if new is not None else redact_text(arg))
                continue
            if arg[:2] in P_FLAGS | USER_FLAGS and len(arg) > 2 and arg[1] != "-":
                new = flag_value(arg[:2], arg[2:], program, glued=True)
                if new is not None:
                    out.append(arg[:2] + new)
                    continue
            pending = arg
            if program in ("python", "python3") and arg == "-m":
                expect_program = True
        elif arg == "--":
            expect_program = True
        elif expect_program and "=" not in arg:
            program = program_name(arg)
            expect_program = program in LAUNCHERS
        out.append(redact_text(arg))
    return out


def redact_endpoint(endpoint: str) -> str:
    """An endpoint, a URL or a gRPC target (``user:pw@host:port``), with its password
    hidden."""
    if "://" not in endpoint and "@" in endpoint:
        at = endpoint.rfind("@")
        endpoint = _userinfo(endpoint[:at]) + endpoint[at:]
    return redact_text(endpoint)


# What is recorded of an error message or a skip reason, and of a traceback (its end):
# a 20 MB message must not make a 20 MB manifest, span event or summary line.
MAX_MESSAGE = 8192
MAX_STACKTRACE = 65536


def clipped(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to its first ``limit`` characters, saying how many were left out
    (cut after redaction: a secret cut in two would no longer be recognised)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters not recorded)"


def redact_exception(error: BaseException) -> tuple[str, str]:
    """An exception's message and traceback (chained causes included), redacted and
    bounded: the message's start, the traceback's end."""
    try:
        message = str(error)
    except Exception:
        message = f"<{type(error).__name__} whose message cannot be printed>"
    try:
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    except Exception:
        stack = f"{type(error).__name__}: {message}"
    message_as_recorded = clipped(redact_text(message))
    if len(message) > MAX_MESSAGE:  # the traceback repeats it: redact a long one once
        stack = stack.replace(message, message_as_recorded)
    stack = redact_text(stack)
    if len(stack) > MAX_STACKTRACE:
        left_out = len(stack) - MAX_STACKTRACE
        stack = f"({left_out:,} characters not recorded) …{stack[-MAX_STACKTRACE:]}"
    return message_as_recorded, stack


class RedactedLines:
    """A binary sink that redacts whole lines before writing them (a wrapped command's
    log file). A line longer than ``MAX_LINE`` is redacted in ``MAX_LINE`` pieces."""

    MAX_LINE = 1 << 16

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self._pending = b""

    def write(self, chunk: bytes) -> None:
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        if not cut and len(data) >= self.MAX_LINE:
            cut = len(data)
        self._pending = data[cut:]
        if cut:
            self._emit(data[:cut])

    def _emit(self, data: bytes) -> None:
        text = data.decode("utf-8", "surrogateescape")
        self._sink.write(redact_text(text).encode("utf-8", "surrogateescape"))

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        try:
            if self._pending:
                self._emit(self._pending)
                self._pending = b""
        finally:
            self._sink.close()

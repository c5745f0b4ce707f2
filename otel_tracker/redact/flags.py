"""Flags and their values, on a command line or inside text: ``--api-key X``,
``--wandb-key=X``, ``-u user:pw``, ``-pPW``, ``['--token', 'X']`` in an error message.

``-p``/``-P`` are ambiguous: a password for mysql, sshpass, sqlcmd or zip, a port for
ssh, scp and ``mysql -P``, a boolean for mkdir and cp. Decided (README): the value is
hidden unless it looks like a port or port mapping (``8080``, ``8080:80``,
``host:5432``), a path, a compiler's own ``-pthread``-style option, or the program is
one whose ``-p`` is never a password (``ssh``, ``mkdir``, ``pytest``... below).
"""

from __future__ import annotations

import re

from .known import REDACTED, remember_secret
from .names import NAME_STEMS, hides, wordset

TEXT_FLAG = re.compile(
    r"(?<![^\s'\"\[(,])(?:"
    r"(?P<flag>--?(?:(?=[\w.-]{0,128}?(?:" + NAME_STEMS + r"|user))(?=(?P<name>[\w.-]+))(?P=name)"
    r"|[pPuUa]))"
    r"(?P<gap>['\"]?(?:[ \t]*,[ \t]*|[ \t]+)['\"]?)(?P<value>[^\s'\",\])-][^\s'\",\])]*)"
    r"|(?P<short>-[pPuU])(?P<glued>[^\s'\",\])=-][^\s'\",\])]*))"
)
USER_FLAGS = frozenset({"-u", "-U", "--user", "--proxy-user"})  # user:pw (smbclient: user%pw)
P_FLAGS = frozenset({"-p", "-P"})
# redis-cli -a PASSWORD (elsewhere -a is "all")
_A_IS_A_PASSWORD = wordset("redis-cli keydb-cli redis-benchmark valkey-cli")
_A_PROGRAM = re.compile(r"(?:redis|keydb|valkey)-(?:cli|benchmark)")
# programs whose -p/-P is a port, a plugin, a mode or a boolean, never a password
_P_IS_NOT_A_PASSWORD = wordset(
    "mkdir cp mv ls rsync tar install ssh scp sftp git pytest py.test kubectl nc "
    "ncat grep egrep fgrep rg wget xargs find patch pip pip3 uvicorn gunicorn jupyter mpirun "
    "ps pgrep pkill kill top htop lsof strace perf ss netstat"
)
# "-p" glued to these is an option of its own (gcc -pthread, find -print, openssl -pass)
_GLUED_P_WORDS = wordset(
    "thread ie ipe g edantic edantic-errors rint rint0 rintf erm ath rune id arallel "
    "ass assin assout assword asswd assphrase ort rofile refix"
)
_PORT_LIKE = re.compile(r"(?:[\w.-]+:)?\d{1,5}(?::\d{1,5})?(?:/(?:tcp|udp|sctp))?$")
_IDS = re.compile(r"\d+:\d+$")


def flag_value(flag: str, value: str, program: str | None, glued: bool = False) -> str | None:
    """What ``value``, given to ``flag``, becomes; ``None`` if it is no secret."""
    if not value or value == REDACTED or REDACTED in value:
        return None
    if flag in USER_FLAGS:  # curl -u user:password
        sep = ":" if ":" in value else "%"
        user, found, password = value.partition(sep)
        if not found or not password or _IDS.match(value):  # docker -u 1000:1000
            return None
        remember_secret(password)
        return f"{user}{sep}{REDACTED}"
    if flag == "-a":
        if program not in _A_IS_A_PASSWORD:
            return None
        remember_secret(value)
        return REDACTED
    if flag in P_FLAGS:
        if program in _P_IS_NOT_A_PASSWORD or _PORT_LIKE.match(value) or value[0] in "/.~":
            return None
        if glued and value in _GLUED_P_WORDS:
            return None
        remember_secret(value)
        return REDACTED
    if value.startswith("-") and not _is_number(value):
        return None  # the next option, not this one's value (as argparse reads it)
    if hides(flag.lstrip("-"), value):
        remember_secret(value)
        return REDACTED
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_flag(m: re.Match[str]) -> str:
    if m["short"] is not None:
        new = flag_value(m["short"], m["glued"], _word_before(m), glued=True)
        return m.group(0) if new is None else m["short"] + new
    flag = m["flag"]
    if flag[:2] in P_FLAGS | USER_FLAGS and len(flag) > 2 and flag[1] != "-":
        # "-pSecretPw db": a password glued to -p, whatever words it happens to hold
        glued = flag_value(flag[:2], flag[2:], _word_before(m), glued=True)
        if glued is not None:
            return f"{flag[:2]}{glued}{m['gap']}{m['value']}"
    if flag == "-a":  # redis-cli -h host -a PW: the program is a few words back
        before = m.string[max(0, m.start() - 200) : m.start()]
        found = _A_PROGRAM.search(before)
        program = found.group(0) if found else None
    else:
        program = _word_before(m) if flag in P_FLAGS else None
    new = flag_value(flag, m["value"], program)
    return m.group(0) if new is None else f"{flag}{m['gap']}{new}"


def _word_before(m: re.Match[str]) -> str | None:
    """The program a short flag in text belongs to, if it is the word right before it
    ("mkdir -p out"); looked for in the 64 characters before the flag only."""
    before = m.string[max(0, m.start() - 64) : m.start()].split()
    return program_name(before[-1].strip("'\",[(")) if before else None


# commands that run the next word as the program: the next word decides what -p means
LAUNCHERS = wordset("sudo env nohup time nice exec timeout xargs uv uvx npx")


def program_name(arg: str) -> str:
    """The program a command-line word runs: ``/usr/bin/mysql`` → ``mysql``."""
    name = arg.rsplit("/", 1)[-1]
    if name.startswith("python"):
        return "python"
    return name

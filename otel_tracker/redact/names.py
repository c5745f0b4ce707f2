"""Which names (flags, params, variables, headers, query keys) name a secret.

A name is split into lower-case words (``--hf-token``, ``HF_TOKEN``, ``hfToken``
all give ``hf token``) and judged in three ways:

- ``SECRET``: its value is always hidden (``password``, ``db_pass``, ``hf_token``,
  ``wandb_key``, ``X-Api-Key``, ``Authorization``, ``sentry_dsn``...);
- ``MAYBE``: an ambiguous name (``key``, ``label_key``, ``pad_token``, ``token_id``,
  ``auth_url``); its value is hidden only if it looks like a credential;
- ``NOT``: anything else, and names that say where a secret is rather than what
  it is (``password_file``, ``api_key_env``, ``secret_name``, ``max_tokens``).

Values are still scanned for credential shapes whatever the name (see
:mod:`otel_tracker.redact.text`).
"""

from __future__ import annotations

import re
from functools import lru_cache

SECRET, MAYBE, NOT = 2, 1, 0


def wordset(text: str) -> frozenset[str]:
    """A set of words written as one string (long tables read better that way)."""
    return frozenset(text.split())


# Where a secret's name may be, for patterns that look for names in text: every word
# the rules below can call a secret's contains one of these.
NAME_STEMS = (
    r"(?i:pass|pw|secret|token|key|auth|cookie|cred|session|sig|dsn|webhook|jwt|bearer|srf)"
)
_WORDS = re.compile(r"[a-z0-9]+|[A-Z]+(?![a-z])|[A-Z][a-z0-9]*")

# A word containing one of these makes the name a secret's (also glued: "dbpassword").
_STRONG = re.compile(
    r"passw(?:or)?d|passphrase|secret|credential|cookie|apikey|accesskey|privatekey|"
    r"privkey|passkey|jwt|bearer|dsn|webhook|csrf|xsrf|signature"
)
# A last word that says where or what kind the secret is, not what it is.
_REFERENCE = wordset(
    "file files path paths dir directory stdin env var vars name names length len min max "
    "count size limit type kind mode policy required enabled disabled prompt version format "
    "algorithm alg expiry expires expiration ttl timeout lifetime rotation location error "
    "errors exception warning provider backend store manager helper command cmd"
)
# "pass" and "pw" alone are a secret's last word ("db_pass"); "pass_rate" is not.
_SHORT_SECRET = frozenset({"pass", "pw", "pwd", "cred", "creds", "passin", "passout"})
# After "token", "key", "auth", "session": words that keep it a secret.
_SECRET_FOLLOWERS = wordset(
    "value val string str secret key token header headers cookie cookies data info hash "
    "material b64 base64 pem hex code"
)
# "<word>_token" that names a tokenizer's special token, not a credential.
_SPECIAL_TOKEN = wordset(
    "pad eos bos unk sep cls mask sos eot eom eoi boi start end stop special image img audio "
    "video vision decoder encoder begin new added default placeholder fim think tool system "
    "user assistant turn prefix suffix middle bot label answer query context"
)
# "<word>_key" that names a field, column, sort or cache key, not a credential.
_DATA_KEY = wordset(
    "sort cache primary partition label labels text input inputs output outputs image images "
    "target targets metric metrics join hash group id column col dict foreign lookup map index "
    "row data dataset field attr attribute feature features batch sample samples class name "
    "file split shard rng prng random seed public pub hot shortcut kv cluster routing shuffle "
    "order unique composite natural dedup grouping bucket s3 object blob gcs path prefix json "
    "yaml config cfg state model query value prompt response answer question context chosen "
    "rejected message messages conversation instruction reward score result mask weight loss "
    "metadata meta tag event dim x y time timestamp date audio video caption token tokens "
    "source dest destination left right parent child node edge entity record item lock "
    "registry version stage idempotency dedupe"
)
_AUTH = frozenset({"auth", "authorization", "oauth", "authentication", "proxyauthorization"})


def words(name: str) -> list[str]:
    """The lower-case words of a name: ``X-Api-Key`` → ``['x', 'api', 'key']``."""
    # a trailing number is no word of its own: "hf_token2", "password1"
    return [w.lower().rstrip("0123456789") or w for w in _WORDS.findall(name)]


@lru_cache(maxsize=4096)
def secrecy(name: str) -> int:
    """``SECRET``, ``MAYBE`` or ``NOT`` for a flag, param, variable or header name."""
    ws = words(name[-256:])  # what a long name is lies at its end
    if not ws or ws[-1] in _REFERENCE:
        return NOT
    if any(_STRONG.search(w) for w in ws):
        return SECRET
    verdict = NOT
    for i, word in enumerate(ws):
        last = i == len(ws) - 1
        after = ws[i + 1] if not last else None
        before = ws[i - 1] if i else None
        if word in _SHORT_SECRET:
            if last or after in _SECRET_FOLLOWERS:
                return SECRET
        elif word == "token":
            if last and before not in _SPECIAL_TOKEN:
                return SECRET
            if after in _SECRET_FOLLOWERS:
                return SECRET
            verdict = MAYBE
        elif word.endswith("token") and word[:-5] not in _SPECIAL_TOKEN:
            return SECRET  # glued: "hftoken", "authtoken" (never "tokenizer", "tokens")
        elif word in ("key", "keys"):
            if before is None:
                verdict = MAYBE
            elif (last or after in _SECRET_FOLLOWERS) and before not in _DATA_KEY:
                return SECRET
            else:
                verdict = MAYBE
        elif word in _AUTH:
            if last or after in _SECRET_FOLLOWERS:
                return SECRET
            verdict = MAYBE
        elif word == "session" and after in ("id", "token", "key", "cookie", "secret"):
            return SECRET
        elif word == "sig" and len(ws) == 1:
            return SECRET  # a signed URL's signature (?sig=)
    return verdict


def is_secret_key(name: str) -> bool:
    """Whether a flag, parameter or variable name always names a secret."""
    return secrecy(name) == SECRET


def mixed_word(value: str, shortest: int, longest: int, *, symbols: bool = False) -> bool:
    """A word of ``shortest`` to ``longest`` characters, no spaces, not a path, with two
    kinds of characters or more: lower case, upper case, digits (and other symbols)."""
    if not shortest <= len(value) <= longest or value[0] in "/.~":
        return False
    if any(c.isspace() for c in value):
        return False
    kinds = (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + (symbols and any(not c.isalnum() for c in value))
    )
    return kinds >= 2


def looks_like_credential(value: str) -> bool:
    """A random-looking word of 12+ characters (letters mixed with digits or cases):
    what an ambiguous name's value must look like to be hidden."""
    return mixed_word(value, 12, 4096)


def hides(name: str, value: object) -> bool:
    """Whether ``value``, found under ``name``, is to be hidden whole."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value):
        return False
    verdict = secrecy(name)
    if verdict == SECRET:
        return True
    return verdict == MAYBE and isinstance(value, str) and looks_like_credential(value)


# names whose value is a git commit: a 40-hex value there is kept (see redact_text)
_COMMIT_WORDS = wordset(
    "commit commits sha sha1 revision rev hash githash ref head checksum digest oid"
)


def names_a_commit(name: str) -> bool:
    """``commit``, ``git_sha``, ``GITHUB_SHA``, ``base_revision``..."""
    ws = words(name)
    return bool(ws) and ws[-1] in _COMMIT_WORDS

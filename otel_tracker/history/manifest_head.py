"""The first fields of a finished run's manifest, without parsing the rest.

The writer puts ``schema_version``, ``run_id``, ``name``, ``scenario``, ``status``
and ``started_at`` first, all scalars (``RunRecord.to_dict``). A reader that needs
only those for thousands of runs (``prune``'s plan) reads the file's first 4 KB
and matches them; a file that does not start that way (another writer, damage, an
older layout) gives ``None`` and the caller reads it in full. Only a final status
is returned: a ``running`` manifest needs the full read and its liveness inferred.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..contract.jsonfile import FileProblem, open_regular
from ..contract.paths import MANIFEST_NAME

HEAD_BYTES = 4096
FINAL = frozenset({"completed", "failed", "cancelled"})

_STRING = r'"(?:[^"\\]|\\.)*"'
_HEAD = re.compile(
    rb"\A\s*\{\s*\"schema_version\"\s*:\s*\d+\s*,"
    rb"\s*\"run_id\"\s*:\s*(?P<run_id>" + _STRING.encode() + rb")\s*,"
    rb"\s*\"name\"\s*:\s*(?P<name>" + _STRING.encode() + rb")\s*,"
    rb"\s*\"scenario\"\s*:\s*(?P<scenario>null|" + _STRING.encode() + rb")\s*,"
    rb"\s*\"status\"\s*:\s*(?P<status>" + _STRING.encode() + rb")\s*,"
    rb"\s*\"started_at\"\s*:\s*(?P<started_at>null|" + _STRING.encode() + rb")\s*,"
)


@dataclass(frozen=True)
class ManifestHead:
    run_id: str
    name: str
    scenario: str | None
    status: str
    started_at: str | None


def manifest_head(run_dir: Path) -> ManifestHead | None:
    """The head of a finished run's manifest; ``None`` when it needs a full read."""
    try:
        with open_regular(run_dir / MANIFEST_NAME) as file:
            data = file.read(HEAD_BYTES)
    except (FileProblem, OSError):
        return None
    found = _HEAD.match(data)
    if found is None:
        return None
    try:
        fields = {k: json.loads(v) for k, v in found.groupdict().items()}
    except ValueError:  # not UTF-8, or a bad escape
        return None
    if not all(isinstance(fields[k], str) for k in ("run_id", "name", "status")):
        return None
    if fields["status"] not in FINAL or fields["run_id"] != os.path.basename(run_dir):
        return None
    return ManifestHead(**fields)

"""The published JSON Schema of ``manifest.json``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

MANIFEST_SCHEMA_FILE = "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema as a dict."""
    text = resources.files(__name__).joinpath(MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)

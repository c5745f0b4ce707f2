"""The published JSON Schemas: ``manifest.json`` and baseline files."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

MANIFEST_SCHEMA_FILE = "manifest.schema.json"
BASELINE_SCHEMA_FILE = "baseline.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema as a dict."""
    text = resources.files(__name__).joinpath(MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def baseline_schema() -> dict[str, Any]:
    """The baseline file JSON Schema as a dict."""
    text = resources.files(__name__).joinpath(BASELINE_SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)

"""The published JSON Schemas: ``manifest.json``, baseline files and
``perf_test_results.json``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

MANIFEST_SCHEMA_FILE = "manifest.schema.json"
BASELINE_SCHEMA_FILE = "baseline.schema.json"
PERF_TEST_RESULTS_SCHEMA_FILE = "perf_test_results.schema.json"


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


@cache
def perf_test_results_schema() -> dict[str, Any]:
    """The ``perf_test_results.json`` JSON Schema as a dict."""
    text = (
        resources.files(__name__)
        .joinpath(PERF_TEST_RESULTS_SCHEMA_FILE)
        .read_text(encoding="utf-8")
    )
    return json.loads(text)

"""Where every benchmark puts its figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save(results: Any, output: str) -> None:
    """Write ``results`` as JSON to ``output`` (creating its folder) and say where."""
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")

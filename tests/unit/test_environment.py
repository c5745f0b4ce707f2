from __future__ import annotations

import subprocess
from pathlib import Path

from otel_tracker.environment import git_info


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_info_of_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert git_info(repo) is None or git_info(repo)["commit"]  # may sit inside another repo
    _git(repo, "init", "-q", "-b", "main")
    assert git_info(repo) is None  # no commit yet
    (repo / "a.txt").write_text("1")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    info = git_info(repo)
    assert info is not None and len(info["commit"]) == 40
    assert (info["branch"], info["dirty"]) == ("main", False)
    (repo / "a.txt").write_text("2")
    assert git_info(repo)["dirty"] is True
    (repo / "untracked.txt").write_text("x")  # untracked files do not make it dirty
    _git(repo, "checkout", "-q", "a.txt")
    assert git_info(repo)["dirty"] is False
    _git(repo, "checkout", "-q", "--detach")
    assert git_info(repo)["branch"] is None

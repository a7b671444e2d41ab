"""code_commit: which code made a result (the demo's report and every benchmark name it)."""

import os
import subprocess

from warmstart.provenance import code_commit


def _git(root, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_code_commit_names_the_commit_and_uncommitted_changes(tmp_path):
    assert code_commit(tmp_path) == ""  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "docs.md").write_text("docs\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD")
    assert code_commit(tmp_path / "pkg") == head
    (tmp_path / "docs.md").write_text("other docs\n")  # outside the paths: still clean
    assert code_commit(tmp_path / "pkg") == head
    assert code_commit(tmp_path).startswith(head + "+dirty.")
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    first = code_commit(tmp_path / "pkg")
    (tmp_path / "pkg" / "a.py").write_text("x = 3\n")
    second = code_commit(tmp_path / "pkg")
    assert first.startswith(head + "+dirty.") and second.startswith(head + "+dirty.")
    assert first != second  # one uncommitted state told from another
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "new.py").write_text("y = 1\n")  # a new file is a change too
    assert code_commit(tmp_path / "pkg").startswith(head + "+dirty.")
    (tmp_path / "installed").mkdir()  # never committed: no commit to name
    (tmp_path / "installed" / "b.py").write_text("z = 1\n")
    assert code_commit(tmp_path / "installed") == ""
    assert code_commit(tmp_path, ["pkg/a.py"]) == head  # paths relative to root

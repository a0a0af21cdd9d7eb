"""The `rc-keras` command as a newcomer meets it: run in subprocesses, as from a shell.

Each check runs ``python -m rc_keras.cli`` with this checkout on PYTHONPATH and looks at
what a user sees: the exit status, stdout, and a stderr that holds the tool's own text
only (one line for an error, no traceback, no TensorFlow log lines).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, env=None, timeout=600):
    """Runs ``python -m rc_keras.cli ARGS`` like a shell would; returns the CompletedProcess."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("RC_KERAS_DEBUG", "TF_CPP_MIN_LOG_LEVEL")}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "rc_keras.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=environ,
                          timeout=timeout)


def _git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          cwd=cwd, capture_output=True, text=True, check=True).stdout


def _fresh_clone(dest):
    """The tracked files of this checkout, committed in a new repository at ``dest``."""
    files = _git("ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _git("init", "-q", cwd=dest)
    _git("add", "-A", cwd=dest)
    _git("commit", "-q", "-m", "clone", cwd=dest)
    return dest


# ---------------------------------------------------------------------- demo
@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout")
def test_demo_leaves_a_fresh_clone_clean(tmp_path):
    clone = _fresh_clone(tmp_path / "clone")
    result = run_cli("demo", "--quick", "--verbose", "0", cwd=clone)
    assert result.returncode == 0, result.stderr
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone) == ""
    report = json.loads((clone / "runs" / "demo" / "demo_report.json").read_text())
    assert report["quick"] is True and (clone / "runs" / "demo" / "step_int8.tflite").is_file()
    assert "runs/demo" in result.stdout.replace(os.sep, "/")


def test_demo_update_reference_refuses_out(tmp_path):
    result = run_cli("demo", "--update-reference", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "rc-keras demo: error: --update-reference writes to "
        f"{ROOT / 'saved_models' / 'demo'}; drop --out.")
    assert not (tmp_path / "x").exists()

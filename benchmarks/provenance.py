"""What every benchmark's results JSON records, so that a figure can be made again.

``write_json(path, result)`` writes a benchmark's result with a ``"provenance"`` entry:

- ``command``: the exact command line, runnable from the repository root
  (``python benchmarks/bench_x.py --quick ...``);
- ``date`` (UTC), ``versions`` (Python, rc_keras, TensorFlow, Keras, NumPy, ...),
  ``machine``, ``cpus`` and ``load_average`` (1, 5, 15 min: the cores are shared, and
  timings move with the load);
- ``git_commit`` of the checkout, when there is one.

Each ``bench_*.py`` runs as a script (``python benchmarks/bench_x.py``), so this
module is importable as ``provenance`` from there. Nothing here imports TensorFlow.
"""

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distribution names whose versions a result depends on (those installed are recorded).
DISTRIBUTIONS = ("rc_keras", "tensorflow-cpu", "tensorflow", "keras", "numpy", "keras-tuner",
                 "ai-edge-litert", "tflite-micro")


def command_line(script, argv=None):
    """``python <script relative to the repository> <argv>``, quoted for a shell."""
    script = Path(script).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    argv = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", str(script), *map(str, argv)])


def versions():
    """Installed versions of Python and of `DISTRIBUTIONS` (missing ones left out)."""
    found = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def git_commit():
    """The checkout's commit (with "-dirty" for uncommitted changes), or None."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty.strip() else "")


def record(script, argv=None):
    """The provenance dict of a run of ``script`` with ``argv`` (default: this process's)."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "command": command_line(script, argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "git_commit": git_commit(),
    }


def write_json(path, result, script, argv=None, indent=2, default=None):
    """Writes ``result`` with its ``"provenance"`` (`record`) as JSON to ``path``; returns
    the dict written."""
    result = {**result, "provenance": record(script, argv)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=indent, default=default) + "\n")
    return result

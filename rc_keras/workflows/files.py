"""Files of a run: output folders, ``.keras`` archives and the task recorded in them.

Every check here answers without TensorFlow (only `load_model` imports Keras), so that a
bad path fails at once, before any work, and ``rc-keras`` reports it as one line.
"""

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from rc_keras import tasks


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2 (``rc-keras``)."""


def write_json(path, data):
    """Writes ``data`` (numpy scalars and arrays allowed) as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return str(path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def check_output_dir(path, flag="--out"):
    """Raises `CLIError` unless ``path`` can be (or is) a writable directory. No side effects.

    Run before any work, so that a bad output path fails at once, not after training.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CLIError(f"{flag} '{path}' is a file; give a directory (created if missing).")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise CLIError(f"{flag} '{path}' cannot be created: '{existing}' is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} '{path}': '{existing}' is not writable.")
    return path


def check_model_file(path):
    """Raises `CLIError` unless ``path`` looks like a ``.keras`` archive (no TensorFlow).

    Says what is wrong: missing, a directory, empty, not a zip archive (or truncated),
    or a zip archive without Keras's ``config.json``.
    """
    path = Path(path)
    if path.is_dir():
        inside = path / "model.keras"
        hint = f", e.g. {inside}" if inside.is_file() else ""
        raise CLIError(f"--model '{path}' is a directory; give a .keras file{hint}.")
    if not path.is_file():
        raise CLIError(f"model file '{path}' does not exist.")
    size = path.stat().st_size
    if size == 0:
        raise CLIError(f"model file '{path}' is empty (0 bytes): not a Keras archive.")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"model file '{path}' is not a Keras archive: a .keras file is a zip "
                       f"archive, and this one ({size} bytes) is not, or is truncated.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CLIError(f"model file '{path}' is a damaged zip archive: {error}.") from None
    if damaged is not None:
        raise CLIError(f"model file '{path}' is damaged: '{damaged}' fails its checksum.")
    if "config.json" not in names:
        raise CLIError(f"model file '{path}' is a zip archive but not a Keras archive "
                       "(no config.json).")
    return path


MODEL_RECORD = "rc_keras.json"
"""Entry of a ``.keras`` archive saved by ``rc-keras`` (Keras ignores it): the task the
model was trained on and its feature shape, so that a model is not evaluated on another
task's data by mistake (`check_task`)."""


def record_task(model_path, task, feature_shape):
    """Adds `MODEL_RECORD` (task name, feature shape) to a saved ``.keras`` archive."""
    record = {"task": tasks.get_task(task).name,
              "feature_shape": None if feature_shape is None else list(feature_shape)}
    with zipfile.ZipFile(model_path, "a") as archive:
        archive.writestr(MODEL_RECORD, json.dumps(record))


def recorded_task(model_path):
    """The `MODEL_RECORD` dict of a ``.keras`` archive, or None when it has none."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            if MODEL_RECORD in archive.namelist():
                return json.loads(archive.read(MODEL_RECORD))
    except (OSError, ValueError, zipfile.BadZipFile):
        pass
    return None


def check_task(model_path, task, allow_mismatch=False):
    """Raises `CLIError` when ``model_path`` records another task than ``task``.

    ``allow_mismatch`` (``--allow-task-mismatch``) lets a different task through when its
    sequences have the recorded feature shape; a different feature shape is refused.
    """
    record = recorded_task(model_path)
    task = tasks.get_task(task)
    if record is None or record.get("task") == task.name:
        return
    if not allow_mismatch:
        raise CLIError(f"'{model_path}' was trained on task '{record.get('task')}', not "
                       f"'{task.name}': pass --task {record.get('task')} (or "
                       "--allow-task-mismatch to run it on the other task's data anyway).")


def check_feature_shape(model, x, model_path):
    """Raises `CLIError` when the sequences ``x`` (an array, or an ``{"inputs", "lengths"}``
    dict) do not have the model's feature shape."""
    expected = getattr(model, "feature_shape", None)
    inputs = x["inputs"] if isinstance(x, dict) else x
    if expected is not None and tuple(np.shape(inputs)[2:]) != tuple(expected):
        raise CLIError(f"'{model_path}' reads features of shape {tuple(expected)}; this task's "
                       f"sequences have {tuple(np.shape(inputs)[2:])}.")


def load_model(path):
    """Loads a saved RC model, with a `CLIError` for a missing or unreadable file."""
    path = check_model_file(path)
    import keras  # noqa: PLC0415 - checks above answer without TensorFlow

    try:
        return keras.models.load_model(str(path))
    except Exception as error:  # noqa: BLE001 - any load failure is a bad --model argument
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CLIError(
            f"cannot load model '{path}': {type(error).__name__}: {first_line}") from None

"""Format versions of exported files, and the SavedModel sidecar.

Every export carries ``format_version`` (`FORMAT_VERSION`) in a JSON sidecar: the
step TFLite models in ``step_*.json`` next to them, the SavedModel in
``rc_keras.json`` inside its directory. Loading a file written under another format
version raises `IncompatibleExportError` instead of failing later with a shape or
key error deep inside an interpreter.
"""

import json
import pathlib

import tensorflow as tf

from rc_keras.export import step_model
# The version of the layout of exported files (sidecar keys, signatures, state order):
# raise it in step_model whenever a change would make older readers misread a newer file.
from rc_keras.export.step_model import FORMAT_VERSION

SAVED_MODEL_SIDECAR = "rc_keras.json"


class IncompatibleExportError(ValueError):
    """An exported file from a format version this rc_keras does not read."""


def rc_keras_version():
    from rc_keras import __version__  # noqa: PLC0415 - the package imports this module
    return __version__


def stamp(sidecar):
    """Adds ``format_version`` and ``rc_keras_version`` to a sidecar dict; returns it."""
    sidecar["format_version"] = FORMAT_VERSION
    sidecar["rc_keras_version"] = rc_keras_version()
    return sidecar


def check_format_version(sidecar, source):
    """Raises `IncompatibleExportError` unless ``sidecar`` has this `FORMAT_VERSION`.

    Args:
        sidecar: the parsed sidecar dict.
        source: the file it came from, for the message.
    """
    if not isinstance(sidecar, dict):
        raise IncompatibleExportError(
            f"{source} is not an rc_keras sidecar: expected a JSON object; received "
            f"{type(sidecar).__name__}.")
    version = sidecar.get("format_version")
    if version == FORMAT_VERSION:
        return sidecar
    written_by = sidecar.get("rc_keras_version")
    by = f" by rc_keras {written_by}" if written_by else ""
    if version is None:
        problem = "has no format_version (not written by rc_keras export)"
    elif isinstance(version, int) and version > FORMAT_VERSION:
        problem = f"has format_version {version} (written{by}, newer than this reader)"
    else:
        problem = f"has format_version {version!r} (written{by})"
    raise IncompatibleExportError(
        f"{source} {problem}; rc_keras {rc_keras_version()} reads format_version "
        f"{FORMAT_VERSION}: export the model again with this rc_keras, or install the "
        "rc_keras that wrote it.")


def read_sidecar(path):
    """Reads and version-checks a JSON sidecar; missing or unparsable files raise."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no rc_keras sidecar {path}: export the model with "
                                "rc_keras.export to get one.")
    try:
        sidecar = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IncompatibleExportError(f"{path} is not valid JSON: {error}.") from None
    return check_format_version(sidecar, path)


def write_saved_model_sidecar(model, directory):
    """Writes ``rc_keras.json`` (format version, threshold, shapes) into a SavedModel dir."""
    sidecar = stamp({
        "kind": "rc_keras.saved_model",
        "readout": model.readout,
        "threshold": (list(model.threshold) if getattr(model, "threshold_is_schedule", False)
                      else float(model.threshold)),
        "feature_shape": [int(d) for d in model.feature_shape],
        "num_outputs": int(model.num_outputs),
        "num_classes": int(model.num_classes),
        "state_layout": step_model.state_layout(model),
    })
    path = pathlib.Path(directory) / SAVED_MODEL_SIDECAR
    path.write_text(json.dumps(sidecar, indent=2))
    return sidecar


def load_saved_model(directory):
    """``tf.saved_model.load`` of an rc_keras SavedModel after checking its sidecar.

    Raises:
        FileNotFoundError: no such directory, or no ``rc_keras.json`` in it.
        IncompatibleExportError: the sidecar has another format version.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"SavedModel directory {directory} does not exist.")
    read_sidecar(directory / SAVED_MODEL_SIDECAR)
    return tf.saved_model.load(str(directory))

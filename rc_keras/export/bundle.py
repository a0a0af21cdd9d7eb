"""`export_bundle`: everything a deployment needs in one directory, plus verification."""

import json
import pathlib
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from rc_keras import validation
from rc_keras.export import _flatbuffer, step_model
from rc_keras.export.c_array import write_c_array
from rc_keras.export.interpreters import run_tflite_stream, tflm_arena
from rc_keras.export.saved_model import export_saved_model
from rc_keras.export.versioning import load_saved_model
from rc_keras.export.tflite_step import export_tflite_step

ARENA_MARGIN_BYTES = 1024


def load_sequences(source, name):
    """Sequences (and labels, if any) from an array, an (x, y) tuple or a .npy / .npz file.

    A .npz must hold ``x`` (or ``inputs``) and may hold ``y`` (or ``labels``).

    Returns:
        (x, y_or_None).
    """
    if source is None:
        return None, None
    if isinstance(source, (str, pathlib.Path)):
        path = pathlib.Path(source)
        if not path.exists():
            raise ValueError(f"`{name}` file {path} does not exist.")
        if path.suffix == ".npy":
            return np.load(path), None
        if path.suffix == ".npz":
            with np.load(path) as archive:
                keys = set(archive.files)
                x_key = next((k for k in ("x", "inputs") if k in keys), None)
                if x_key is None:
                    raise ValueError(f"`{name}` file {path} must hold an array 'x' (or 'inputs'); "
                                     f"it holds {sorted(keys)}.")
                y_key = next((k for k in ("y", "labels") if k in keys), None)
                return archive[x_key], (archive[y_key] if y_key else None)
        raise ValueError(f"`{name}` must be a .npy or .npz file; received {path}.")
    if isinstance(source, tuple) and len(source) == 2:
        return source[0], source[1]
    return source, None


def _load_model(model_or_path):
    if isinstance(model_or_path, (str, pathlib.Path)):
        path = pathlib.Path(model_or_path)
        if not path.exists():
            raise ValueError(f"model file {path} does not exist.")
        import rc_keras  # noqa: F401  (registers RCModel for deserialization)
        return keras.saving.load_model(path)
    return model_or_path


def keras_reference(model, x, lengths=None):
    """``model.predict`` with the fields the agreement table compares."""
    inputs = x if lengths is None else {"inputs": x, "lengths": lengths}
    out = model.predict(inputs, verbose=0, batch_size=256)
    return {key: np.asarray(out[key]) for key in ("label", "spike_time", "spiked")}


def saved_model_reference(directory, x, lengths=None):
    loaded = load_saved_model(directory)
    if lengths is None:
        out = loaded.signatures["serve"](x=tf.constant(x, tf.float32))
    else:
        out = loaded.signatures["serve_lengths"](x=tf.constant(x, tf.float32),
                                                 lengths=tf.constant(lengths, tf.int32))
    return {key: out[key].numpy() for key in ("label", "spike_time", "spiked")}


def agreement_row(name, runtime, reference, result, labels=None):
    """One row of the agreement table: ``result`` compared with the Keras ``reference``."""
    step_diff = np.abs(np.asarray(result["spike_time"]) - reference["spike_time"])
    row = {"model": name, "runtime": runtime, "sequences": int(len(step_diff)),
           "class_agreement": float(np.mean(np.asarray(result["label"]) == reference["label"])),
           "step_exact": float(np.mean(step_diff == 0)),
           "step_within_1": float(np.mean(step_diff <= 1)),
           "mean_frames": float(np.mean(np.asarray(result["spike_time"]) + 1))}
    if labels is not None:
        row["accuracy"] = float(np.mean(np.asarray(result["label"]) == labels))
    return row


def verify_agreement(model, x, y=None, step_models=(), saved_model=None,
                     runtimes=("litert", "tflm"), lengths=None):
    """Runs ``x`` through Keras, the SavedModel and each step model in each runtime.

    Args:
        model: the RCModel (the reference).
        x: (n, time, *features) held-out sequences.
        y: optional labels, for accuracy columns.
        step_models: paths of step .tflite files.
        saved_model: optional SavedModel directory.
        runtimes: interpreters to use for the step models.
        lengths: optional (n,) valid steps of padded sequences.

    Returns:
        list of rows (dicts), the first being Keras itself.
    """
    x = step_model.check_sequences(x, model, "verify_sequences")
    if lengths is not None:
        lengths = np.asarray(lengths, np.int32).reshape(-1)
    labels = None
    if y is not None:
        labels = np.asarray(y).reshape(len(x), -1)
        labels = labels.argmax(-1) if labels.shape[1] > 1 else labels[:, 0]
    reference = keras_reference(model, x, lengths)
    rows = [agreement_row("keras", "tensorflow", reference, reference, labels)]
    if saved_model is not None:
        rows.append(agreement_row("saved_model", "tensorflow", reference,
                                  saved_model_reference(saved_model, x, lengths), labels))
    for path in step_models:
        for runtime in runtimes:
            result = run_tflite_stream(path, x, runtime=runtime, lengths=lengths)
            rows.append(agreement_row(pathlib.Path(path).name, runtime, reference, result, labels))
    return rows


def format_agreement_table(report_or_rows, time_unit=None):
    """The agreement table as markdown (accepts a report dict or a list of rows).

    ``time_unit`` (e.g. "steps") names the mean spike time column "mean spike time
    (<unit>)"; by default it is "mean frames".
    """
    rows = report_or_rows
    if isinstance(report_or_rows, dict):
        rows = report_or_rows.get("verify", {}).get("rows", [])
    if not rows:
        return "(no verification run)"
    has_accuracy = "accuracy" in rows[0]
    mean_time = "mean frames" if time_unit is None else f"mean spike time ({time_unit})"
    head = ["model", "runtime", "n", "class agree %", "step exact %", "step +-1 %", mean_time]
    if has_accuracy:
        head.append("accuracy %")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], r["runtime"], str(r["sequences"]), f"{100 * r['class_agreement']:.1f}",
                 f"{100 * r['step_exact']:.1f}", f"{100 * r['step_within_1']:.1f}",
                 f"{r['mean_frames']:.2f}"]
        if has_accuracy:
            cells.append(f"{100 * r['accuracy']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_agreement_table(report_or_rows):
    """Prints `format_agreement_table` and returns the string."""
    table = format_agreement_table(report_or_rows)
    print(table)
    return table


def _versions():
    versions = {"python": platform.python_version(), "tensorflow": tf.__version__,
                "keras": keras.__version__}
    for module, key in (("ai_edge_litert", "ai-edge-litert"), ("tflite_micro", "tflite-micro")):
        try:
            from importlib import metadata
            versions[key] = metadata.version(key.replace("-", "_") if key == "tflite-micro" else key)
        except Exception:  # not installed
            versions[key] = None
    return versions


def export_bundle(model_or_path, out_dir, int8=True, calibration=None, verify=False,
                  verify_sequences=None, class_names=None, feature_params=None, threshold=None,
                  name="rc_model", runtimes=("litert", "tflm"), int16x8=False, c_array=None):
    """Writes a deployment bundle into ``out_dir`` and returns its report.

    Files: ``model.keras``, ``saved_model/`` (serve + step signatures),
    ``step_float32.tflite`` (+ ``.json`` sidecar), ``step_int8.tflite`` (+ ``.json``) when
    ``int8``, ``<name>_data.c`` / ``<name>_data.h`` (the int8 model, or the float one
    without ``int8``, as an aligned byte array with the sidecar constants) and
    ``report.json`` (sizes, TFLM arena, MACs per frame, ops, versions, agreement).

    Args:
        model_or_path: a built `rc_keras.RCModel` or a ``.keras`` file.
        out_dir: output directory (created).
        int8: also export the full-integer model (needs ``calibration``).
        calibration: sequences for int8 calibration: array, (x, y), .npy or .npz.
        verify: run ``verify_sequences`` through Keras, the SavedModel and every step model
            in LiteRT and TFLM and record the agreement table (`format_agreement_table`).
        verify_sequences: held-out sequences (array, (x, y), .npy or .npz with optional y).
        class_names: optional class names for the sidecars and the C source.
        feature_params: optional front-end parameters (dataclass or dict).
        threshold: theta to deploy; defaults to the model's own (a per-step schedule
            goes into the sidecars and the C header: one value per step).
        name: C identifier prefix of the generated source.
        runtimes: interpreters used by ``verify``.
        int16x8: also export ``step_int16x8.tflite`` (int16 activations and states, int8
            weights; needs ``calibration``): closer to float than int8 on models whose
            early exit is sensitive to small state errors.
        c_array: which step model goes into the C source: "int8", "int16x8" or
            "float32" (it must be exported too); default int8 when ``int8``, else float32.

    Returns:
        The report dict (also written to ``report.json``).
    """
    started = time.time()
    model = _load_model(model_or_path)
    step_model.check_model(model)
    if threshold is not None:
        threshold = validation.check_threshold(threshold)
    params = step_model.to_plain(feature_params)
    step_model.check_feature_params(params, model)
    step_model.check_class_names(class_names, model)
    firmware_q = c_array or ("int8" if int8 else "float32")
    validation.check_choice(firmware_q, ("int8", "int16x8", "float32"), "c_array")
    if firmware_q != "float32" and not {"int8": int8, "int16x8": int16x8}[firmware_q]:
        raise ValueError(f"c_array={firmware_q!r} needs that model exported too "
                         f"({firmware_q}=True, --{firmware_q}).")
    x_cal, _ = load_sequences(calibration, "calibration")
    if (int8 or int16x8) and x_cal is None:
        raise ValueError("int8 export needs calibration sequences (`calibration`, --calibration): "
                         "int8 ranges must come from the states the model visits on real inputs.")
    if x_cal is not None:
        x_cal = step_model.check_sequences(x_cal, model, "calibration")
    x_ver, y_ver = load_sequences(verify_sequences, "verify_sequences")
    if verify:
        if x_ver is None:
            raise ValueError("verify=True needs held-out `verify_sequences` (--verify-sequences).")
        x_ver = step_model.check_sequences(x_ver, model, "verify_sequences")

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved_threshold = model.threshold
    try:
        if threshold is not None:
            model.threshold = threshold
        model.save(out / "model.keras")
        export_saved_model(model, out / "saved_model")
        kwargs = dict(class_names=class_names, feature_params=params)
        sidecars = {"float32": export_tflite_step(model, out / "step_float32.tflite", **kwargs)}
        if int8:
            sidecars["int8"] = export_tflite_step(model, out / "step_int8.tflite", "int8",
                                                  calibration=x_cal, **kwargs)
        if int16x8:
            sidecars["int16x8"] = export_tflite_step(model, out / "step_int16x8.tflite",
                                                     "int16x8", calibration=x_cal, **kwargs)
        step_paths = [out / f"step_{q}.tflite" for q in sidecars]
        firmware_data = (out / f"step_{firmware_q}.tflite").read_bytes()
        arenas = {q: tflm_arena((out / f"step_{q}.tflite").read_bytes()) for q in sidecars}
        arena = arenas[firmware_q]["min_arena_bytes"] + ARENA_MARGIN_BYTES
        arena = (arena + 15) // 16 * 16
        header, source = write_c_array(firmware_data, sidecars[firmware_q], out, name=name,
                                       arena_bytes=arena)
        report = {
            "format_version": step_model.FORMAT_VERSION,
            "out_dir": str(out),
            "readout": model.readout,
            "threshold": list(model.threshold) if model.threshold_is_schedule else model.threshold,
            "feature_shape": list(model.feature_shape),
            "num_classes": int(model.num_classes),
            "state_layout": step_model.state_layout(model),
            # The files this export wrote (not others left in the folder, e.g. an older
            # report): name -> bytes.
            "files": {p.name: p.stat().st_size for p in sorted(
                [out / "model.keras", header, source]
                + [out / f"step_{q}.{ext}" for q in sidecars for ext in ("tflite", "json")])},
            "models": {q: {"file": f"step_{q}.tflite", "bytes": s["model_bytes"],
                           "kb": round(s["model_bytes"] / 1024, 1),
                           "tflm_arena": arenas[q], "ops": s["ops"],
                           "macs_per_frame": _flatbuffer.fc_macs((out / f"step_{q}.tflite").read_bytes()),
                           **({"threshold_q": s["threshold_q"]} if q != "float32" else {})}
                       for q, s in sidecars.items()},
            "c_array": {"header": header.name, "source": source.name, "model": firmware_q,
                        "arena_bytes": arena},
            "versions": _versions(),
        }
        if verify:
            rows = verify_agreement(model, x_ver, y_ver, step_paths, out / "saved_model", runtimes)
            report["verify"] = {"rows": rows, "table": format_agreement_table(rows)}
    finally:
        if threshold is not None:
            model.threshold = saved_threshold
    report["seconds"] = round(time.time() - started, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report

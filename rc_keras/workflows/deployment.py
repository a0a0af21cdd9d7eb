"""The deployment bundle of a saved model (``rc-keras export``) and how it is reported.

```python
from rc_keras.workflows import export_command
report = export_command("runs/spot/model.keras", "runs/spot/bundle", int8=True,
                        verify=True, task="spotting")
```

The bundle itself is written by `rc_keras.export.export_bundle`; this module picks the
data defaults (calibration, held-out sequences), the int8-exact twin of
quantization-aware export, and the agreement table and its hint.
"""

from pathlib import Path

from rc_keras import tasks
from rc_keras.workflows.evaluation import evaluate_model
from rc_keras.workflows.files import (CLIError, check_model_file, check_output_dir,
                                      check_task, load_model, record_task, recorded_task,
                                      write_json)


def export_model(model, out_dir, calibration, held_out, int8=True, verify=True, int16x8=False,
                 c_array=None, feature_params=None):
    """Writes the deployment bundle of `rc_keras.export.export_bundle` into ``out_dir``.

    The bundle holds the .keras model, the SavedModel, the float32 and int8 (and with
    ``int16x8`` the 16x8) streaming TFLite step models with their sidecars, the C array
    (of the ``c_array`` model: "int8", "int16x8" or "float32"; default int8 with
    ``int8``) and ``report.json``; with ``verify`` the held-out sequences run through
    Keras, LiteRT and TFLM.
    """
    from rc_keras import export  # noqa: PLC0415 - pulls in the TFLite converter

    return export.export_bundle(model, out_dir, int8=int8, int16x8=int16x8, c_array=c_array,
                                calibration=calibration, verify=verify,
                                verify_sequences=held_out if verify else None,
                                feature_params=feature_params)


def _fine_tuned_twin(model, x_cal, epochs, train_data, task, seed, learning_rate, log=print):
    """The int8-exact twin of ``model``, fine-tuned ``epochs`` epochs (see export_command)."""
    import keras  # noqa: PLC0415 - TensorFlow loads only when a job runs

    from rc_keras import export, losses, metrics, quantization  # noqa: PLC0415 - converter

    try:
        twin = quantization.quantize_aware(model, x_cal)
    except ValueError as error:
        raise CLIError(f"--quantization-aware: {error}") from None
    if not epochs:
        return twin
    if train_data is not None:
        x, y = export.load_sequences(train_data, "train_data")
    elif task is not None:
        x, y = task.data("train", seed=seed)
    else:
        raise CLIError("--qat-epochs needs --train-data FILE (.npz with x and y) or --task.")
    if y is None:
        raise CLIError("--train-data must hold labels: an .npz with x and y.")
    # The model's own loss (its beta) when it was saved compiled; else beta 0.
    loss = model.loss if isinstance(getattr(model, "loss", None), losses.ConfidencePenalty) \
        else losses.ConfidencePenalty(0.0)
    twin.compile(keras.optimizers.Adam(learning_rate), loss,
                 metrics=[metrics.SpikeAccuracy(), metrics.MeanSpikeTime()])
    log(f"fine-tuning the int8-exact twin: {epochs} epoch(s) on {len(x)} sequences "
        f"(beta {loss.beta:g}, learning rate {learning_rate:g})")
    twin.fit(x, y, epochs=epochs, batch_size=64, shuffle=True, verbose=2)
    return twin


# Documented agreement targets of an integer step model with the Keras model
# (docs/deploying.md, "Which integer model"; benchmarks/bench_deploy.py).
INTEGER_TARGETS = {"class_agreement": 0.99, "step_within_1": 0.99}


def agreement_hint(rows):
    """One line when an integer step model misses `INTEGER_TARGETS`, else None."""
    missed = [r for r in rows if "float32" not in r["model"] and r["runtime"] != "tensorflow"
              and any(r[key] < target for key, target in INTEGER_TARGETS.items())]
    if not missed:
        return None
    worst = min(missed, key=lambda r: (r["class_agreement"], r["step_within_1"]))
    models = sorted({r["model"] for r in missed})
    tries = []
    if any("int8" in m and "int16x8" not in m for m in models):
        tries.append("--quantization-aware (the int8-exact twin; add --qat-epochs N to "
                     "fine-tune it)")
    if not any("int16x8" in r["model"] for r in rows) or any("int16x8" in m for m in models):
        tries.append("--int16x8")
    return (f"note: {', '.join(models)} below the targets (exit class and exit step +-1 each "
            f">= 99% of sequences): worst {100 * worst['class_agreement']:.1f}% class, "
            f"{100 * worst['step_within_1']:.1f}% step +-1 ({worst['model']}, "
            f"{worst['runtime']}); try " + " or ".join(tries) + ".")


def format_verify(report, time_unit="steps"):
    """The verification table of an export ``report``, a legend and the target hint."""
    rows = report["verify"]["rows"]
    from rc_keras import export  # noqa: PLC0415 - loaded by the export already

    lines = [export.format_agreement_table(report, time_unit=time_unit), "",
             f"n held-out sequences; class agree: exit class equal to the Keras model's; step "
             f"exact / step +-1: exit step equal to / within one step of the Keras model's; "
             f"mean spike time: {time_unit} read before answering; accuracy: against the "
             "labels."]
    hint = agreement_hint(rows)
    if hint:
        lines.append(hint)
    if "qat" in report:
        lines += ["", format_qat(report["qat"], time_unit)]
    return "\n".join(lines)


def format_qat(qat, time_unit="steps"):
    """The original model beside its int8-exact twin on the same held-out sequences."""
    lines = [f"| model | accuracy % | mean spike time ({time_unit}) |", "|---|---|---|"]
    for name, row in (("original (Keras, float)", qat["original"]),
                      (f"int8-exact twin ({qat['epochs']} epoch(s) fine-tuned)", qat["twin"])):
        lines.append(f"| {name} | {100 * row['accuracy']:.2f} | "
                     f"{row['mean_spike_time']:.2f} |")
    return "\n".join(lines)


def export_command(model_path, out_dir, int8=False, calibration=None, verify=False,
                   verify_sequences=None, task=None, seed=0, int16x8=False, c_array=None,
                   quantization_aware=False, qat_epochs=0, train_data=None,
                   qat_learning_rate=1e-3, allow_task_mismatch=False, log=print):
    """`rc-keras export`: the bundle of a saved model, with data defaults from ``task``.

    With ``quantization_aware`` the bundle is that of the model's int8-exact twin
    (`rc_keras.quantization.quantize_aware`, calibrated on ``calibration``; int8 only),
    fine-tuned ``qat_epochs`` epochs on ``train_data`` (or the task's training data)
    with the model's own loss.
    """
    check_output_dir(out_dir)
    check_model_file(model_path)
    if task is not None:
        check_task(model_path, task, allow_task_mismatch)
    model = load_model(model_path)
    if quantization_aware and int16x8:
        raise CLIError("--quantization-aware exports int8 only; drop --int16x8.")
    if qat_epochs and not quantization_aware:
        raise CLIError("--qat-epochs fine-tunes the int8-exact twin: add --quantization-aware.")
    int8 = int8 or quantization_aware
    quantized = int8 or int16x8
    if task is not None:
        task = tasks.get_task(task)
        if quantized and calibration is None:
            calibration = task.data("val", 1000, seed)[0]
        if verify and verify_sequences is None:
            verify_sequences = task.data("test", 500, seed)
    if quantized and calibration is None:
        raise CLIError("--int8/--int16x8 need --calibration FILE (or --task to use its "
                       "validation data).")
    if verify and verify_sequences is None:
        raise CLIError("--verify needs --verify-sequences FILE (or --task to use its test data).")
    if quantization_aware:
        from rc_keras import export  # noqa: PLC0415 - pulls in the converter

        # Loaded once: the twin's ranges and the bundle's int8 calibration use the same array.
        calibration, _ = export.load_sequences(calibration, "calibration")
        original = model
        model = _fine_tuned_twin(original, calibration, qat_epochs, train_data, task, seed,
                                 qat_learning_rate, log=log)
    from rc_keras import kws_training  # noqa: PLC0415 - the front end saved beside a model

    report = export_model(model, out_dir, calibration, verify_sequences, int8=int8,
                          verify=verify, int16x8=int16x8, c_array=c_array,
                          feature_params=kws_training.saved_front_end(model_path))
    if quantization_aware and verify:
        x_held, y_held = export.load_sequences(verify_sequences, "verify_sequences")
        if y_held is not None:
            report["qat"] = {"epochs": int(qat_epochs),
                             "original": evaluate_model(original, x_held, y_held),
                             "twin": evaluate_model(model, x_held, y_held)}
            write_json(Path(out_dir) / "report.json", report)
    record = recorded_task(model_path)
    if record is not None and (Path(out_dir) / "model.keras").is_file():
        record_task(Path(out_dir) / "model.keras", record["task"], record["feature_shape"])
    return report

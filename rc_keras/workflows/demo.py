"""The quick-start job of ``rc-keras demo``: train RC on spotting, evaluate, export.

```python
from rc_keras.workflows import run_demo
report = run_demo("runs/demo", quick=True)
```
"""

import os
import time
from pathlib import Path

from rc_keras import __version__, tasks, tradeoff
from rc_keras.workflows.deployment import export_model, format_verify
from rc_keras.workflows.evaluation import (DEFAULT_THRESHOLDS, early_answer_note,
                                           evaluate_model, format_summary)
from rc_keras.workflows.files import check_output_dir, record_task, write_json

# The demo writes into an ignored folder of the working directory: a checkout stays as it
# was. The committed reference bundle is rewritten only by `rc-keras demo --update-reference`.
DEFAULT_DEMO_DIR = os.path.join("runs", "demo")
REFERENCE_DEMO_DIR = Path(__file__).resolve().parents[2] / "saved_models" / "demo"

DEMO_SIZES = {
    # Full: about a minute of training on 2 CPU cores.
    False: {"units": 32, "epochs": 20, "train_size": 8000, "val_size": 1000, "test_size": 2000},
    # Quick: a smoke test (seconds); the model is barely trained.
    True: {"units": 16, "epochs": 2, "train_size": 512, "val_size": 128, "test_size": 256},
}


def run_demo(out_dir=DEFAULT_DEMO_DIR, quick=False, seed=0, verbose=1, log=print):
    """The quick-start job: train RC on spotting, evaluate on fresh data, export.

    Args:
        out_dir: where the deployment bundle (with its ``report.json``) and
            ``demo_report.json`` go.
        quick: a seconds-long smoke run instead of the full (about a minute) one.
        seed: run seed.
        verbose: Keras ``fit`` verbosity.
        log: callable for progress lines.

    Returns:
        The report dict (also written to ``out_dir/demo_report.json``).
    """
    check_output_dir(out_dir)
    import keras  # noqa: PLC0415 - TensorFlow loads only when a job runs

    start = time.perf_counter()
    task = tasks.get_task("spotting")
    sizes = DEMO_SIZES[bool(quick)]
    out_dir = Path(out_dir)
    log(f"[1/3] training an RC model on '{task.name}' ({sizes['train_size']} sequences, "
        f"{sizes['epochs']} epochs, LSTM {sizes['units']}, theta {task.threshold}, "
        f"beta {task.beta})")
    keras.utils.set_random_seed(int(seed))
    x_train, y_train = task.data("train", sizes["train_size"], seed)
    x_val, y_val = task.data("val", sizes["val_size"], seed)
    x_test, y_test = task.data("test", sizes["test_size"], seed)
    model = tasks.build_model(task, units=sizes["units"])
    train_start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=task.batch_size, epochs=sizes["epochs"],
              validation_data=(x_val, y_val), shuffle=True, verbose=verbose)
    train_seconds = time.perf_counter() - train_start

    log(f"[2/3] evaluating on {len(y_test)} fresh test sequences")
    test = evaluate_model(model, x_test, y_test)
    # Moving theta trades accuracy for speed without retraining; one pass serves all.
    points = tradeoff.threshold_sweep(model, x_test, y_test, DEFAULT_THRESHOLDS)
    log("      " + format_summary(test))
    log("      other thresholds, same network:")
    log("\n".join("      " + line for line in tradeoff.format_table(points).splitlines()))
    note = early_answer_note(points, task.num_classes,
                             "before a run of 5 equal bits can have been seen")
    if note:
        log("      " + note)

    log(f"[3/3] exporting to {out_dir} (Keras, SavedModel, TFLite float32, int8 and int16x8, "
        "C array)")
    # Integer ranges come from state trajectories on validation data; agreement is
    # checked on held-out test sequences in LiteRT and TFLM. int16x8 is in the bundle
    # because int8 rounding moves exits that approach theta slowly (docs/deploying.md).
    exports = export_model(model, out_dir, calibration=x_val,
                           held_out=(x_test[:256], y_test[:256]), int16x8=True)
    log("\n".join("      " + line for line in format_verify(exports).splitlines()))
    record_task(out_dir / "model.keras", task, model.feature_shape)
    report = {
        "task": task.name,
        "quick": bool(quick),
        "config": {**sizes, "threshold": task.threshold, "beta": task.beta,
                   "learning_rate": task.learning_rate, "batch_size": task.batch_size,
                   "seed": int(seed)},
        "test": test,
        "threshold_sweep": points,
        "exports": exports,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "version": __version__,
    }
    report["report_path"] = write_json(out_dir / "demo_report.json", report)
    return report

"""The speech-commands `rc_keras.tasks.Task`: the keyword recipe behind the common paths.

`rc-keras train/evaluate/sweep --task speech-commands` run the common paths of
`rc_keras.workflows` (guards, backups, flags); the hooks here give them this package's
recipe: data from a folder (`rc_keras.kws_training.arrays`), `kws_lstm` compiled by
`compile_kws`, the majority-class stop and best validation epoch (`_task_plan_fit`),
`evaluate_kws`, and the front end saved beside the model. `rc_keras.tasks` lists the task
without importing this module and registers `SPEECH_COMMANDS` on first use.

Part of `rc_keras.kws_training`, which re-exports `SPEECH_COMMANDS`.
"""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np

from rc_keras import tasks
from rc_keras.kws_training.arrays import check_data_root, load_split_arrays, test_arrays_for
from rc_keras.kws_training.callbacks import MajorityClassStop, checkpoint_monitor, majority_share
from rc_keras.kws_training.front_end_params import (FRAME_STRIDE_MS, FRAME_WINDOW_MS,
                                                    FRONT_END_FILE, context_frames_of,
                                                    saved_front_end, task_front_end)
from rc_keras.kws_training.recipe import (GRACE_EPOCHS, GRADIENT_CLIP_NORM, UNKNOWN_KEEP,
                                          augment_params, compile_kws, evaluate_kws)
from rc_keras.models import kws_lstm

__all__ = ["SPEECH_COMMANDS"]


def _needs_data_root(num_sequences, seed=0):
    raise ValueError("the speech-commands task reads clips from a folder: pass `data_root` "
                     "(rc-keras --data ROOT); it has no generated data.")


def _load_task_split(task, split, size=None, seed=0, data_root=None, context_frames=None,
                     cache_dir=None, normalization=None, augment_copies=None):
    """``Task.load``: a split of ``data_root`` as ``({"inputs", "lengths"}, y)``; ``size``
    clips drawn at random (seeded by the split and ``seed``), or all of them.

    The train split gets the keyword recipe's augmented copies (`augment_params`, seeded
    by ``seed``, each block keeping `UNKNOWN_KEEP` of the "unknown" clips); validation and
    test stay clean. Every split goes through the front end `task_front_end` gives."""
    check_data_root(data_root, "rc-keras train --data ROOT", missing=ValueError)
    augment = augment_params(augment_copies) if split == "train" else None
    x, lengths, y = load_split_arrays(data_root, split, "paper11", cache_dir=cache_dir,
                                      features=task_front_end(context_frames, normalization),
                                      cache=False, augment=augment, augment_seed=seed,
                                      unknown_keep=UNKNOWN_KEEP)
    if size is not None:
        if size > len(y):
            raise ValueError(f"the {split} split of {data_root} holds {len(y)} clips; a "
                             f"{split} size of {size} asks for more.")
        rng = np.random.default_rng(tasks.split_seed(split, seed))
        keep = np.sort(rng.choice(len(y), size, replace=False))
        x, lengths, y = x[keep], lengths[keep], y[keep]
    return {"inputs": x, "lengths": lengths}, y


def _task_model(task, units, threshold, training_mode, input_shape=None):
    return kws_lstm(task.num_classes, num_features=input_shape[-1], units=units,
                    threshold=threshold, training_mode=training_mode)


def _task_compile(model, beta, learning_rate):
    return compile_kws(model, beta=beta, learning_rate=learning_rate)


def _task_plan_fit(task, out_dir, y_train, state_dir=None, model=None, validation_data=None,
                   options=None, grace_epochs=GRACE_EPOCHS):
    """``Task.plan_fit``: the majority-class stop rule and the best validation epoch
    (kept across a resume), reloaded after ``fit``. An RC model is judged by its
    validation spike accuracy, an EOS model by its validation accuracy at the end of the
    clip (`EndOfClipAccuracy`), which is what it was trained for. The front end goes
    into ``out_dir/front_end.json`` for evaluate, sweep and export."""
    from rc_keras.callbacks import BestEpochCheckpoint  # noqa: PLC0415

    options = options or {}
    share = majority_share(y_train)
    stop = MajorityClassStop(share, monitor="spike_accuracy", grace_epochs=grace_epochs)
    monitor, end_of_clip = checkpoint_monitor(model, validation_data)
    callbacks = [stop] + ([end_of_clip] if end_of_clip is not None else [])
    path = Path(out_dir) / "best_epoch.keras"
    best = BestEpochCheckpoint(path, monitor=monitor, mode="max",
                               state_path=None if state_dir is None
                               else Path(state_dir) / "best_epoch.json")
    params = task_front_end(options.get("context_frames"), options.get("normalization"))

    def finish(model):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / FRONT_END_FILE).write_text(
            json.dumps(dataclasses.asdict(params), indent=2) + "\n")
        info = {"best_epoch": best.best_epoch, "stopped_epoch": stop.stopped_epoch,
                "stop_share": share, "global_clipnorm": GRADIENT_CLIP_NORM,
                "checkpoint_monitor": monitor, "front_end": dataclasses.asdict(params),
                "augment": dataclasses.asdict(augment_params(options.get("augment_copies"))),
                "unknown_keep": UNKNOWN_KEEP}
        return (model if best.best_epoch is None else keras.models.load_model(path)), info

    return tasks.FitPlan(callbacks=callbacks + [best], finish=finish)


def _task_evaluate(model, x, y):
    return evaluate_kws(model, x["inputs"], x["lengths"], y,
                        lookahead_frames=context_frames_of(model))


def _task_model_data(task, model, model_path, size=None, seed=0, data_root=None, split="test"):
    """``Task.model_data``: a split through the front end saved beside the model."""
    x, lengths, y = test_arrays_for(data_root, model, size, params=saved_front_end(model_path),
                                    split=split)
    return {"inputs": x, "lengths": lengths}, y


def _task_step_ms(model):
    """``Task.step_ms``: 10 ms hops, 25 ms windows, the model's stacked future frames."""
    return FRAME_STRIDE_MS, FRAME_WINDOW_MS, context_frames_of(model)


SPEECH_COMMANDS = tasks.Task(
    name="speech-commands",
    description="Speech Commands keyword spotting from a folder (--data ROOT), paper11 labels",
    generate=_needs_data_root,
    load=_load_task_split,
    options=("data_root", "context_frames", "cache_dir", "normalization", "augment_copies"),
    model_factory=_task_model,
    compile_model=_task_compile,
    plan_fit=_task_plan_fit,
    evaluate=_task_evaluate,
    model_data=_task_model_data,
    step_ms=_task_step_ms,
    num_classes=11,
    units=128,
    threshold=0.9,
    beta=0.2,
    learning_rate=1e-3,
    epochs=30,
    batch_size=128,
    time_unit="frames",
)
# Registered on first use: rc_keras.tasks lists it without importing this module.

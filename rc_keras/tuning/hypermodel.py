"""RCHyperModel: a KerasTuner HyperModel whose trials sweep theta after training once.

```python
import keras_tuner
from rc_keras import tuning
objective = tuning.make_objective("budget", sequence_length=40, max_spike_time=15)
hypermodel = tuning.RCHyperModel("two-sequence", objective,
                                 space=tuning.SearchSpace(beta=(0.0, 0.3)))
tuner = keras_tuner.RandomSearch(hypermodel, objective=objective.keras_objective(),
                                 max_trials=12, directory="runs/tune")
tuner.search(x, y, validation_data=(x_val, y_val), epochs=3)
```

A trial builds a model for its beta (and units, learning rate), trains it, and at the
end of every epoch sweeps theta on the validation data with one forward pass
(`rc_keras.tradeoff.sweep_from_probabilities`). The objective's value and the best point
of the sweep are added to the epoch logs, so KerasTuner's own callbacks (the best-epoch
checkpoint, Hyperband's continuation) see them like any Keras metric; ``fit`` returns the
metrics of the best epoch, and the whole curve of that epoch is written to
``rc_curve.json`` in the trial's directory.
"""

import dataclasses
import json
import os
from pathlib import Path
from typing import Optional, Tuple

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from rc_keras import tasks, tradeoff, validation
from rc_keras.validation import check_range  # noqa: F401 - rc_keras.tuning.check_range
from rc_keras.tuning.objectives import DEFAULT_THRESHOLDS  # noqa: F401 - defined without TF

CURVE_FILE = "rc_curve.json"


def check_thresholds(thresholds):
    """Checks a theta grid: non-empty, each in (0, 1); returns it sorted, unique."""
    values = sorted({validation.check_threshold(t, "thresholds") for t in (thresholds or ())})
    if not values:
        raise ValueError("`thresholds` is empty: give at least one theta in (0, 1).")
    return tuple(values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """Ranges the tuner samples. A range ``(low, high)`` with low == high fixes a value;
    ``None`` keeps the task's default."""

    beta: Tuple[float, float] = (0.0, 0.3)
    """Confidence-penalty weight, sampled uniformly (beta can be 0)."""
    units: Optional[Tuple[int, int]] = None
    """Cell width, sampled as an integer on a log scale."""
    learning_rate: Optional[Tuple[float, float]] = None
    """Adam learning rate, sampled on a log scale."""

    def __post_init__(self):
        object.__setattr__(self, "beta", check_range(self.beta, "beta", minimum=0.0))
        if self.units is not None:
            object.__setattr__(self, "units", check_range(self.units, "units", positive=True,
                                                          integer=True))
        if self.learning_rate is not None:
            object.__setattr__(self, "learning_rate",
                               check_range(self.learning_rate, "learning_rate", positive=True))

    def to_dict(self):
        """A JSON-ready dict."""
        return {k: (list(v) if v is not None else None)
                for k, v in dataclasses.asdict(self).items()}


def _sample(hp, name, bounds, kind, sampling="linear"):
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    if kind == "int":
        return hp.Int(name, low, high, sampling=sampling)
    return hp.Float(name, low, high, sampling=sampling)


class RCHyperModel(keras_tuner.HyperModel):
    """A `keras_tuner.HyperModel` of a task's RC model, scored by a theta sweep.

    Args:
        task: a `rc_keras.tasks.Task` or a registered name.
        objective: a `TuningObjective` (`make_objective`).
        space: the `SearchSpace`; beta in [0, 0.3] and the task's units and learning
            rate by default.
        thresholds: the theta grid swept on validation data after every epoch.
        train_threshold: theta during training (RC training backpropagates from the
            spike at this theta); the task's default when None.
        batch_size: training batch size; the task's default when None.
        input_shape: (time, *features) of one sequence; read from one generated
            sequence of the task when None. The model is built with it, so that
            KerasTuner can load checkpoints into a fresh model.
        name: HyperModel name.
        schedule: also fit per-step threshold schedules on the validation data after
            every epoch (`rc_keras.tradeoff.fit_threshold_schedule`, about 0.5 s for 10k
            sequences x 100 steps) and score the trial by the best of the constant
            thresholds and those schedules (`ThresholdSweepCallback`).
    """

    def __init__(self, task, objective, space=None, thresholds=DEFAULT_THRESHOLDS,
                 train_threshold=None, batch_size=None, input_shape=None, name=None,
                 schedule=False):
        super().__init__(name=name, tunable=True)
        self.schedule = bool(schedule)
        self.task = tasks.get_task(task)
        self.objective = objective
        self.space = space or SearchSpace()
        self.thresholds = check_thresholds(thresholds)
        self.train_threshold = validation.check_threshold(
            self.task.threshold if train_threshold is None else train_threshold,
            "train_threshold")
        self.batch_size = self.task.batch_size if batch_size is None else int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer; received {batch_size}.")
        if input_shape is None:
            input_shape = self.task.generate(1, seed=0)[0].shape[1:]
        self.input_shape = tuple(int(d) for d in input_shape)

    def build(self, hp):
        beta = _sample(hp, "beta", self.space.beta, "float")
        units = (self.task.units if self.space.units is None
                 else _sample(hp, "units", self.space.units, "int", "log"))
        learning_rate = (self.task.learning_rate if self.space.learning_rate is None
                         else _sample(hp, "learning_rate", self.space.learning_rate, "float",
                                      "log"))
        model = tasks.build_model(self.task, units=units, threshold=self.train_threshold,
                                  beta=beta, learning_rate=learning_rate)
        model.build((None,) + self.input_shape)
        # With the optimizer built too, KerasTuner's checkpoints (Hyperband's continued
        # trials, the best model) restore the optimizer state instead of skipping it.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, x, y=None, validation_data=None, callbacks=None, **kwargs):
        """Trains ``model`` and scores it by a theta sweep on ``validation_data``.

        The tuner's callbacks are passed on to ``model.fit``, after the sweep callback so
        that they see the objective in the epoch logs.

        Returns:
            The metrics of the best epoch: the objective's value (under
            ``objective.metric_name``), "met_budget" (1.0 or 0.0) and, when met,
            "best_threshold", "best_accuracy", "best_mean_spike_time".
        """
        if validation_data is None or len(validation_data) < 2:
            raise ValueError("`validation_data` (x_val, y_val) is required: theta is swept on it.")
        callbacks = list(callbacks or [])
        sweep = ThresholdSweepCallback(validation_data[0], validation_data[1], self.thresholds,
                                       self.objective, hyperparameters=hp.values,
                                       trial_dir=_trial_dir(callbacks), schedule=self.schedule)
        kwargs.setdefault("batch_size", self.batch_size)
        kwargs.setdefault("verbose", 0)
        model.fit(x, y, callbacks=[sweep] + callbacks, **kwargs)
        if sweep.best is None:
            raise ValueError("training ran no epoch (check `epochs` and `initial_epoch`).")
        return dict(sweep.best["metrics"])


def _trial_dir(callbacks):
    """The trial directory, from KerasTuner's TunerCallback among the fit callbacks."""
    for callback in callbacks:
        tuner, trial = getattr(callback, "tuner", None), getattr(callback, "trial", None)
        if tuner is not None and trial is not None and hasattr(tuner, "get_trial_dir"):
            return tuner.get_trial_dir(trial.trial_id), trial.trial_id
    return None


class ThresholdSweepCallback(keras.callbacks.Callback):
    """Sweeps theta on validation data at each epoch end and adds the objective to the logs.

    Args:
        x_val, y_val: validation sequences and labels.
        thresholds: theta grid.
        objective: a `TuningObjective`.
        hyperparameters: dict recorded with the curve.
        trial_dir: optional ``(directory, trial_id)``; the best epoch's curve goes to
            ``directory/rc_curve.json``.
        schedule: add to the curve the frontier of per-step threshold schedules fitted
            on the same validation data (points whose "threshold" is a list, marked
            ``"schedule": True``), so that the objective takes the best schedule of the
            trial when it beats every constant theta. Schedules have more freedom than
            one theta: their validation score is the more optimistic of the two, so
            read the best trial's test result (`run_search` reports it).

    Attributes:
        best: dict with "epoch", "metrics" and "curve" of the best epoch so far.
    """

    def __init__(self, x_val, y_val, thresholds, objective, hyperparameters=None, trial_dir=None,
                 schedule=False):
        super().__init__()
        self.schedule = bool(schedule)
        self.x_val = np.asarray(x_val, dtype=np.float32)
        self.y_val = np.asarray(y_val)
        self.thresholds = list(thresholds)
        self.objective = objective
        self.hyperparameters = dict(hyperparameters or {})
        self.trial_dir = trial_dir
        self.best = None
        self._forward = None

    def _step_probabilities(self):
        if self._forward is None:
            # Traced once per trial; 512 sequences a pass bounds memory on long tasks.
            spec = tf.TensorSpec((None,) + self.x_val.shape[1:], tf.float32)
            self._forward = tf.function(
                lambda batch: self.model.step_probabilities(batch, training=False),
                input_signature=[spec])
        chunks = [self._forward(tf.constant(self.x_val[i:i + 512])).numpy()
                  for i in range(0, len(self.x_val), 512)]
        return np.concatenate(chunks, axis=0)

    def on_epoch_end(self, epoch, logs=None):
        probs = self._step_probabilities()
        curve = tradeoff.sweep_from_probabilities(probs, self.y_val, self.thresholds,
                                                  readout=self.model.readout)
        if self.schedule:
            fitted = tradeoff.fit_threshold_schedule(probs, self.y_val,
                                                     readout=self.model.readout)
            curve += [{"threshold": p["threshold"], "accuracy": p["accuracy"],
                       "mean_spike_time": p["mean_spike_time"],
                       "no_spike_rate": p["no_spike_rate"], "schedule": True,
                       "theta_0": p["theta_0"], "theta_end": p["theta_end"], "tau": p["tau"]}
                      for p in fitted if p["tau"] is not None]
        metrics = self.objective.metrics(curve)
        if logs is not None:
            logs.update(metrics)
        name = self.objective.metric_name
        if self.best is None or metrics[name] > self.best["metrics"][name]:
            self.best = {"epoch": int(epoch), "metrics": metrics, "curve": curve}
            self._write()

    def _write(self):
        if self.trial_dir is None:
            return
        directory, trial_id = self.trial_dir
        record = {
            "trial_id": trial_id,
            "hyperparameters": {k: (v.item() if isinstance(v, np.generic) else v)
                                for k, v in self.hyperparameters.items()},
            "epoch": self.best["epoch"],
            "metrics": self.best["metrics"],
            "curve": self.best["curve"],
            "objective": self.objective.to_dict(),
            # Who ran the trial: shows how a distributed search shared its trials.
            "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"),
            "pid": os.getpid(),
        }
        path = Path(directory) / CURVE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)  # atomic: a killed process never leaves half a file

"""Training each side of a comparison until its own validation metric stops improving.

Every benchmark that compares RC training with conventional (end-of-sequence, EOS)
training uses `fit_to_convergence` for both sides, so neither wins by being trained
longer: each network trains until its validation metric has not improved for
``patience`` epochs (or ``max_epochs`` run out, the same budget for both), the weights of
its best epoch are restored, and the epochs used, the training time and the
per-epoch validation curve are recorded for the results table and plot.

What "its own validation metric" means follows `kws_training.checkpoint_monitor`: an RC
network is judged by its accuracy at its spike at the operating threshold
(``val_spike_accuracy``); an EOS network by its accuracy at the end of the sequence
(``val_end_of_clip_accuracy``), which is what it was trained for. A benchmark with
another operating point (e.g. the accuracy at a theta chosen for a speed budget) passes
a ``score`` function instead.

```python
from rc_keras.convergence import fit_to_convergence
model, run = fit_to_convergence(model, (x_train, y_train), (x_val, y_val),
                                max_epochs=30, patience=3, batch_size=32)
run.epochs_used, run.best_epoch, run.curve, run.train_seconds
```
"""

import dataclasses
import time

import keras
import numpy as np

__all__ = ["Convergence", "FreshEpochs", "ValidationScore", "early_stopping",
           "fit_to_convergence"]


@dataclasses.dataclass(frozen=True)
class Convergence:
    """What one `fit_to_convergence` run did.

    Attributes:
        monitor: the log entry that judged the epochs, e.g. "val_spike_accuracy".
        curve: the monitored validation value after every epoch run (higher is better).
        best_epoch: 0-based epoch whose weights were restored.
        best: the monitored value at ``best_epoch``.
        epochs_used: epochs trained (``len(curve)``).
        max_epochs: the epoch budget.
        patience: epochs without improvement that stop the run.
        stopped_early: True when patience ran out before ``max_epochs``.
        train_seconds: wall time of the training epochs (validation scoring excluded).
        epoch_seconds: the same, per epoch.
        seconds: wall time of the whole run, validation scoring included.
        history: every epoch log (training and validation metrics), lists of floats.
    """

    monitor: str
    curve: list
    best_epoch: int
    best: float
    epochs_used: int
    max_epochs: int
    patience: int
    stopped_early: bool
    train_seconds: float
    epoch_seconds: list
    seconds: float
    history: dict

    def to_dict(self):
        """A JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


class ValidationScore(keras.callbacks.Callback):
    """Adds ``name`` = ``score(model)`` to every epoch's logs.

    For a validation metric that Keras's ``validation_data`` does not compute (the
    accuracy at an operating point chosen per epoch, a score from another runtime).
    Place it before the callbacks that read the entry.

    Args:
        score: ``score(model) -> float``, higher is better.
        name: the log entry, e.g. "val_fast_accuracy".

    Attributes:
        values: the scores so far, one per epoch.
    """

    def __init__(self, score, name):
        super().__init__()
        if not callable(score):
            raise ValueError(f"`score` must be a callable model -> float; received {score!r}.")
        self.score, self.name = score, str(name)
        self.values = []

    def on_train_begin(self, logs=None):
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(float(self.score(self.model)))
        if logs is not None:
            logs[self.name] = self.values[-1]


class FreshEpochs(keras.utils.PyDataset):
    """Training batches of a new draw of data every epoch (synthetic tasks).

    Args:
        draw: ``draw(epoch) -> (x, y)``, the training set of a 0-based epoch; x an array
            or an ``{"inputs", "lengths"}`` dict of arrays.
        batch_size: examples per batch (the last batch may be smaller).
    """

    def __init__(self, draw, batch_size):
        super().__init__()
        if not callable(draw):
            raise ValueError(f"`draw` must be a callable epoch -> (x, y); received {draw!r}.")
        self.draw, self.batch_size = draw, _check_count(batch_size, "batch_size", 1)
        self.epoch = 0
        self.x, self.y = draw(0)

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index):
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if isinstance(self.x, dict):
            return {key: value[batch] for key, value in self.x.items()}, self.y[batch]
        return self.x[batch], self.y[batch]

    def on_epoch_end(self):
        self.epoch += 1
        self.x, self.y = self.draw(self.epoch)


def _check_count(value, name, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; received {value!r}.")
    return int(value)


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` that never stops before ``min_epochs`` epochs have run.

    Keras's ``start_from_epoch`` ignores the first epochs entirely (they could not be
    the best); here they count for the best epoch, only the stop waits.
    """

    def __init__(self, min_epochs=0, **kwargs):
        super().__init__(**kwargs)
        self.min_epochs = min_epochs

    def on_epoch_end(self, epoch, logs=None):
        stopping = self.model.stop_training  # another callback's stop is left alone
        super().on_epoch_end(epoch, logs)
        if (not stopping and self.model.stop_training and self.stopped_epoch == epoch
                and epoch + 1 < self.min_epochs):
            self.model.stop_training = False
            self.stopped_epoch = 0


def early_stopping(monitor, patience, min_delta=0.0, min_epochs=0):
    """The stopping rule of `fit_to_convergence`, as a callback for other training loops.

    ``keras.callbacks.EarlyStopping`` on a higher-is-better validation entry, the best
    epoch's weights restored at the end of training (Keras restores them whether or not
    the run stopped early). For loops that call ``fit`` themselves, e.g. KerasTuner's
    ``search(..., callbacks=[early_stopping(...)])``.

    Args:
        monitor: the log entry, e.g. "val_spike_accuracy".
        patience: epochs without improvement before stopping (>= 1).
        min_delta: smallest increase that counts as an improvement.
        min_epochs: epochs that always run (a plateau at the start of training, e.g. at
            the majority class, does not end the run).
    """
    patience = _check_count(patience, "patience", 1)
    min_epochs = _check_count(min_epochs, "min_epochs", 0)
    if not np.isfinite(min_delta) or min_delta < 0:
        raise ValueError(f"`min_delta` must be >= 0; received {min_delta!r}.")
    return _EarlyStopping(monitor=monitor, mode="max", patience=patience,
                          min_delta=float(min_delta), restore_best_weights=True,
                          min_epochs=min_epochs)


def fit_to_convergence(model, train, val, max_epochs, patience=3, batch_size=32,
                       score=None, monitor=None, min_delta=0.0, min_epochs=0, callbacks=(),
                       verbose=0, seed=None):
    """Fits ``model`` until its validation metric stops improving; restores the best epoch.

    Early stopping (``keras.callbacks.EarlyStopping``) on a validation metric that is
    higher-is-better, with the weights of the best epoch restored at the end whether the
    run stopped early or used its whole budget.

    Args:
        model: a compiled `rc_keras.RCModel` (or any Keras model when ``score`` or
            ``monitor`` is given).
        train: ``(x, y)`` training data, x an array or an ``{"inputs", "lengths"}`` dict
            (shuffled each epoch); or a ``keras.utils.PyDataset`` / ``tf.data.Dataset``
            of ``(x, y)`` batches (``batch_size`` is then unused).
        val: ``(x, y)`` validation data, same form (never the test split).
        max_epochs: the epoch budget (>= 1).
        patience: epochs without improvement before stopping (>= 1).
        batch_size: training batch size.
        score: optional ``score(model) -> float`` computed after every epoch and
            monitored as ``monitor`` (default name "val_score"); replaces the default
            rule below.
        monitor: the log entry to judge epochs by. Default: `kws_training.checkpoint_monitor`
            (an RC model by "val_spike_accuracy", an EOS model by
            "val_end_of_clip_accuracy").
        min_delta: smallest increase that counts as an improvement.
        min_epochs: epochs that always run before the stopping rule may end the run
            (they still count for the best epoch).
        callbacks: more callbacks (e.g. a `BetaSchedule`); they run after the monitored
            entry is in the epoch's logs and before the stopping rule.
        verbose: Keras verbosity.
        seed: when not None, ``keras.utils.set_random_seed(seed)`` before fitting.

    Returns:
        ``(model, Convergence)``: the same model, holding its best epoch's weights.
    """
    from rc_keras.kws_training.callbacks import EpochTimer, checkpoint_monitor  # noqa: PLC0415

    max_epochs = _check_count(max_epochs, "max_epochs", 1)
    patience = _check_count(patience, "patience", 1)
    extra = []
    if score is not None:
        monitor = monitor or "val_score"
        extra.append(ValidationScore(score, monitor))
    elif monitor is None:
        monitor, end_of_sequence = checkpoint_monitor(model, val)
        extra += [end_of_sequence] if end_of_sequence is not None else []
    timer = EpochTimer()
    stop = early_stopping(monitor, patience, min_delta, min_epochs)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    if isinstance(train, (tuple, list)):
        x_train, y_train = train
        batching = {"batch_size": batch_size, "shuffle": True}
    else:  # a dataset that batches itself (e.g. fresh sequences every epoch)
        x_train, y_train, batching = train, None, {}
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=max_epochs, validation_data=tuple(val),
                        verbose=verbose, callbacks=[timer, *extra, *callbacks, stop],
                        **batching)
    seconds = time.perf_counter() - start
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    if monitor not in logs:
        raise ValueError(f"`monitor` {monitor!r} is not in the epoch logs {sorted(logs)}.")
    curve = logs[monitor]
    return model, Convergence(
        monitor=monitor, curve=curve, best_epoch=int(stop.best_epoch),
        best=float(curve[stop.best_epoch]), epochs_used=len(curve), max_epochs=max_epochs,
        patience=patience, stopped_early=len(curve) < max_epochs,
        train_seconds=float(sum(timer.seconds)), epoch_seconds=[float(t) for t in timer.seconds],
        seconds=seconds, history=logs)

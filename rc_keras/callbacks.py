"""Training callbacks for rank-coded models."""

import json
import numbers
import os
from pathlib import Path

import keras

from rc_keras import validation
from rc_keras.losses import ConfidencePenalty


@keras.saving.register_keras_serializable(package="rc_keras")
class BetaSchedule(keras.callbacks.Callback):
    """Changes the confidence-penalty weight beta during training.

    beta sets where an RC network sits between speed and accuracy: a higher beta keeps
    outputs less confident, so they cross theta later (the slow, accurate regime); a lower
    beta lets them cross sooner (the fast regime). The paper moves a network between the
    two by changing beta during training; this callback does that at the start of each
    epoch. `rc_keras.ConfidencePenalty` keeps beta in a variable that the compiled train
    step reads, so nothing is recompiled or retraced.

    The beta of each epoch is added to the epoch's logs under ``"beta"``, so it appears
    in the ``History`` and, if this callback comes before it in ``callbacks``, in a
    ``keras.callbacks.CSVLogger`` file.

    Args:
        schedule: either a callable ``schedule(epoch) -> beta`` (0-based epoch), or a
            dict ``{first_epoch: beta}`` of piecewise-constant values (it must have an
            entry for epoch 0; each value holds until the next key), e.g.
            ``{0: 0.3, 5: 0.02}``: beta 0.3 for epochs 0-4, then 0.02.
        loss: the `ConfidencePenalty` to drive; defaults to the model's compiled loss.
        verbose: print the new beta whenever it changes.

    Example:

    ```python
    model.compile("adam", rc_keras.ConfidencePenalty(beta=0.3),
                  metrics=[rc_keras.metrics.SpikeAccuracy()])
    history = model.fit(x, y, epochs=10,
                        callbacks=[BetaSchedule({0: 0.3, 5: 0.02}), keras.callbacks.CSVLogger("log.csv")])
    history.history["beta"]       # [0.3, 0.3, 0.3, 0.3, 0.3, 0.02, ...]
    ```
    """

    def __init__(self, schedule, loss=None, verbose=0):
        super().__init__()
        if isinstance(schedule, dict):
            schedule = self._check_steps(schedule)
        elif not callable(schedule):
            raise ValueError("`schedule` must be a callable epoch -> beta or a dict "
                             f"{{first_epoch: beta}}; received {schedule!r}.")
        if loss is not None and not isinstance(loss, ConfidencePenalty):
            raise ValueError(f"`loss` must be a rc_keras.ConfidencePenalty or None; received "
                             f"{loss!r}.")
        self.schedule = schedule
        self.loss = loss
        self.verbose = verbose

    @staticmethod
    def _check_steps(steps):
        checked = {}
        for epoch, beta in steps.items():
            if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
                raise ValueError(f"`schedule` keys must be epochs (ints >= 0); received {epoch!r}.")
            checked[int(epoch)] = validation.check_beta(beta)
        if 0 not in checked:
            raise ValueError("`schedule` given as a dict must have an entry for epoch 0; "
                             f"received keys {sorted(checked)}.")
        return dict(sorted(checked.items()))

    def beta_at(self, epoch):
        """The beta of a 0-based ``epoch``, a float."""
        if isinstance(self.schedule, dict):
            return [beta for start, beta in self.schedule.items() if start <= epoch][-1]
        return validation.check_beta(self.schedule(epoch))

    def _target(self):
        loss = self.loss if self.loss is not None else getattr(self.model, "loss", None)
        if not isinstance(loss, ConfidencePenalty):
            raise ValueError("BetaSchedule needs the model compiled with a "
                             f"rc_keras.ConfidencePenalty loss (or `loss=`); the model's loss is "
                             f"{loss!r}.")
        return loss

    def on_epoch_begin(self, epoch, logs=None):
        loss = self._target()
        beta = self.beta_at(epoch)
        if self.verbose and beta != loss.beta:
            print(f"\nEpoch {epoch + 1}: BetaSchedule sets beta to {beta:g}.")
        loss.beta = beta

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["beta"] = self._target().beta

    def get_config(self):
        if not isinstance(self.schedule, dict):
            raise NotImplementedError("a BetaSchedule with a callable schedule is not "
                                      "serializable; use a dict {first_epoch: beta}.")
        return {"schedule": {str(k): v for k, v in self.schedule.items()},
                "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = {int(k): v for k, v in config["schedule"].items()}
        return cls(**config)


class BestEpochCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint(save_best_only=True)`` whose best value survives a restart.

    A restarted ``fit`` (``BackupAndRestore``) builds its callbacks afresh, and a plain
    ``ModelCheckpoint`` would then take the first resumed epoch as the best, overwriting
    a better checkpoint from before the kill. This one writes the best value and its
    epoch to ``state_path`` after every save and starts from them when the file exists:
    keep it inside the backup folder, which is removed once training completes, so a
    new run starts fresh.

    Args:
        filepath: the ``.keras`` file of the best epoch.
        monitor: the log entry to watch, e.g. "val_spike_accuracy".
        mode: "auto", "min" or "max" (RC metrics tell Keras their direction).
        state_path: JSON file of the best value and epoch, or None (no resume).
        verbose: Keras verbosity.

    Attributes:
        best_epoch: 0-based epoch of the saved checkpoint, or None.
    """

    def __init__(self, filepath, monitor="val_loss", mode="auto", state_path=None, verbose=0):
        self.state_path = None if state_path is None else Path(state_path)
        state = None
        if self.state_path is not None and self.state_path.is_file():
            state = json.loads(self.state_path.read_text())
        super().__init__(str(filepath), monitor=monitor, mode=mode, save_best_only=True,
                         verbose=verbose,
                         initial_value_threshold=None if state is None else state["best"])
        self.best_epoch = None if state is None else int(state["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best is not before:  # saved: a new best
            self.best_epoch = int(epoch)
            if self.state_path is not None:
                self.state_path.parent.mkdir(parents=True, exist_ok=True)
                partial = self.state_path.with_name("partial-" + self.state_path.name)
                partial.write_text(json.dumps({"best": float(self.best), "epoch": int(epoch),
                                               "monitor": self.monitor}))
                os.replace(partial, self.state_path)

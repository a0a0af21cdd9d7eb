import csv
import json

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras.callbacks import BetaSchedule


class _LossProbe(keras.callbacks.Callback):
    """Records the training loss of one fixed batch, evaluated by the compiled train graph."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(logs["loss"])


def _model(beta=0.5):
    model = rk.RCModel(keras.layers.SimpleRNNCell(4), keras.layers.Dense(3, activation="softmax"),
                       threshold=0.9)
    model.compile(keras.optimizers.SGD(0.0), rk.ConfidencePenalty(beta=beta))
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4, 2)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2])


def test_schedule_changes_the_loss_of_the_compiled_step_and_is_logged(tmp_path):
    x, y = _data()
    model = _model()
    probe = _LossProbe()
    log = tmp_path / "log.csv"
    schedule = BetaSchedule({0: 0.5, 2: 0.0})
    # A learning rate of 0 keeps the weights fixed, so the loss changes only with beta.
    history = model.fit(x, y, epochs=3, batch_size=6, verbose=0, shuffle=False,
                        callbacks=[schedule, probe, keras.callbacks.CSVLogger(str(log))])
    assert history.history["beta"] == [0.5, 0.5, 0.0]
    with open(log) as f:
        assert [float(row["beta"]) for row in csv.DictReader(f)] == [0.5, 0.5, 0.0]
    # The same train function ran all epochs: the epoch-2 loss is the loss at beta 0.
    probs = model.predict(x, verbose=0)["probs"]
    p = np.clip(probs, 1e-7, 1.0)
    cross_entropy = -np.log(p[np.arange(6), y])
    entropy = -(probs * np.log(p)).sum(-1)
    np.testing.assert_allclose(probe.values, [np.mean(cross_entropy - 0.5 * entropy)] * 2
                               + [np.mean(cross_entropy)], rtol=1e-5)
    assert model.loss.beta == 0.0


def test_callable_schedule_and_beta_at():
    schedule = BetaSchedule(lambda epoch: 0.1 * epoch)
    assert schedule.beta_at(3) == pytest.approx(0.3)
    steps = BetaSchedule({5: 0.02, 0: 0.3})
    assert [steps.beta_at(e) for e in (0, 4, 5, 9)] == [0.3, 0.3, 0.02, 0.02]
    assert BetaSchedule.from_config(steps.get_config()).schedule == {0: 0.3, 5: 0.02}


def test_loss_beta_setter_validates_and_keeps_config():
    loss = rk.ConfidencePenalty(beta=0.2)
    loss.beta = 0.05
    assert loss.get_config()["beta"] == 0.05
    with pytest.raises(ValueError, match="`beta`"):
        loss.beta = -1.0


@pytest.mark.parametrize("schedule,match", [({1: 0.1}, "epoch 0"), ({0: -0.1}, "`beta`"),
                                            ({-1: 0.1, 0: 0.1}, "epochs"), (0.3, "`schedule`")])
def test_bad_schedules(schedule, match):
    with pytest.raises(ValueError, match=match):
        BetaSchedule(schedule)


def test_needs_a_confidence_penalty_loss():
    x, y = _data()
    model = rk.RCModel(keras.layers.SimpleRNNCell(4), keras.layers.Dense(3, activation="softmax"))
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="ConfidencePenalty"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[BetaSchedule({0: 0.1})])
    with pytest.raises(ValueError, match="`loss`"):
        BetaSchedule({0: 0.1}, loss="mse")


def test_best_epoch_checkpoint_keeps_its_best_across_a_restart(tmp_path):
    from rc_keras.callbacks import BestEpochCheckpoint
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(2, activation="softmax"))
    model.build((None, 3, 1))
    path, state = tmp_path / "best.keras", tmp_path / "backup" / "best.json"
    first = BestEpochCheckpoint(path, monitor="val_spike_accuracy", mode="max", state_path=state)
    first.set_model(model)
    for epoch, value in enumerate([0.5, 0.75, 0.6]):
        first.on_epoch_begin(epoch)
        first.on_epoch_end(epoch, {"val_spike_accuracy": value})
    assert first.best == 0.75 and first.best_epoch == 1
    saved = path.read_bytes()
    # A restarted run builds its callbacks afresh: the best of before the kill holds.
    again = BestEpochCheckpoint(path, monitor="val_spike_accuracy", mode="max", state_path=state)
    again.set_model(model)
    assert again.best == 0.75 and again.best_epoch == 1
    again.on_epoch_begin(3)
    again.on_epoch_end(3, {"val_spike_accuracy": 0.7})  # worse: not saved
    assert path.read_bytes() == saved and again.best_epoch == 1
    again.on_epoch_end(3, {"val_spike_accuracy": 0.8})
    assert again.best_epoch == 3 and json.loads(state.read_text())["best"] == 0.8
    fresh = BestEpochCheckpoint(path, monitor="val_spike_accuracy", mode="max", state_path=None)
    assert fresh.best_epoch is None

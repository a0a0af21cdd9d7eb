import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import tradeoff
from rc_keras.convergence import FreshEpochs, fit_to_convergence
from rc_keras.kws_training import end_of_clip_accuracy


class _Snapshots(keras.callbacks.Callback):
    """The model's weights at the end of every epoch (before any restore)."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def _arrays(n=48, seed=0):
    """A tiny learnable task: the class is the sign pattern of the first frame."""
    x = np.random.default_rng(seed).normal(size=(n, 5, 2)).astype(np.float32)
    return x, (x[:, 0, 0] > 0).astype(np.int64) + (x[:, 0, 1] > 0).astype(np.int64)


def _task(training_mode="rc", n=48):
    x, y = _arrays(n)
    keras.utils.set_random_seed(0)
    model = rk.RCModel(keras.layers.SimpleRNNCell(6), keras.layers.Dense(3, activation="softmax"),
                       threshold=0.6, training_mode=training_mode)
    model.compile(keras.optimizers.SGD(0.1), rk.ConfidencePenalty(beta=0.0),
                  metrics=[rk.metrics.SpikeAccuracy()])
    return model, (x[:32], y[:32]), (x[32:], y[32:])


def _scripted(curve):
    """A score that returns ``curve[k]`` at the k-th epoch: a synthetic validation curve."""
    calls = iter(curve)
    return lambda model: next(calls)


def _assert_weights_equal(model, weights):
    for actual, expected in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_stops_when_validation_stops_improving_and_restores_the_best_epoch():
    model, train, val = _task()
    snapshots = _Snapshots()
    # Best at epoch 1; epoch 3 only equals it (no improvement); patience 3 runs out at epoch 4.
    curve = [0.2, 0.5, 0.4, 0.5, 0.45, 0.9, 0.95]
    model, run = fit_to_convergence(model, train, val, max_epochs=7, patience=3, batch_size=8,
                                    score=_scripted(curve), callbacks=[snapshots])
    assert run.epochs_used == 5
    assert run.curve == curve[:5]
    assert run.best_epoch == 1 and run.best == 0.5
    assert run.stopped_early and run.monitor == "val_score"
    assert len(run.history["loss"]) == 5 and run.history["val_score"] == curve[:5]
    assert run.train_seconds > 0 and run.seconds >= run.train_seconds
    _assert_weights_equal(model, snapshots.weights[1])
    # Training moved the weights after the best epoch; they were put back.
    assert any(not np.array_equal(late, best)
               for late, best in zip(snapshots.weights[4], snapshots.weights[1], strict=True))


def test_budget_exhausted_still_restores_the_best_epoch():
    model, train, val = _task()
    snapshots = _Snapshots()
    model, run = fit_to_convergence(model, train, val, max_epochs=4, patience=3, batch_size=8,
                                    score=_scripted([0.1, 0.2, 0.3, 0.25]), callbacks=[snapshots],
                                    monitor="val_fast_accuracy")
    assert (run.epochs_used, run.best_epoch, run.stopped_early) == (4, 2, False)
    assert run.monitor == "val_fast_accuracy" and run.curve == [0.1, 0.2, 0.3, 0.25]
    _assert_weights_equal(model, snapshots.weights[2])


def test_min_delta_counts_small_gains_as_no_improvement():
    model, train, val = _task()
    model, run = fit_to_convergence(model, train, val, max_epochs=6, patience=2, batch_size=8,
                                    score=_scripted([0.5, 0.505, 0.509, 0.7, 0.8, 0.9]),
                                    min_delta=0.01)
    assert (run.epochs_used, run.best_epoch) == (3, 0)


def test_min_epochs_delays_the_stop_but_the_early_best_still_counts():
    model, train, val = _task()
    snapshots = _Snapshots()
    # Patience 1 would stop at epoch 1; min_epochs 4 runs epochs 0-3, then stops (no gain).
    model, run = fit_to_convergence(model, train, val, max_epochs=8, patience=1, batch_size=8,
                                    score=_scripted([0.6, 0.5, 0.5, 0.55, 0.9, 0.9, 0.9, 0.9]),
                                    min_epochs=4, callbacks=[snapshots])
    assert (run.epochs_used, run.best_epoch, run.best) == (4, 0, 0.6)
    _assert_weights_equal(model, snapshots.weights[0])


def test_min_epochs_leaves_another_callbacks_stop_alone():
    class StopAtFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    model, train, val = _task()
    model, run = fit_to_convergence(model, train, val, max_epochs=5, patience=1, batch_size=8,
                                    score=_scripted([0.5] * 5), min_epochs=4,
                                    callbacks=[StopAtFirstEpoch()])
    assert run.epochs_used == 1


def test_rc_side_is_judged_by_its_spike_accuracy_at_the_threshold():
    model, train, val = _task("rc")
    model, run = fit_to_convergence(model, train, val, max_epochs=6, patience=2, batch_size=8)
    assert run.monitor == "val_spike_accuracy"
    assert run.curve == run.history["val_spike_accuracy"]
    restored = model.evaluate(*val, batch_size=16, verbose=0, return_dict=True)
    assert restored["spike_accuracy"] == pytest.approx(run.best, abs=1e-6)
    assert run.best == max(run.curve)


def test_eos_side_is_judged_by_its_accuracy_at_the_end_of_the_sequence():
    model, train, val = _task("eos")
    model, run = fit_to_convergence(model, train, val, max_epochs=6, patience=2, batch_size=8)
    assert run.monitor == "val_end_of_clip_accuracy"
    probs = tradeoff.all_step_probabilities(model, val[0])
    assert end_of_clip_accuracy(probs, np.full(len(val[1]), 5), val[1]) == run.best
    assert run.best == max(run.curve) and run.to_dict()["best_epoch"] == run.best_epoch


@pytest.mark.parametrize("kwargs, match", [
    ({"max_epochs": 0}, "max_epochs"), ({"max_epochs": 2, "patience": 0}, "patience"),
    ({"max_epochs": 2.5}, "max_epochs"), ({"max_epochs": 2, "min_delta": -1}, "min_delta"),
    ({"max_epochs": 2, "score": 3}, "score"),
    ({"max_epochs": 2, "min_epochs": -1}, "min_epochs")])
def test_bad_arguments_name_the_argument(kwargs, match):
    model, train, val = _task()
    with pytest.raises(ValueError, match=match):
        fit_to_convergence(model, train, val, **kwargs)


def test_fresh_epochs_draws_new_data_every_epoch_and_feeds_fit():
    calls = []

    def draw(epoch):
        calls.append(epoch)
        x = np.full((10, 5, 2), float(epoch), np.float32)
        return {"inputs": x, "lengths": np.full(10, 5 - epoch % 2)}, np.arange(10) % 3

    data = FreshEpochs(draw, batch_size=4)
    assert len(data) == 3 and calls == [0]
    x, y = data[2]
    assert x["inputs"].shape == (2, 5, 2) and y.tolist() == [2, 0]
    data.on_epoch_end()
    assert calls == [0, 1] and data[0][0]["inputs"][0, 0, 0] == 1.0
    assert data[0][0]["lengths"].tolist() == [4] * 4

    model, _, val = _task()
    calls.clear()
    data = FreshEpochs(lambda epoch: (calls.append(epoch), _arrays(32, seed=epoch))[1],
                       batch_size=8)
    model, run = fit_to_convergence(model, data, val, max_epochs=3, patience=3,
                                    score=_scripted([0.1, 0.2, 0.3]))
    assert run.epochs_used == 3 and calls[:3] == [0, 1, 2]


def test_fresh_epochs_rejects_a_draw_that_is_not_callable():
    with pytest.raises(ValueError, match="draw"):
        FreshEpochs([1, 2], batch_size=4)

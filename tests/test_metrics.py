"""RC metrics on hand-made predictions."""

import numpy as np
import pytest

import rc_keras as rk

PREDICTION = {
    "probs": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], "float32"),
    "spike_time": np.array([0, 4, 9, 2], "int32"),
    "spiked": np.array([True, True, False, True]),
    "steps_run": np.int32(10),
}
LABELS = np.array([0, 1, 1, 0])


@pytest.mark.parametrize("metric, expected", [
    (rk.metrics.SpikeAccuracy(), 0.5),
    (rk.metrics.MeanSpikeTime(), (1 + 5 + 10 + 3) / 4),
    (rk.metrics.NoSpikeRate(), 0.25),
    (rk.metrics.StepsRun(), 10.0),
])
def test_metric_values(metric, expected):
    metric.update_state(LABELS, PREDICTION)
    assert float(metric.result()) == pytest.approx(expected)


def test_sample_weights_and_one_hot_labels():
    metric = rk.metrics.SpikeAccuracy()
    metric.update_state(np.eye(2)[LABELS], PREDICTION, sample_weight=np.array([1, 1, 0, 0]))
    assert float(metric.result()) == pytest.approx(1.0)


def test_plain_tensor_prediction_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="dict returned by RCModel.predict"):
        rk.metrics.MeanSpikeTime().update_state(LABELS, PREDICTION["probs"])


def test_steps_run_is_exact_on_a_dataset_of_unknown_cardinality():
    import keras
    import tensorflow as tf
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(2, activation="softmax"),
                       threshold=float(np.nextafter(np.float32(1), 0)))  # nobody spikes
    model.compile("sgd", rk.ConfidencePenalty(), metrics=[rk.metrics.StepsRun()])
    x, y = np.zeros((20, 10, 1), "float32"), np.zeros(20, "int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(4)
    assert int(ds.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    # 5 batches of 10 steps each: 10, also with the empty read past the end.
    assert model.evaluate(ds, verbose=0, return_dict=True)["steps_run"] == 10.0
    generator = tf.data.Dataset.from_generator(
        lambda: ((x[i:i + 4], y[i:i + 4]) for i in range(0, 20, 4)),
        output_signature=(tf.TensorSpec((None, 10, 1)), tf.TensorSpec((None,), tf.int32)))
    assert model.evaluate(generator, verbose=0, return_dict=True)["steps_run"] == 10.0


def test_steps_run_ignores_an_empty_batch():
    metric = rk.metrics.StepsRun()
    metric.update_state(LABELS, PREDICTION)
    metric.update_state(LABELS[:0], {"probs": PREDICTION["probs"][:0],
                                     "spike_time": PREDICTION["spike_time"][:0],
                                     "spiked": PREDICTION["spiked"][:0], "steps_run": np.int32(0)})
    assert float(metric.result()) == 10.0


def _compiled(metrics=None, weighted_metrics=None, learning_rate=0.0):
    import keras
    keras.utils.set_random_seed(0)
    model = rk.RCModel(keras.layers.SimpleRNNCell(4), keras.layers.Dense(2, activation="softmax"),
                       threshold=0.55)
    model.compile(keras.optimizers.SGD(learning_rate), rk.ConfidencePenalty(),
                  metrics=metrics, weighted_metrics=weighted_metrics)
    return model


def _toy(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 2)).astype("float32")
    return x, (x[:, :, 0].sum(1) > 0).astype("int32")


def test_weights_apply_to_weighted_metrics_only_as_in_keras():
    x, y = _toy()
    model = _compiled(metrics=[rk.metrics.SpikeAccuracy()],
                      weighted_metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    out = model.predict(x, verbose=0)
    right = (out["label"] == y).astype(float)
    weights = np.where(right == 1, 1.0, 0.0) + np.where(y == 1, 0.25, 0.0)
    logs = model.evaluate(x, y, sample_weight=weights, batch_size=8, verbose=0, return_dict=True)
    assert logs["spike_accuracy"] == pytest.approx(right.mean(), abs=1e-6)
    assert logs["weighted_spike_accuracy"] == pytest.approx(np.average(right, weights=weights),
                                                            abs=1e-6)
    assert logs["mean_spike_time"] == pytest.approx(
        np.average(out["spike_time"] + 1, weights=weights), abs=1e-5)
    # class_weight becomes a sample weight in Keras: the same rule (SGD at rate 0: no change).
    history = model.fit(x, y, class_weight={0: 0.0, 1: 1.0}, batch_size=8, epochs=1,
                        shuffle=False, verbose=0)
    assert history.history["spike_accuracy"][0] == pytest.approx(right.mean(), abs=1e-6)
    assert history.history["weighted_spike_accuracy"][0] == pytest.approx(
        right[y == 1].mean(), abs=1e-6)


@pytest.mark.parametrize("monitor, best", [("val_spike_accuracy", max),
                                           ("val_mean_spike_time", min),
                                           ("val_no_spike_rate", min)])
def test_callbacks_tell_the_direction_of_rc_metrics(monitor, best, tmp_path):
    import keras
    x, y = _toy(64)
    metrics = [rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(), rk.metrics.NoSpikeRate()]
    model = _compiled(metrics=metrics, learning_rate=0.05)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, patience=5)
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor=monitor,
                                                 save_best_only=True)
    history = model.fit(x, y, validation_data=_toy(32, 1), epochs=3, batch_size=16, verbose=0,
                        callbacks=[stop, checkpoint])
    assert stop.best == best(history.history[monitor])
    assert checkpoint.best == best(history.history[monitor])
    assert (tmp_path / "best.keras").is_file()

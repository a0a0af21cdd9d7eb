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

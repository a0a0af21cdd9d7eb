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

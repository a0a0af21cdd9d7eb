"""Bad input refused by name before training starts (rc_keras.validation)."""

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import validation


def _model():
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(2, activation="softmax"))
    model.compile("sgd", rk.ConfidencePenalty())
    return model


@pytest.mark.parametrize("weights, match", [
    ([1.0, np.inf, 1.0, 1.0], r"`sample_weight` contains 1 NaN or Inf"),
    ([1.0, np.nan, np.nan, 1.0], r"`sample_weight` contains 2 NaN or Inf"),
    ([1.0, -0.5, 1.0, 1.0], r"`sample_weight` must be >= 0; received a minimum of -0.5"),
    ([1.0, 1.0], r"`sample_weight` must have shape \(4,\).*received shape \(2,\)"),
    ([["a"], ["b"], ["c"], ["d"]], r"`sample_weight` must be numeric"),
])
def test_fit_and_evaluate_refuse_bad_sample_weights(weights, match):
    model = _model()
    x, y = np.zeros((4, 3, 1), "float32"), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, sample_weight=np.asarray(weights, dtype=object if
                                                 isinstance(weights[0], list) else None),
                  verbose=0)
    with pytest.raises(ValueError, match=match):
        model.evaluate(x, y, sample_weight=np.asarray(weights, dtype=object if
                                                      isinstance(weights[0], list) else None),
                       verbose=0)


def test_good_sample_weights_pass():
    validation.check_sample_weight([0.0, 2.5, 1.0], 3)
    validation.check_sample_weight(np.ones((3, 1)), 3)


@pytest.mark.parametrize("value", [0, -3, 2.5, "x", None, True])
def test_check_positive_int(value):
    with pytest.raises(ValueError, match=r"`epochs` must be a positive integer; received"):
        validation.check_positive_int(value, "epochs")


def test_check_positive_int_accepts_integers():
    assert validation.check_positive_int(3, "epochs") == 3
    assert validation.check_positive_int(np.int64(2), "epochs") == 2


@pytest.mark.parametrize("x", [np.full((2, 3, 1), "a"), np.empty((2, 3, 1), dtype=object)])
def test_non_numeric_sequences_are_refused_by_name(x):
    model = _model()
    with pytest.raises(ValueError, match=r"`x` must hold numbers; received dtype"):
        model.predict(x, verbose=0)

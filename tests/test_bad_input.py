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


# ---------------------------------------------------------------------- issue 21, item 11
def test_non_integer_class_labels_are_refused_through_tf_data_as_for_arrays():
    import tensorflow as tf
    model = _model()
    x, y = np.zeros((4, 3, 1), "float32"), np.array([0.0, 1.5, 1.0, 0.0], "float32")
    with pytest.raises(ValueError, match=r"`y` holds labels in \[0.0, 1.5\]"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="`y` holds non-integer class labels"):
        model.fit(x, np.array([0.0, 0.5, 1.0, 0.0], "float32"), verbose=0)
    before = [w.numpy() for w in model.weights]
    for labels, match in ((y, "labels must be < number of classes"),
                          (np.array([0.0, 0.5, 1.0, 0.0], "float32"),
                           "class labels must be integers")):
        ds = tf.data.Dataset.from_tensor_slices((x, labels)).batch(4)
        with pytest.raises(tf.errors.InvalidArgumentError, match=match):
            model.fit(ds, verbose=0)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_sigmoid_readout_refuses_one_hot_labels_by_name():
    import tensorflow as tf
    model = rk.RCModel(keras.layers.SimpleRNNCell(2), keras.layers.Dense(1, activation="sigmoid"),
                       readout="sigmoid")
    model.compile("sgd", rk.ConfidencePenalty())
    x, y = np.zeros((8, 3, 1), "float32"), np.eye(2)[np.arange(8) % 2]
    match = r"`y` must hold one target per sequence, shape \(batch,\) or \(batch, 1\), for a " \
            r"sigmoid readout.*received shape \(8, 2\)"
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.evaluate(x, y, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(ValueError, match=r"one target per sequence.*received shape \(None, 2\)"):
        model.fit(ds, verbose=0)
    model.fit(x, (np.arange(8) % 2).astype("float32"), verbose=0)  # 0/1 targets train


def test_predict_with_no_sequences_returns_empty_answers():
    model = _model()
    out = model.predict(np.zeros((0, 3, 1), "float32"), verbose=0)
    assert out["probs"].shape == (0, 2) and out["probs"].dtype == np.float32
    assert out["spike_time"].shape == out["spiked"].shape == out["label"].shape == (0,)
    with pytest.raises(ValueError, match="`x` holds no sequences: fit needs at least one"):
        model.fit(np.zeros((0, 3, 1), "float32"), np.zeros(0, "int32"), verbose=0)
    with pytest.raises(ValueError, match="`x` holds no sequences: evaluate needs at least one"):
        model.evaluate(np.zeros((0, 3, 1), "float32"), np.zeros(0, "int32"), verbose=0)

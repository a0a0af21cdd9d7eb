"""ConfidencePenalty against its formula, in all label forms, finite at 0 and 1."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras as rk


def _reference(labels, probs, beta):
    p = np.asarray(probs, np.float64)
    onehot = np.eye(p.shape[-1])[labels]
    ce = -(onehot * np.log(p)).sum(-1)
    entropy = -(p * np.log(p)).sum(-1)
    return np.mean(ce - beta * entropy)


def test_matches_formula_for_sparse_and_one_hot_labels():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 2])
    loss = rk.ConfidencePenalty(beta=0.4)
    expected = _reference(labels, probs, 0.4)
    np.testing.assert_allclose(float(loss(labels, probs)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss(labels[:, None], probs)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss(np.eye(3)[labels], probs)), expected, rtol=1e-5)


def test_beta_zero_is_cross_entropy_and_logits_agree():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.3, -2.0]], "float32")
    labels = np.array([1, 0])
    probs = tf.nn.softmax(logits).numpy()
    ce = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    np.testing.assert_allclose(float(rk.ConfidencePenalty(0.0)(labels, probs)), float(ce), rtol=1e-5)
    np.testing.assert_allclose(float(rk.ConfidencePenalty(0.3, from_logits=True)(labels, logits)),
                               float(rk.ConfidencePenalty(0.3)(labels, probs)), rtol=1e-5)


def test_binary_form():
    p = np.array([[0.9], [0.2], [0.6]], "float32")
    y = np.array([1, 0, 0])
    two_class = np.concatenate([1 - p, p], axis=1)
    np.testing.assert_allclose(float(rk.ConfidencePenalty(0.2)(y, p)),
                               _reference(y, two_class, 0.2), rtol=1e-5)


def test_finite_loss_and_gradient_at_zero_and_one():
    probs = tf.Variable([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    binary = tf.Variable([[1.0], [0.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss = rk.ConfidencePenalty(beta=0.5)([1, 1], probs)
        binary_loss = rk.ConfidencePenalty(beta=0.5)([0, 1], binary)
    for value, var in ((loss, probs), (binary_loss, binary)):
        assert np.isfinite(float(value))
        assert np.all(np.isfinite(tape.gradient(value, var).numpy()))


def test_label_smoothing():
    # Config round trip: tests/test_serialization.py.
    loss = rk.ConfidencePenalty(beta=0.2, label_smoothing=0.1)
    probs = np.array([[0.7, 0.3]], "float32")
    smoothed = -(0.95 * np.log(0.7) + 0.05 * np.log(0.3)) - 0.2 * -(0.7 * np.log(0.7) + 0.3 * np.log(0.3))
    np.testing.assert_allclose(float(loss([0], probs)), smoothed, rtol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        rk.ConfidencePenalty(label_smoothing=1.0)

"""ConfidencePenalty: cross-entropy minus beta times the entropy of the prediction."""

import keras
import tensorflow as tf
from keras import ops

from rc_keras import validation

_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="rc_keras")
class ConfidencePenalty(keras.losses.Loss):
    """Cross-entropy with a confidence penalty (Pereyra et al. 2017), as in RC training.

    ``loss = cross_entropy(y, p) - beta * entropy(p)``. With beta > 0 the network is
    discouraged from very confident outputs, so it spikes (crosses theta) only when the
    evidence supports it; beta = 0 is plain cross-entropy.

    Works for a softmax readout, with sparse integer labels of shape (batch,) or
    (batch, 1) or one-hot labels of shape (batch, classes), and for a single sigmoid
    output of shape (batch, 1) with 0/1 labels (the binary form). Probabilities are
    clipped to [1e-7, 1 - 1e-7] inside logarithms, so the loss and its gradient stay
    finite at probabilities of exactly 0 and 1.

    Args:
        beta: weight of the entropy term, >= 0. Held in a variable that compiled train
            steps read, so it can change during training without retracing
            (``loss.beta = 0.05``; see `rc_keras.callbacks.BetaSchedule`).
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: in [0, 1); mixes the targets with the uniform distribution.
        reduction: Keras loss reduction.
        name: loss name.
    """

    def __init__(self, beta=0.0, from_logits=False, label_smoothing=0.0,
                 reduction="sum_over_batch_size", name="confidence_penalty", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        # A non-trainable variable, created outside any graph being traced: graph-mode
        # train steps read its current value, so `BetaSchedule` can move beta per epoch.
        with tf.init_scope():
            self._beta_variable = tf.Variable(0.0, trainable=False, dtype=tf.float32,
                                              name="beta")
        self.beta = beta
        self.from_logits = bool(from_logits)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(
                f"`label_smoothing` must lie in [0, 1); received {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    @property
    def beta(self):
        """Weight of the entropy term, a Python float; settable (``loss.beta = 0.05``)."""
        return self._beta

    @beta.setter
    def beta(self, value):
        self._beta = validation.check_beta(value)
        self._beta_variable.assign(self._beta)

    def _beta_as(self, dtype):
        return ops.cast(self._beta_variable, dtype)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        if y_pred.shape[-1] == 1:
            return self._binary(y_true, y_pred)
        return self._categorical(y_true, y_pred)

    def _categorical(self, y_true, y_pred):
        num_classes = y_pred.shape[-1]
        y_true = ops.convert_to_tensor(y_true)
        if y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] == num_classes:
            targets = ops.cast(y_true, y_pred.dtype)
        else:
            labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            targets = ops.one_hot(labels, num_classes, dtype=y_pred.dtype)
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
            probs = ops.exp(log_probs)
        else:
            probs = y_pred
            log_probs = ops.log(ops.clip(y_pred, _EPSILON, 1.0))
        cross_entropy = -ops.sum(targets * log_probs, axis=-1)
        entropy = -ops.sum(probs * log_probs, axis=-1)
        return cross_entropy - self._beta_as(entropy.dtype) * entropy

    def _binary(self, y_true, y_pred):
        targets = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        y_pred = ops.reshape(y_pred, (-1,))
        if self.label_smoothing:
            targets = targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            log_p = ops.log_sigmoid(y_pred)
            log_q = ops.log_sigmoid(-y_pred)
            p = ops.sigmoid(y_pred)
        else:
            p = y_pred
            log_p = ops.log(ops.clip(p, _EPSILON, 1.0))
            log_q = ops.log(ops.clip(1.0 - p, _EPSILON, 1.0))
        cross_entropy = -(targets * log_p + (1.0 - targets) * log_q)
        entropy = -(p * log_p + (1.0 - p) * log_q)
        return cross_entropy - self._beta_as(entropy.dtype) * entropy

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, from_logits=self.from_logits,
                      label_smoothing=self.label_smoothing)
        return config

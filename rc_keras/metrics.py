"""Metrics of rank-coded inference: accuracy at the spike, spike time, misses, loop steps.

Each metric's ``update_state(y_true, y_pred, sample_weight=None)`` takes ``y_pred`` as
the dict that `RCModel.predict` returns ("probs", "spike_time", "spiked", and, during
training, "steps_run"), so the same objects serve ``compile(metrics=...)`` and
stand-alone scoring of predictions.
"""

import keras
import tensorflow as tf


class RCMetric(keras.metrics.Mean):
    """Base class: a weighted mean of a per-example quantity of the RC output."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not isinstance(y_pred, dict):
            raise ValueError(
                f"{type(self).__name__} expects `y_pred` as the dict returned by "
                f"RCModel.predict (keys 'probs', 'spike_time', 'spiked'); received "
                f"{type(y_pred).__name__}.")
        values = self.values(y_true, y_pred)
        if sample_weight is not None:
            sample_weight = tf.reshape(sample_weight, [-1])
        return super().update_state(values, sample_weight=sample_weight)

    def values(self, y_true, y_pred):
        raise NotImplementedError


def predicted_labels(probs):
    """Class index from softmax probabilities, or 0/1 from a single sigmoid output."""
    probs = tf.convert_to_tensor(probs)
    if probs.shape[-1] == 1:
        return tf.cast(probs[:, 0] >= 0.5, tf.int32)
    return tf.argmax(probs, axis=-1, output_type=tf.int32)


@keras.saving.register_keras_serializable(package="rc_keras")
class SpikeAccuracy(RCMetric):
    """Accuracy of the answer given at each example's spike step.

    Labels may be integers or one-hot.
    """

    def __init__(self, name="spike_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"  # lets Keras callbacks pick mode="auto"

    def values(self, y_true, y_pred):
        probs = tf.convert_to_tensor(y_pred["probs"])
        y_true = tf.convert_to_tensor(y_true)
        if probs.shape[-1] > 1 and y_true.shape.rank == 2 and y_true.shape[-1] == probs.shape[-1]:
            labels = tf.argmax(y_true, axis=-1, output_type=tf.int32)
        else:
            labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        return tf.cast(tf.equal(predicted_labels(probs), labels), self.dtype)


@keras.saving.register_keras_serializable(package="rc_keras")
class MeanSpikeTime(RCMetric):
    """Mean number of input steps read before answering (0-based spike_time + 1)."""

    def __init__(self, name="mean_spike_time", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"  # lets Keras callbacks pick mode="auto"

    def values(self, y_true, y_pred):
        return tf.cast(tf.reshape(y_pred["spike_time"], [-1]) + 1, self.dtype)


@keras.saving.register_keras_serializable(package="rc_keras")
class NoSpikeRate(RCMetric):
    """Fraction of examples whose output never crossed the threshold."""

    def __init__(self, name="no_spike_rate", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"  # lets Keras callbacks pick mode="auto"

    def values(self, y_true, y_pred):
        return 1.0 - tf.cast(tf.reshape(y_pred["spiked"], [-1]), self.dtype)


@keras.saving.register_keras_serializable(package="rc_keras")
class StepsRun(RCMetric):
    """Mean over batches of the loop iterations actually executed (the halting cost).

    Each non-empty batch counts once, whatever its size and sample weights. An empty
    batch does not count: Keras reads one past the end of a dataset of unknown
    cardinality (a generator, ``.filter()``) and hands that empty batch to the metrics.
    """

    def __init__(self, name="steps_run", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"  # lets Keras callbacks pick mode="auto"

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not isinstance(y_pred, dict) or "steps_run" not in y_pred:
            raise ValueError("StepsRun expects `y_pred` to be a dict with a 'steps_run' entry.")
        batch = tf.size(tf.reshape(y_pred.get("spike_time", y_pred["probs"]), [-1]))
        return keras.metrics.Mean.update_state(
            self, tf.cast(y_pred["steps_run"], self.dtype),
            sample_weight=tf.cast(batch > 0, self.dtype))

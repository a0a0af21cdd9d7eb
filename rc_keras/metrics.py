"""Metrics of rank-coded inference: accuracy at the spike, spike time, misses, loop steps, compute.

Each metric's ``update_state(y_true, y_pred, sample_weight=None)`` takes ``y_pred`` as
the dict that `RCModel.predict` returns ("probs", "spike_time", "spiked", and, during
training and evaluation, "steps_run", "cell_evaluations" and "time_steps"), so the same
objects serve ``compile(metrics=...)`` and stand-alone scoring of predictions.
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


@keras.saving.register_keras_serializable(package="rc_keras")
class ComputeFraction(RCMetric):
    """Cell evaluations actually computed, as a fraction of batch x time steps.

    The cost that per-example halting saves (`RCModel`'s ``per_example_halting``):
    an example whose answer comes at step s costs s + 1 evaluations at best, so with
    every example answering the fraction approaches ``MeanSpikeTime / T``; a loop that
    runs every row to the batch's latest answer gives ``StepsRun / T``. Summed over
    batches (a ratio of totals), so a batch of 64 counts half as much as one of 128;
    sample weights do not apply. Needs ``y_pred`` with "cell_evaluations" and
    "time_steps", as RCModel's training and evaluation pass.
    """

    def __init__(self, name="compute_fraction", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "down"  # lets Keras callbacks pick mode="auto"

    def update_state(self, y_true, y_pred, sample_weight=None):
        if (not isinstance(y_pred, dict) or "cell_evaluations" not in y_pred
                or "time_steps" not in y_pred):
            raise ValueError("ComputeFraction expects `y_pred` to be a dict with "
                             "'cell_evaluations' and 'time_steps' entries.")
        batch = tf.size(tf.reshape(y_pred.get("spike_time", y_pred["probs"]), [-1]))
        capacity = tf.cast(batch, self.dtype) * tf.cast(y_pred["time_steps"], self.dtype)
        # Mean of the batch fraction weighted by its capacity: total computed / total capacity.
        # An empty batch (see StepsRun) has capacity 0 and counts nothing.
        fraction = tf.math.divide_no_nan(tf.cast(y_pred["cell_evaluations"], self.dtype), capacity)
        return keras.metrics.Mean.update_state(self, fraction, sample_weight=capacity)

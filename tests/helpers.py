"""Small cells and heads with exactly known behaviour, shared by the tests."""

import keras
import tensorflow as tf


class PassThroughCell(keras.layers.Layer):
    """Outputs its input step unchanged; its state counts the steps it has run."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = 1
        self.output_size = units
        self.calls = 0

    def call(self, inputs, states):
        self.calls += 1  # counts Python-level executions (eager while_loop runs the body per step)
        return inputs, [states[0] + 1.0]


def identity_head():
    return keras.layers.Identity()


def probs_with_spikes(spike_steps, time, classes=2, level=0.99, base=0.6):
    """Per-step probabilities whose max crosses 0.95 exactly at ``spike_steps`` (None: never)."""
    rows = []
    for step in spike_steps:
        low = [[base, 1 - base] + [0.0] * (classes - 2)] * time
        row = [list(v) for v in low]
        if step is not None:
            for t in range(step, time):
                row[t] = [1 - level, level] + [0.0] * (classes - 2)
        rows.append(row)
    return tf.constant(rows, dtype=tf.float32)


# ------------------------------------------------- gradient-equivalence harness
# The correctness proof of RC training: the halting unroll's loss and gradients equal
# those of a reference that runs all T steps with keras.layers.RNN and gathers each
# example's output at its first crossing. Any cell (Keras or rc_keras) is tested so.
BATCH, TIME, FEATURES, CLASSES = 8, 12, 4, 3


def rc_setup(cell, training_mode="rc", feature_shape=(FEATURES,), scale=2.0):
    """A built RCModel with a softmax head, random (x, y), and theta where spikes vary.

    theta sits in the widest gap between observed maxima near the 80th percentile, so
    float rounding differences between the two paths cannot move a spike.
    """
    import numpy as np
    import rc_keras as rk

    head = keras.layers.Dense(CLASSES, activation="softmax")
    model = rk.RCModel(cell, head, training_mode=training_mode)
    model.build((None, TIME) + tuple(feature_shape))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(BATCH, TIME) + tuple(feature_shape)) * scale, tf.float32)
    y = tf.constant(rng.integers(0, CLASSES, size=BATCH), tf.int32)
    values = np.unique(model.step_probabilities(x).numpy().max(axis=-1))
    window = range(int(0.7 * len(values)), int(0.9 * len(values)))
    i = max(window, key=lambda k: values[k + 1] - values[k])
    model.threshold = float((values[i] + values[i + 1]) / 2)
    return model, x, y


def reference_loss(model, x, y, loss_fn, at_last_step=False, theta=None):
    """Full-sequence forward pass, output gathered at each example's first crossing."""
    probs = keras.layers.TimeDistributed(model.head)(
        keras.layers.RNN(model.cell, return_sequences=True)(x))
    batch, time = x.shape[0], x.shape[1]
    if at_last_step:
        steps = tf.fill([batch], time - 1)
    else:
        crossed = tf.reduce_max(probs, axis=-1) >= theta
        first = tf.argmax(tf.cast(crossed, tf.int32), axis=1, output_type=tf.int32)
        steps = tf.where(tf.reduce_any(crossed, axis=1), first, time - 1)
    return loss_fn(y, tf.gather(probs, steps, axis=1, batch_dims=1)), steps


def rc_loss(model, x, y, loss_fn):
    out = model.rank_code(x, training=True)
    return loss_fn(y, out.probs), out.spike_time


def loss_and_grads(fn, model, x, y, loss_fn, mode, **kwargs):
    """(loss, steps, gradients) of ``fn`` in "eager", "graph" or "xla" mode."""
    def compute(x, y):
        with tf.GradientTape() as tape:
            loss, steps = fn(model, x, y, loss_fn, **kwargs)
        return loss, steps, tape.gradient(loss, model.trainable_weights)
    if mode == "eager":
        return compute(x, y)
    return tf.function(compute, jit_compile=(mode == "xla"))(x, y)


def assert_rc_matches_reference(model, x, y, mode, beta=0.3, nonzero=False):
    """RC loss, spike steps and every gradient equal the full-sequence reference (1e-5)."""
    import numpy as np
    import rc_keras as rk

    loss_fn = rk.ConfidencePenalty(beta=beta)
    rc, rc_steps, rc_grads = loss_and_grads(rc_loss, model, x, y, loss_fn, mode)
    ref, ref_steps, ref_grads = loss_and_grads(reference_loss, model, x, y, loss_fn, mode,
                                               theta=model.threshold)
    np.testing.assert_array_equal(rc_steps.numpy(), ref_steps.numpy())
    assert len(set(rc_steps.numpy().tolist())) >= 3, "spike steps should vary for a meaningful test"
    assert rc_steps.numpy().min() < x.shape[1] - 1
    np.testing.assert_allclose(rc.numpy(), ref.numpy(), atol=1e-5)
    assert len(rc_grads) == len(model.trainable_weights)
    for weight, g_rc, g_ref in zip(model.trainable_weights, rc_grads, ref_grads):
        if nonzero:
            assert float(tf.reduce_max(tf.abs(g_ref))) > 0, weight.path
        np.testing.assert_allclose(g_rc.numpy(), g_ref.numpy(), atol=1e-5, err_msg=weight.path)


class CumulativeSumCell(keras.layers.Layer):
    """Its state (and output) is the running sum of the input steps: exact on small
    integers, and every row is computed alone, so a masked batch and the same rows
    trimmed and run one by one must give identical numbers."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units

    def call(self, inputs, states):
        total = states[0] + inputs
        return total, [total]


class RowSoftmax(keras.layers.Layer):
    """Softmax over the last axis, elementwise per row (no matrix product)."""

    def call(self, inputs):
        return tf.nn.softmax(inputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

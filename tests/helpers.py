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

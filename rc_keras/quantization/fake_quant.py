"""Fake quantization: float tensors rounded to the int8 grid TFLite will use.

TensorFlow's FakeQuant ops round forward and pass gradients straight through inside
their range. The TFLite converter reads their ranges as the int8 scales of the tensors
they sit on, so a model trained with them converts to an int8 model whose arithmetic
matches its Keras forward pass (up to kernel rounding).
"""

import contextlib
import contextvars

import numpy as np
import tensorflow as tf

# Output ranges the TFLite int8 kernels fix whatever the calibration: LOGISTIC and
# SOFTMAX write 1/256 steps from 0, TANH 1/128 steps around 0.
SIGMOID_RANGE = (0.0, 255.0 / 256.0)
TANH_RANGE = (-1.0, 127.0 / 128.0)
SOFTMAX_RANGE = SIGMOID_RANGE


def symmetric_range(bound):
    """The 8-bit range of step ``2 * bound / 255`` with zero at int8 0: ``[-128, 127]`` steps.

    (-bound, bound) itself puts the zero point at 127.5 steps, which TensorFlow's
    FakeQuant (float32) rounds to 127 and the TFLite converter to 128: the two grids
    would saturate one step apart.
    """
    step = 2.0 * float(bound) / 255.0
    return (-128.0 * step, 127.0 * step)


_ROUNDING_OPS = contextvars.ContextVar("rc_keras_rounding_ops", default=False)


@contextlib.contextmanager
def rounding_ops(enabled=True):
    """Within it, `fake_quant` rounds with plain float ops instead of FakeQuant ops.

    For the float32 export of a quantization-aware model: the converter turns FakeQuant
    ops into QUANTIZE (float to uint8) / DEQUANTIZE pairs, which TFLM cannot run; Floor,
    Mul, Add and clipping it can. Int8 export needs the FakeQuant ops (their ranges
    become the int8 scales), so this is off by default.
    """
    token = _ROUNDING_OPS.set(bool(enabled))
    try:
        yield
    finally:
        _ROUNDING_OPS.reset(token)


def nudged_range(value_range):
    """(low, high, scale, 1 / scale) of TensorFlow's 8-bit FakeQuant over ``value_range``.

    The range is shifted so that 0 falls on the grid (TensorFlow's "nudging"), computed
    in float32 as TensorFlow does: for (-8, 8) the zero point is 127, not 128; an exact
    half (-126.5, 128.5) rounds up, to 127.
    """
    low, high = np.float32(value_range[0]), np.float32(value_range[1])
    scale = (high - low) / np.float32(255.0)
    # std::round: halves go up (away from zero), where numpy's round goes to even.
    zero_point = np.clip(np.floor(np.float32(0.0) - low / scale + np.float32(0.5)), 0.0, 255.0)
    zero_point = np.float32(zero_point)
    return ((np.float32(0.0) - zero_point) * scale, (np.float32(255.0) - zero_point) * scale,
            scale, np.float32(255.0) / (high - low))


def fake_quant(tensor, value_range):
    """Rounds ``tensor`` to the 8-bit grid over ``value_range`` (nudged to hold 0).

    Gradients pass straight through inside the range and are zero outside it.
    """
    low, high = value_range
    if not _ROUNDING_OPS.get():
        return tf.quantization.fake_quant_with_min_max_args(tensor, min=float(low),
                                                            max=float(high), num_bits=8)
    low, high, scale, inverse = nudged_range(value_range)
    clipped = tf.clip_by_value(tensor, low, high)
    rounded = tf.floor((clipped - low) * inverse + 0.5) * scale + low
    return clipped + tf.stop_gradient(rounded - clipped)


def fake_quant_weights(kernel):
    """Per-output-channel symmetric int8 weights, as the converter quantizes them.

    ``kernel`` is (inputs, outputs); each column's scale is its largest |value| / 127.
    Written with Round (straight-through gradient) rather than the per-channel FakeQuant
    op: the converter folds it into the constant weights, whose own int8 quantization
    then lands on the same grid. (With the FakeQuant op, the transpose into
    FULLY_CONNECTED's layout fails to convert: "mismatched quantized axes".)
    """
    scale = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(kernel), axis=0), 1e-12) / 127.0)
    rounded = tf.round(kernel / scale) * scale
    return kernel + tf.stop_gradient(rounded - kernel)

"""One LSTM step written out op by op, in the form that quantizes well to int8.

`keras.layers.LSTMCell` computes ``z = x K + h U + b`` as two matrix products whose
sum the TFLite converter gives one per-tensor int8 scale. On a trained keyword LSTM
the input product alone spans +-52 (0.41 per int8 level), so gate pre-activations
near 0, where sigmoid and tanh are steep, are rounded by up to 0.2. Here:

- ``x`` and ``h`` are concatenated and multiplied once (one FULLY_CONNECTED op), and
  the pre-activations are clipped to ``[-gate_clip, gate_clip]``. The converter gives
  the product the clip's scale and the int8 output saturates there: with a clip of 8,
  0.063 per level. sigmoid(8) and tanh(8) round to the int8 maximum of those ops'
  outputs, so the clip costs nothing in int8.
- CONCATENATION needs one scale for all its inputs, and ``h`` spans ``[-1, 1]``: the
  input is divided by ``input_divisor`` (its largest magnitude, from calibration)
  before the concatenation, and the kernel rows multiplied by it, so ``h`` keeps
  1/128 per level.
- The cell state may be clipped to ``[-cell_clip, cell_clip]`` (see
  `rc_keras.export.step_model.INT8_CELL_CLIP`).

The same function runs inside `rc_keras.quantization.QuantizedLSTMCell` with
``quantize`` set, which rounds each tensor as the int8 graph will.
"""

import keras

# Gate pre-activations beyond this are saturated in int8: sigmoid(6.2) already rounds
# to 255/256 and tanh(3.1) to 127/128.
INT8_GATE_CLIP = 8.0


def _identity(name, tensor):
    del name
    return tensor


def supports_lstm_step(cell):
    """True for a plain `keras.layers.LSTMCell` with its default activations."""
    return (type(cell) is keras.layers.LSTMCell
            and getattr(cell.activation, "__name__", "") == "tanh"
            and getattr(cell.recurrent_activation, "__name__", "") == "sigmoid")


def lstm_step(kernel, recurrent_kernel, bias, inputs, h, c, input_divisor=1.0, gate_clip=None,
              cell_clip=None, quantize=None, quantize_weights=None):
    """One LSTM step (Keras gate order i, f, g, o); returns ``(h_new, c_new)``.

    Args:
        kernel, recurrent_kernel, bias: the `keras.layers.LSTMCell` weights (``bias``
            may be None).
        inputs, h, c: (batch, features), (batch, units), (batch, units).
        input_divisor: ``inputs`` are divided by it and ``kernel`` multiplied by it
            (same product; see the module docstring).
        gate_clip: optional bound on the gate pre-activations.
        cell_clip: optional bound on the new cell state.
        quantize: optional ``quantize(name, tensor)`` applied to each intermediate
            tensor, named "concat", "gates", "sigmoid", "tanh", "input_times_candidate",
            "forget_times_cell", "cell", "tanh_cell", "hidden".
        quantize_weights: optional function applied to the (features + units, 4 units)
            matrix of the single product (the kernel rows already multiplied by
            ``input_divisor``), the weights the int8 graph holds.
    """
    quantize = quantize or _identity
    ops = keras.ops
    inputs = ops.divide(inputs, input_divisor) if input_divisor != 1.0 else inputs
    x = quantize("concat", ops.concatenate([inputs, h], axis=-1))
    weights = ops.concatenate([ops.multiply(kernel, input_divisor), recurrent_kernel], axis=0)
    if quantize_weights is not None:
        weights = quantize_weights(weights)
    z = ops.matmul(x, weights)
    if bias is not None:
        z = z + bias
    if gate_clip is not None:
        z = ops.clip(z, -gate_clip, gate_clip)
    z = quantize("gates", z)
    i, f, g, o = ops.split(z, 4, axis=-1)
    i = quantize("sigmoid", ops.sigmoid(i))
    f = quantize("sigmoid", ops.sigmoid(f))
    o = quantize("sigmoid", ops.sigmoid(o))
    g = quantize("tanh", ops.tanh(g))
    c_new = (quantize("forget_times_cell", f * c)
             + quantize("input_times_candidate", i * g))
    if cell_clip is not None:
        c_new = ops.clip(c_new, -cell_clip, cell_clip)
    c_new = quantize("cell", c_new)
    h_new = quantize("hidden", o * quantize("tanh_cell", ops.tanh(c_new)))
    return h_new, c_new

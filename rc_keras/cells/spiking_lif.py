"""SpikingLIFCell: a LIF neuron with a learned leak and multi-bit outputs."""

import keras
import tensorflow as tf


def quantize_spikes(potential, output_bits):
    """Multi-bit spike output of a membrane potential, with a surrogate gradient.

    Forward: ``s = clip(floor(L * v), 0, L) / L`` with ``L = 2**output_bits - 1``, i.e.
    ``L + 1`` output levels ``{0, 1/L, ..., 1}`` (``output_bits=1``: binary spikes, a
    spike wherever ``v >= 1``).

    Backward (surrogate): ``ds/dv = 1 if 0 <= v <= 1 else 0``, a box of height 1 over
    the quantizer's range. It is the derivative of ``clip(v, 0, 1)``, the line the
    staircase follows: with ``L`` levels the staircase never departs from that line by
    more than ``1/L``, which is why multi-bit outputs narrow the gap between the
    forward function and the gradient used to train it (Ponghiran & Roy, 2021).

    Only standard TensorFlow ops run forward (Floor, Minimum, Maximum, Mul), so a step
    that contains the cell converts to TFLite; the custom gradient matters to training
    only.

    Args:
        potential: membrane potential ``v``, a float tensor.
        output_bits: bits of the output, an int >= 1.

    Returns:
        A tensor like ``potential`` holding the quantized outputs.
    """
    levels = float(2 ** int(output_bits) - 1)

    @tf.custom_gradient
    def _quantize(v):
        s = tf.clip_by_value(tf.floor(v * levels), 0.0, levels) / levels

        def grad(upstream):
            inside = tf.logical_and(v >= 0.0, v <= 1.0)
            return upstream * tf.cast(inside, upstream.dtype)

        return s, grad

    return _quantize(potential)


RESETS = ("subtract", "none")


@keras.saving.register_keras_serializable(package="rc_keras")
class SpikingLIFCell(keras.layers.Layer):
    """A spiking LIF cell with a learned, input-dependent leak and multi-bit outputs.

    After "Spiking Neural Networks with Improved Inherent Recurrence Dynamics for
    Sequential Learning" (Ponghiran & Roy, AAAI 2022, arXiv:2109.01905). Per step, with
    input ``x_t``, membrane potential ``u_{t-1}`` and previous output ``s_{t-1}``:

    ```
    f_t = sigmoid(W_f x_t + U_f s_{t-1} + b_f)      # leak (forget) gate, in (0, 1)
    c_t = W_c x_t + U_c s_{t-1} + b_c               # input current
    v_t = f_t * u_{t-1} + (1 - f_t) * c_t           # leaky integration, learned leak
    s_t = clip(floor(L * v_t), 0, L) / L            # output, L = 2**output_bits - 1
    u_t = v_t - stop_gradient(s_t)                  # soft reset: subtract what fired
    ```

    With ``reset="none"`` the last line is ``u_t = v_t``.

    The firing threshold is 1 (its scale is absorbed by the weights). Choices where the
    paper leaves room:

    - The leak gate mixes the old potential with the input current as a convex
      combination (as the update gate of a GRU or Li-GRU), so the potential stays in
      the range of the currents; ``f_t`` near 1 keeps the potential, and its gradient,
      unchanged over many steps. Its bias starts at ``forget_bias`` (1.0, as Keras'
      ``unit_forget_bias``) so that an untrained cell already remembers.
    - The recurrent input is the previous *output* ``s_{t-1}``, not the potential: on an
      event-driven device a zero output skips its column of ``U`` (see
      `rc_keras.opcount`), and a binary output turns the products into additions.
    - The reset is excluded from the gradient (Zenke & Vogels, 2021). With a
      straight-through surrogate it must be: ``d(v - s)/dv`` would be ``1 - 1 = 0``
      inside the quantizer's range, cutting the potential's memory path.
    - The reset is optional (``reset="none"``). Subtracting what fired turns a neuron
      into a rate coder of its recent input current: a potential that holds a value
      drains as it fires, so the value cannot outlast the leak's time constant. Tasks
      whose answer is read long after the evidence (a keyword followed by half a
      second of silence) need the potential itself to hold it; there, measured in
      ``benchmarks/bench_spiking.py --task keywords``, the cell with the reset stays at
      the majority class while the cell without it trains like a GRU. Without the
      reset the potential still leaks through ``f_t`` and the outputs stay quantized,
      so the recurrence remains event-driven.
    - The surrogate gradient is a box of height 1 on ``[0, 1]`` (see
      `quantize_spikes`).

    Two weight sets (leak gate and current) give ``2 * (n*u + u*u + u)`` parameters for
    ``n`` inputs and ``u`` units, half those of an LSTM of the same width.

    States: ``[u, s]``, the membrane potential and the previous output, both
    ``(batch, units)``. Output: ``s_t``.

    Args:
        units: number of neurons.
        output_bits: bits per output (``2**output_bits - 1`` non-zero levels);
            1 gives binary spikes.
        forget_bias: initial bias of the leak gate.
        reset: ``"subtract"`` (soft reset by what fired) or ``"none"`` (the potential
            only leaks); see above for when to pick which.
        kernel_initializer: initializer of the input weights ``[W_f, W_c]``.
        recurrent_initializer: initializer of the recurrent weights ``[U_f, U_c]``.
        bias_initializer: initializer of the current's bias ``b_c``.
        kernel_regularizer: optional regularizer of the input weights.
        recurrent_regularizer: optional regularizer of the recurrent weights.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    ```python
    cell = rc_keras.cells.SpikingLIFCell(64, output_bits=2)
    model = rc_keras.RCModel(cell, keras.layers.Dense(2, activation="softmax"))
    outputs = keras.layers.RNN(cell, return_sequences=True)(x)   # also a plain RNN
    ```
    """

    def __init__(self, units, output_bits=2, forget_bias=1.0, reset="subtract",
                 kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) != units or units < 1:
            raise ValueError(f"`units` must be a positive integer; received {units!r}.")
        if int(output_bits) != output_bits or not 1 <= output_bits <= 16:
            raise ValueError(f"`output_bits` must be an integer in [1, 16]; received {output_bits!r}.")
        if reset not in RESETS:
            raise ValueError(f"`reset` must be one of {RESETS}; received {reset!r}.")
        self.units = int(units)
        self.reset = reset
        self.output_bits = int(output_bits)
        self.forget_bias = float(forget_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.state_size = [self.units, self.units]
        # Names of the states in the exported step model's sidecar (rc_keras.export).
        self.state_roles = ("u", "s")
        self.output_size = self.units

    @property
    def levels(self):
        """Number of non-zero output levels, ``2**output_bits - 1``."""
        return 2 ** self.output_bits - 1

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        self.kernel = self.add_weight(
            shape=(input_dim, 2 * self.units), name="kernel",
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 2 * self.units), name="recurrent_kernel",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer)
        units, forget_bias, bias_initializer = self.units, self.forget_bias, self.bias_initializer

        def bias_init(shape, dtype=None):
            return keras.ops.concatenate([
                keras.ops.full((units,), forget_bias, dtype=dtype),
                bias_initializer((units,), dtype=dtype)])

        self.bias = self.add_weight(shape=(2 * self.units,), name="bias", initializer=bias_init)
        self.built = True

    def call(self, inputs, states, training=False):
        potential, previous = states[0], states[1]
        z = (tf.matmul(inputs, self.kernel) + tf.matmul(previous, self.recurrent_kernel)
             + self.bias)
        leak = tf.sigmoid(z[:, :self.units])
        current = z[:, self.units:]
        # f * u + (1 - f) * c with one multiplication.
        potential = current + leak * (potential - current)
        spikes = quantize_spikes(potential, self.output_bits)
        if self.reset == "subtract":
            potential = potential - tf.stop_gradient(spikes)
        return spikes, [potential, spikes]

    def get_initial_state(self, batch_size=None):
        return [keras.ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
                for _ in range(2)]

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "output_bits": self.output_bits,
            "forget_bias": self.forget_bias,
            "reset": self.reset,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
        })
        return config

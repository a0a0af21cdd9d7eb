"""ConvLSTM2DCell: a 2D convolutional LSTM cell that runs one step at a time."""

import keras
import tensorflow as tf

_PADDINGS = ("same", "valid")


def _pair(value, name):
    """Returns ``value`` as a pair of positive ints (an int means both sides)."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"`{name}` must be a positive int or a pair of positive ints; "
                         f"received {value!r}.")
    return pair


def _conv_length(length, kernel, stride, padding):
    if padding == "same":
        return -(-length // stride)
    return -(-(length - kernel + 1) // stride)


@keras.saving.register_keras_serializable(package="rc_keras")
class ConvLSTM2DCell(keras.layers.Layer):
    """A 2D convolutional LSTM cell (Shi et al., 2015), channels last.

    Keras 3 has ``keras.layers.ConvLSTM2D``, a whole-sequence layer, but no public cell:
    `rc_keras.RCModel` must run one step at a time to halt at the first spike, so it
    needs the cell. Per step, with input frame ``x_t`` (H, W, C) and states
    ``h, c`` (H', W', filters), and ``*`` a 2D convolution:

    ```
    [i, f, g, o] = split(W * x_t + b + U * h_{t-1})        # 4 * filters channels
    c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g)
    h_t = sigmoid(o) tanh(c_t)
    ```

    The equations, the gate order (i, f, c, o) and the weight layout (``kernel``
    (kh, kw, C, 4 * filters), ``recurrent_kernel`` (kh, kw, filters, 4 * filters),
    ``bias`` (4 * filters,)) are those of ``keras.layers.ConvLSTM2D``, so weights copy
    across. The input convolution uses ``padding`` and ``strides``; the recurrent one is
    always "same" with stride 1, as in Keras. The four gates run as one convolution of
    the input and one of the state (Keras runs eight smaller ones; the sums are equal).

    ``state_size`` is ``[TensorShape((H', W', filters))] * 2`` once the cell is built
    (``H'``, ``W'`` unknown before), and ``output_size`` the tuple ``(H', W', filters)``:
    a head on top must flatten or pool the feature maps (``keras.layers.Flatten()``).

    Args:
        filters: number of output feature maps (the paper's 784-20-10 network has 20).
        kernel_size: int or pair, the convolution window of both convolutions.
        strides: int or pair, strides of the input convolution.
        padding: "same" (default: the feature maps keep the frame size) or "valid".
        activation: activation of the candidate and the output (tanh).
        recurrent_activation: activation of the gates (sigmoid).
        use_bias: whether the gates have a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers.
        unit_forget_bias: add 1 to the forget-gate bias at initialization (as Keras).
        **kwargs: passed to ``keras.layers.Layer``.

    Example:

    ```python
    model = rc_keras.RCModel(
        ConvLSTM2DCell(20, 3),
        keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]))
    model.compile("adam", rc_keras.ConfidencePenalty(beta=0.1))
    model.fit(frames, labels)          # frames: (batch, time, 28, 28, 1)
    ```
    """

    def __init__(self, filters, kernel_size=3, strides=1, padding="same", activation="tanh",
                 recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"`filters` must be a positive int; received {filters!r}.")
        padding = str(padding).lower()
        if padding not in _PADDINGS:
            raise ValueError(f"`padding` must be one of {list(_PADDINGS)}; received {padding!r}.")
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.output_spatial = None

    # ------------------------------------------------------------------ sizes
    @property
    def state_size(self):
        """``[h, c]`` shapes without the batch: two ``TensorShape((H', W', filters))``."""
        spatial = self.output_spatial or (None, None)
        shape = tf.TensorShape(tuple(spatial) + (self.filters,))
        return [shape, shape]

    @property
    def output_size(self):
        """``(H', W', filters)``, the shape of one step's output without the batch."""
        spatial = self.output_spatial or (None, None)
        return tuple(spatial) + (self.filters,)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
            raise ValueError("ConvLSTM2DCell expects step inputs of shape (batch, height, width, "
                             f"channels) with known height, width and channels; received "
                             f"{input_shape}.")
        height, width, channels = (int(d) for d in input_shape[1:])
        self.output_spatial = (
            _conv_length(height, self.kernel_size[0], self.strides[0], self.padding),
            _conv_length(width, self.kernel_size[1], self.strides[1], self.padding))
        if min(self.output_spatial) < 1:
            raise ValueError(f"`kernel_size` {self.kernel_size} is larger than the input frame "
                             f"{(height, width)} with padding='valid'.")
        gates = 4 * self.filters
        self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (channels, gates),
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=self.kernel_size + (self.filters, gates),
            initializer=self.recurrent_initializer)
        if self.use_bias:
            bias_initializer = self.bias_initializer
            if self.unit_forget_bias:
                filters, base = self.filters, self.bias_initializer

                def bias_initializer(_, *args, **kwargs):
                    return keras.ops.concatenate([
                        base((filters,), *args, **kwargs),
                        keras.initializers.Ones()((filters,), *args, **kwargs),
                        base((2 * filters,), *args, **kwargs)])
            self.bias = self.add_weight(name="bias", shape=(gates,), initializer=bias_initializer)
        else:
            self.bias = None
        self.built = True

    def get_initial_state(self, batch_size=None):
        """Zero ``[h, c]`` of shape (batch_size, H', W', filters)."""
        shape = (batch_size,) + tuple(self.output_spatial) + (self.filters,)
        return [keras.ops.zeros(shape, dtype=self.compute_dtype),
                keras.ops.zeros(shape, dtype=self.compute_dtype)]

    # ------------------------------------------------------------------ step
    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        z = keras.ops.conv(inputs, self.kernel, strides=self.strides, padding=self.padding)
        z = z + keras.ops.conv(h_prev, self.recurrent_kernel, strides=1, padding="same")
        if self.bias is not None:
            z = z + self.bias
        z_i, z_f, z_c, z_o = keras.ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_prev + i * self.activation(z_c)
        h = self.recurrent_activation(z_o) * self.activation(c)
        return h, [h, c]

    def compute_output_shape(self, input_shape, states_shape=None):
        shape = (input_shape[0],) + tuple(self.output_size)
        return shape, [shape, shape]

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            activation=keras.activations.serialize(self.activation),
            recurrent_activation=keras.activations.serialize(self.recurrent_activation),
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            recurrent_initializer=keras.initializers.serialize(self.recurrent_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            unit_forget_bias=self.unit_forget_bias,
        )
        return config

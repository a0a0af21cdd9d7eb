"""QuantizedDense: a Dense layer whose forward pass rounds as its int8 export will."""

import keras

from rc_keras import validation
from rc_keras.quantization import fake_quant

# Activations whose int8 output range TFLite fixes (applied after the product's range).
_FIXED_OUTPUT = {"softmax": fake_quant.SOFTMAX_RANGE, "sigmoid": fake_quant.SIGMOID_RANGE,
                 "tanh": fake_quant.TANH_RANGE}
# Activations TFLite fuses into FULLY_CONNECTED: the range is that of the output.
_FUSED = ("linear", "relu")


@keras.saving.register_keras_serializable(package="rc_keras")
class QuantizedDense(keras.layers.Dense):
    """`keras.layers.Dense` trained and run on the int8 grid of its TFLite export.

    Weights are fake-quantized per output channel; the product (for relu and linear
    layers, the activation's output, which TFLite fuses) to ``output_range``; softmax,
    sigmoid and tanh outputs to the fixed ranges of TFLite's int8 kernels.

    Args:
        units: as `keras.layers.Dense`.
        output_range: (low, high) of the product (after relu for relu layers), from
            calibration.
        **kwargs: other `keras.layers.Dense` arguments; the activation must be one of
            linear, relu, softmax, sigmoid, tanh.
    """

    def __init__(self, units, output_range=(-1.0, 1.0), **kwargs):
        super().__init__(units, **kwargs)
        name = getattr(self.activation, "__name__", "")
        if name not in _FUSED and name not in _FIXED_OUTPUT:
            raise ValueError(f"QuantizedDense supports the activations "
                             f"{sorted(_FUSED + tuple(_FIXED_OUTPUT))}; received {name!r}.")
        low, high = validation.check_range(output_range, "output_range", strict=True)
        self.output_range = (low, high)
        self._activation_name = name

    def call(self, inputs, training=None):
        outputs = keras.ops.matmul(inputs, fake_quant.fake_quant_weights(self.kernel))
        if self.use_bias:
            outputs = outputs + self.bias
        if self._activation_name in _FUSED:
            return fake_quant.fake_quant(self.activation(outputs), self.output_range)
        outputs = fake_quant.fake_quant(outputs, self.output_range)
        return fake_quant.fake_quant(self.activation(outputs),
                                     _FIXED_OUTPUT[self._activation_name])

    def get_config(self):
        config = super().get_config()
        config["output_range"] = list(self.output_range)
        return config

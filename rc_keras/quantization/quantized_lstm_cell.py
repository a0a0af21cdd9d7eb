"""QuantizedLSTMCell: an LSTMCell whose forward pass rounds as its int8 export will."""

import keras

from rc_keras import validation
from rc_keras.quantization import fake_quant, int8_lstm

# Fixed int8 ranges of the step's tensors (see `rc_keras.quantization.int8_lstm`): the
# concatenated [frame / divisor, h] and h within [-1, 1], gates and cell state within
# the clips, i * g within [-1, 1], f * c within the cell clip.
_UNIT_RANGE = fake_quant.symmetric_range(1.0)
# The cell state's step is cell_clip / 128 (1/16 for 8), not 2 * cell_clip / 255: then
# no requantization in the c update has a power-of-two ratio (f * c: 255/65536, i * g
# into c: 32/255, f * c into c: 256/255), so no product lands exactly halfway between
# two int8 values. Halfway cases are where kernels round differently (TFLM rounds
# them away from zero, XNNPACK to even, FakeQuant up); with an 8 * 2/255 grid one i * g
# value in eight was such a case.
_CELL_STEP_FACTOR = 255.0 / 256.0


@keras.saving.register_keras_serializable(package="rc_keras")
class QuantizedLSTMCell(keras.layers.LSTMCell):
    """`keras.layers.LSTMCell` trained and run on the int8 grid of its TFLite export.

    Every tensor of the step is fake-quantized to the int8 range it gets in the
    exported step model: the frame to ``input_range``, weights per output channel,
    gate pre-activations to ``[-gate_clip, gate_clip]``, the cell state to
    ``[-cell_clip, cell_clip]``, sigmoid and tanh outputs to the fixed ranges of
    TFLite's int8 kernels. The int8 model then computes what this cell computes, so
    its exits agree with the Keras model's; fine-tuning with the cell in place
    (quantization-aware training) lets the network adapt to the rounding. Build it
    with `rc_keras.quantization.quantize_aware`.

    Args:
        units: as `keras.layers.LSTMCell`.
        input_range: (low, high) of the frames, from calibration.
        input_divisor: frames are divided by it before they are concatenated with h
            (the largest |frame value|, at least 1).
        gate_clip: bound on gate pre-activations.
        cell_clip: bound on the cell state.
        **kwargs: other `keras.layers.LSTMCell` arguments (activations must stay the
            defaults, tanh and sigmoid; dropout is not applied: the int8 step has none).
    """

    def __init__(self, units, input_range=(-1.0, 1.0), input_divisor=1.0,
                 gate_clip=int8_lstm.INT8_GATE_CLIP, cell_clip=8.0, **kwargs):
        super().__init__(units, **kwargs)
        names = (getattr(self.activation, "__name__", ""),
                 getattr(self.recurrent_activation, "__name__", ""))
        if names != ("tanh", "sigmoid"):
            raise ValueError(f"QuantizedLSTMCell needs the default activations (tanh, sigmoid); "
                             f"received {names}.")
        low, high = validation.check_range(input_range, "input_range", strict=True)
        for name, value in (("input_divisor", input_divisor), ("gate_clip", gate_clip),
                            ("cell_clip", cell_clip)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number; received {value!r}.")
        self.input_range = (low, high)
        self.input_divisor = float(input_divisor)
        self.gate_clip = float(gate_clip)
        self.cell_clip = float(cell_clip)

    def _ranges(self):
        return {"concat": _UNIT_RANGE, "gates": fake_quant.symmetric_range(self.gate_clip),
                "sigmoid": fake_quant.SIGMOID_RANGE, "tanh": fake_quant.TANH_RANGE,
                "input_times_candidate": _UNIT_RANGE,
                "forget_times_cell": fake_quant.symmetric_range(self.cell_clip),
                "cell": fake_quant.symmetric_range(self.cell_clip * _CELL_STEP_FACTOR),
                "tanh_cell": fake_quant.TANH_RANGE, "hidden": _UNIT_RANGE}

    def call(self, inputs, states, training=False):
        h, c = states
        ranges = self._ranges()
        inputs = fake_quant.fake_quant(inputs, self.input_range)
        h = fake_quant.fake_quant(h, ranges["hidden"])
        c = fake_quant.fake_quant(c, ranges["cell"])
        h_new, c_new = int8_lstm.lstm_step(
            self.kernel, self.recurrent_kernel, self.bias if self.use_bias else None, inputs, h, c,
            input_divisor=self.input_divisor, gate_clip=self.gate_clip, cell_clip=self.cell_clip,
            quantize=lambda name, tensor: fake_quant.fake_quant(tensor, ranges[name]),
            quantize_weights=fake_quant.fake_quant_weights)
        return h_new, [h_new, c_new]

    def get_config(self):
        config = super().get_config()
        config.update({"input_range": list(self.input_range), "input_divisor": self.input_divisor,
                       "gate_clip": self.gate_clip, "cell_clip": self.cell_clip})
        return config

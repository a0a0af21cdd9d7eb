"""quantize_aware: the int8-exact twin of a trained RCModel, for fine-tuning and export."""

import keras
import numpy as np

from rc_keras.quantization import int8_lstm
from rc_keras.quantization.quantized_dense import QuantizedDense
from rc_keras.quantization.quantized_lstm_cell import QuantizedLSTMCell


def _head_layers(head):
    return list(head.layers) if isinstance(head, keras.Sequential) else [head]


def _dense_layers(head):
    layers = _head_layers(head)
    if not layers or not all(type(layer) is keras.layers.Dense for layer in layers):
        raise ValueError("quantize_aware needs a head made of keras.layers.Dense layers (a Dense "
                         f"or a Sequential of them); received {head!r} with layers "
                         f"{[type(layer).__name__ for layer in layers]}.")
    return layers


def _range(values):
    values = np.asarray(values)
    low, high = float(values.min()), float(values.max())
    return (min(low, 0.0), max(high, 0.0)) if high > low else (low - 1.0, high + 1.0)


def is_quantization_aware(model):
    """True when ``model`` holds layers built by `quantize_aware` (FakeQuant inside)."""
    layers = [getattr(model, "cell", None)] + _head_layers(getattr(model, "head", None))
    return any(isinstance(layer, (QuantizedLSTMCell, QuantizedDense)) for layer in layers)


def quantize_aware(model, calibration, gate_clip=int8_lstm.INT8_GATE_CLIP, cell_clip=8.0,
                   max_samples=2000):
    """A copy of ``model`` whose forward pass is its int8 step model's arithmetic.

    The LSTMCell becomes a `QuantizedLSTMCell` and each Dense layer of the head a
    `QuantizedDense`, with the trained weights and int8 ranges calibrated like the int8
    export calibrates them (min and max over ``max_samples`` (frame, state) samples of
    the model's trajectories over ``calibration``). Use it as is (its exits are the int8
    model's) or compile and fine-tune it (quantization-aware training), then export it
    with `rc_keras.export.export_tflite_step(..., "int8")`: the converter takes the
    ranges from the model's FakeQuant ops, and the int8 model agrees with this Keras
    model where a post-training-quantized one drifts from the float model.

    Args:
        model: a built `rc_keras.RCModel` with one `keras.layers.LSTMCell` (default
            activations) and a head of Dense layers.
        calibration: (n, time, *features) sequences, as for the int8 export.
        gate_clip: bound on the LSTM gate pre-activations.
        cell_clip: bound on the LSTM cell state.
        max_samples: calibration (frame, state) samples.

    Returns:
        A new, uncompiled `rc_keras.RCModel` (same threshold, readout and modes).
    """
    from rc_keras.export import step_model   # the export package imports this one
    from rc_keras.model import RCModel

    step_model.check_model(model)
    if not int8_lstm.supports_lstm_step(model.cell):
        raise ValueError("quantize_aware supports a single keras.layers.LSTMCell with its default "
                         f"activations; the model's cell is {type(model.cell).__name__}.")
    layers = _dense_layers(model.head)
    sequences = step_model.check_sequences(calibration, model, "calibration")
    samples = step_model.state_trajectories(model, sequences, max_samples,
                                            state_clip={"state_1": cell_clip},
                                            gate_clip=gate_clip)
    frames = np.concatenate([s["frame"] for s in samples])
    activations = np.concatenate([s["state_0"] for s in samples])
    head = []
    for layer in layers:
        product = keras.ops.convert_to_numpy(keras.ops.matmul(activations, layer.kernel))
        if layer.use_bias:
            product = product + keras.ops.convert_to_numpy(layer.bias)
        name = getattr(layer.activation, "__name__", "")
        activations = keras.ops.convert_to_numpy(layer.activation(product))
        output_range = _range(activations if name in ("linear", "relu") else product)
        config = layer.get_config()
        head.append(QuantizedDense(**{**config, "output_range": output_range}))
    cell_config = model.cell.get_config()
    cell = QuantizedLSTMCell(**cell_config, input_range=_range(frames),
                             input_divisor=step_model.input_divisor(sequences),
                             gate_clip=gate_clip, cell_clip=cell_clip)
    twin = RCModel(cell, keras.Sequential(head, name=f"{model.head.name}_int8"),
                   threshold=model.threshold, readout=model.readout,
                   training_mode=model.training_mode, inference_mode=model.inference_mode,
                   mask_value=model.mask_value, name=f"{model.name}_int8")
    twin(sequences[:1])
    twin.cell.set_weights(model.cell.get_weights())
    for target, source in zip(head, layers):
        target.set_weights(source.get_weights())
    return twin

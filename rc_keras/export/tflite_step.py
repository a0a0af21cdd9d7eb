"""Per-frame streaming TFLite export (float32, full int8 or 16x8) with a JSON sidecar."""

import contextlib
import io
import json
import math
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from rc_keras import validation
from rc_keras.export import _flatbuffer, step_model, versioning
from rc_keras.quantization import fake_quant, is_quantization_aware

QUANTIZATIONS = ("float32", "int8", "int16x8")
# Integer range of each quantized mode's activations (inputs, outputs, states).
_QUANT_BITS = {"int8": (-128, 127), "int16x8": (-32768, 32767)}

# Ops whose int8 kernels take any input scale and requantize to their output's own
# scale: a state tensor that only meets such ops may have its quantization rewritten.
_FREE_INPUT_OPS = {"FULLY_CONNECTED", "ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D",
                   "TANH", "LOGISTIC", "BATCH_MATMUL", "SQUARED_DIFFERENCE", "QUANTIZE",
                   "DEQUANTIZE"}
_FREE_OUTPUT_OPS = {"FULLY_CONNECTED", "ADD", "SUB", "MUL", "CONV_2D", "DEPTHWISE_CONV_2D",
                    "BATCH_MATMUL", "SQUARED_DIFFERENCE", "QUANTIZE"}


def sidecar_path(path):
    """``step_int8.tflite`` -> ``step_int8.json``."""
    return pathlib.Path(path).with_suffix(".json")


def _convert(step, quantization, samples):
    converter = tf.lite.TFLiteConverter.from_keras_model(step)
    if quantization in _QUANT_BITS:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: iter(samples)
        if quantization == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = tf.int8
        else:  # int16 activations, int8 weights (TFLite's 16x8 mode; symmetric int16)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            io_type = tf.int16
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    # The converter saves a temporary SavedModel and prints about it; keep stdout clean.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytearray(converter.convert())


def _range(scale, zero_point, bits=(-128, 127)):
    return (bits[0] - zero_point) * scale, (bits[1] - zero_point) * scale


def _params_for(low, high, bits=(-128, 127)):
    low, high = min(low, 0.0), max(high, 0.0)
    if bits[0] < -128:  # int16 activations are symmetric (zero point 0)
        return float(np.float32(max(-low, high) / bits[1] or 1.0)), 0
    scale = (high - low) / 255.0 or 1.0
    zero_point = int(np.clip(round(-128 - low / scale), -128, 127))
    return float(np.float32(scale)), zero_point


def _tie_state_quantization(data, info, pairs, bits=(-128, 127)):
    """Makes each state output share its state input's int8 parameters.

    Then the int8 state a step returns is fed straight back, with no requantization
    on the host or the board. Where both sides requantize, both get the union of their
    calibrated ranges; where one side has fixed parameters (a TANH output), the other
    side takes them. Returns per state "direct" or "requantize" (nothing safe to do).
    """
    consumers = {}
    producers = {}
    for name, inputs, outputs in info["ops"]:
        for t in inputs:
            consumers.setdefault(t, []).append(name)
        for t in outputs:
            producers[t] = name
    feedback = []
    for in_t, out_t in pairs:
        a, b = info["tensors"][in_t], info["tensors"][out_t]
        if (a["scale"], a["zero_point"]) == (b["scale"], b["zero_point"]):
            feedback.append("direct")
            continue
        input_free = all(op in _FREE_INPUT_OPS for op in consumers.get(in_t, []))
        output_free = (producers.get(out_t) in _FREE_OUTPUT_OPS
                       and all(op in _FREE_INPUT_OPS for op in consumers.get(out_t, [])))
        if input_free and output_free:
            lows, highs = zip(_range(a["scale"], a["zero_point"], bits),
                              _range(b["scale"], b["zero_point"], bits))
            params = _params_for(min(lows), max(highs), bits)
            targets = [in_t, out_t]
        elif input_free:
            params, targets = (b["scale"], b["zero_point"]), [in_t]
        elif output_free:
            params, targets = (a["scale"], a["zero_point"]), [out_t]
        else:
            feedback.append("requantize")
            continue
        for t in targets:
            _flatbuffer.set_quantization(data, t, *params)
            info["tensors"][t]["scale"], info["tensors"][t]["zero_point"] = params
        feedback.append("direct")
    return feedback


def quantized_threshold(threshold, scale, zero_point, readout="softmax", bits=(-128, 127)):
    """Integer output values equivalent to ``p >= theta`` (and ``p <= 1 - theta``).

    Returns:
        (q_high, q_low): spike when ``q >= q_high`` (softmax: the largest output), or for
        a sigmoid readout also when ``q <= q_low``. ``q_high`` is 128 (never reached) when
        theta lies above the largest representable output; ``q_low`` is None for softmax.
        ``bits`` is the integer range: (-128, 127) for int8, (-32768, 32767) for int16x8
        (then "never reached" is 32768).
    """
    theta = validation.check_threshold(threshold)
    scale = float(scale)

    def value(q):
        return (q - zero_point) * scale

    high = int(math.ceil(theta / scale)) + zero_point
    while value(high - 1) >= theta:
        high -= 1
    while value(high) < theta:
        high += 1
    high = int(min(max(high, bits[0]), bits[1] + 1))
    low = None
    if readout == "sigmoid":
        low = int(math.floor((1.0 - theta) / scale)) + zero_point
        while value(low + 1) <= 1.0 - theta:
            low += 1
        while value(low) > 1.0 - theta:
            low -= 1
        low = int(min(max(low, bits[0] - 1), bits[1]))
    return high, low


def _tensor_entry(name, position, tensor):
    entry = {"name": name, "position": position, "shape": tensor["shape"], "dtype": tensor["dtype"]}
    if tensor["scale"] is not None and tensor["dtype"] in ("int8", "int16"):
        entry.update(scale=tensor["scale"], zero_point=tensor["zero_point"])
    return entry


def build_sidecar(model, data, quantization, class_names=None, feature_params=None,
                  threshold=None, feedback=None, model_file=None, state_clip=None,
                  gate_clip=None):
    """The JSON sidecar of a step model (see `export_tflite_step`)."""
    info = _flatbuffer.describe(data)
    signature = info["signature"]
    if signature is None:
        raise ValueError("the converted model has no signature; cannot map its inputs.")
    layout = step_model.state_layout(model)
    theta = validation.check_threshold_values(model.threshold if threshold is None else threshold,
                                              model.readout, model.num_outputs)
    if isinstance(theta, tuple):  # a per-step schedule: a JSON list, one value per step
        theta = list(theta)

    def position(kind, key):
        return info[kind].index(signature[kind][key])

    frame = _tensor_entry("frame", position("inputs", "frame"),
                          info["tensors"][signature["inputs"]["frame"]])
    probs = _tensor_entry("probs", position("outputs", "probs"),
                          info["tensors"][signature["outputs"]["probs"]])
    states = []
    for k, spec in enumerate(layout):
        name = spec["name"]
        entry = dict(spec)
        entry["input_position"] = position("inputs", name)
        entry["output_position"] = position("outputs", name)
        tensor_in = info["tensors"][signature["inputs"][name]]
        tensor_out = info["tensors"][signature["outputs"][name]]
        entry["dtype"] = tensor_in["dtype"]
        entry["clip"] = (state_clip or {}).get(name)
        if quantization in _QUANT_BITS:
            entry.update(scale=tensor_in["scale"], zero_point=tensor_in["zero_point"],
                         output_scale=tensor_out["scale"], output_zero_point=tensor_out["zero_point"],
                         initial_value_q=tensor_in["zero_point"],
                         feedback=(feedback or ["direct"] * len(layout))[k])
        else:
            entry.update(initial_value=0.0, feedback="direct")
        states.append(entry)
    sidecar = {
        "format_version": step_model.FORMAT_VERSION,
        "kind": "rc_keras.step",
        "rc_keras_version": versioning.rc_keras_version(),
        "model_file": model_file,
        "quantization": quantization,
        "readout": model.readout,
        "num_outputs": int(model.num_outputs),
        "num_classes": int(model.num_classes),
        "class_names": step_model.check_class_names(class_names, model),
        "feature_shape": [int(d) for d in model.feature_shape],
        "feature_params": step_model.to_plain(feature_params),
        "threshold": theta,
        "inputs": {"frame": frame},
        "outputs": {"probs": probs},
        "states": states,
        "gate_clip": gate_clip,
        "ops": info["op_names"],
        "model_bytes": len(data),
    }
    if quantization in _QUANT_BITS:
        bits = _QUANT_BITS[quantization]
        pairs = [quantized_threshold(value, probs["scale"], probs["zero_point"], model.readout,
                                     bits) for value in np.atleast_1d(theta).tolist()]
        highs, lows = [p[0] for p in pairs], [p[1] for p in pairs]
        # A schedule gets one quantized value per step, as its float thresholds.
        scheduled = isinstance(theta, list)
        sidecar["threshold_q"] = highs if scheduled else highs[0]
        sidecar["threshold_q_low"] = lows if scheduled else lows[0]
        sidecar["threshold_reachable"] = all(high <= bits[1] for high in highs)
    return sidecar


def export_tflite_step(model, path, quantization="float32", calibration=None, class_names=None,
                       feature_params=None, threshold=None, max_calibration_samples=2000,
                       state_clip="auto", gate_clip="auto"):
    """Writes the per-frame streaming TFLite model and its JSON sidecar.

    The model maps ``(frame, state_0, ...)`` to ``(probs, state_0, ...)`` with batch 1:
    states are explicit inputs and outputs (``[h, c]`` for an LSTMCell, ``[h]`` for
    GRUCell / SimpleRNNCell, every cell's states in order for stacked cells), so the
    early-exit loop runs on the host (`run_tflite_stream`) or in firmware.

    With ``quantization="int8"`` the model is full-integer with int8 inputs and outputs,
    calibrated on state trajectories from running ``model`` over ``calibration``; each
    state output shares its state input's scale and zero point so it can be fed back
    unchanged (the sidecar's ``feedback`` says "direct"). ``quantization="int16x8"`` is
    TFLite's 16x8 mode (int16 activations, inputs, outputs and states; int8 weights):
    about 1.5x the int8 size, much closer to float on error-sensitive recurrent models.

    In int8, LSTM cell states are clipped to ``[-8, 8]`` by default (``state_clip="auto"``,
    `rc_keras.export.step_model.INT8_CELL_CLIP`): tanh(c) is saturated there, and a
    per-tensor int8 scale that spans the largest |c| a trained LSTM reaches (~80) leaves
    the other units a handful of levels. The sidecar records each state's ``clip``.
    Plain LSTMCells are also written out op by op with their gate pre-activations
    clipped to ``[-8, 8]`` (``gate_clip="auto"``; `rc_keras.quantization.int8_lstm` says
    why): on the keyword network this took exit steps within +-1 frame of Keras from
    89.7% to 95.1% of clips. The sidecar records ``gate_clip``.

    The sidecar (same path, ``.json``) holds: ``format_version``, feature shape and
    parameters, class names, readout, threshold (float, and for int8 ``threshold_q``:
    spike when the largest int8 output >= it; sigmoid also ``threshold_q_low``), frame,
    probs and state quantization parameters and tensor positions, state layout, ops.

    Args:
        model: a built `rc_keras.RCModel`.
        path: the .tflite file to write.
        quantization: "float32", "int8" or "int16x8".
        calibration: (n, time, *features) sequences; required for int8 and int16x8.
        class_names: optional list of ``num_classes`` names.
        feature_params: optional dataclass or dict describing the front end.
        threshold: theta for the sidecar, or a per-step schedule (a list in the sidecar,
            with one quantized value per step in ``threshold_q``); defaults to
            ``model.threshold``.
        max_calibration_samples: calibration (frame, state) samples kept.
        state_clip: ``"auto"``, a positive bound for every LSTM cell state, a dict
            ``{state name: bound}`` or ``None`` (see
            `rc_keras.export.step_model.resolve_state_clip`).
        gate_clip: ``"auto"``, a positive bound on LSTM gate pre-activations, or None
            (see `rc_keras.export.step_model.resolve_gate_clip`).

    Returns:
        The sidecar dict (also written to disk).
    """
    step_model.check_model(model)
    validation.check_choice(quantization, QUANTIZATIONS, "quantization")
    if threshold is not None:
        validation.check_threshold_values(threshold)
    params = step_model.to_plain(feature_params)
    step_model.check_feature_params(params, model)
    step_model.check_class_names(class_names, model)
    aware = is_quantization_aware(model)
    if aware and quantization == "int16x8":
        raise ValueError("int16x8 export of a quantization-aware model (rc_keras.quantization."
                         "quantize_aware) is not supported: its FakeQuant ops fix 8-bit ranges. "
                         "Export the float model to int16x8, or this one to int8.")
    clips = step_model.resolve_state_clip(model, state_clip, quantization)
    gates = step_model.resolve_gate_clip(model, gate_clip, quantization)
    samples = None
    if quantization in _QUANT_BITS:
        if calibration is None:
            raise ValueError(f"{quantization} export needs `calibration` sequences (n, time, *features): the "
                             "int8 ranges come from the states the model visits on real inputs.")
        samples = step_model.state_trajectories(model, calibration, max_calibration_samples,
                                                state_clip=clips, gate_clip=gates)
    elif calibration is not None:
        step_model.check_sequences(calibration, model, "calibration")
    divisor = step_model.input_divisor(calibration) if gates is not None else 1.0
    # A quantization-aware model's float32 step rounds with float ops TFLM runs; its int8
    # step keeps the FakeQuant ops, whose ranges become the int8 scales.
    with fake_quant.rounding_ops(aware and quantization == "float32"):
        step = step_model.build_step_model(model, batch_size=1, state_clip=clips, gate_clip=gates,
                                           divisor=divisor)
        data = _convert(step, quantization, samples)
    feedback = None
    if quantization in _QUANT_BITS:
        info = _flatbuffer.describe(data)
        pairs = [(info["signature"]["inputs"][s["name"]], info["signature"]["outputs"][s["name"]])
                 for s in step_model.state_layout(model)]
        feedback = _tie_state_quantization(data, info, pairs, _QUANT_BITS[quantization])
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    sidecar = build_sidecar(model, data, quantization, class_names, params, threshold, feedback,
                            model_file=path.name, state_clip=clips, gate_clip=gates)
    if quantization in _QUANT_BITS and not sidecar["threshold_reachable"]:
        warnings.warn(f"threshold {sidecar['threshold']} is (at some step) above the largest "
                      f"{quantization} output value: the quantized model cannot spike there.")
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2))
    return sidecar


def load_sidecar(path):
    """Reads the sidecar of a step model (``path`` may be the .tflite or the .json)."""
    path = pathlib.Path(path)
    json_path = path if path.suffix == ".json" else sidecar_path(path)
    if not json_path.exists():
        raise ValueError(f"no sidecar {json_path} next to the step model: export it with "
                         "rc_keras.export.export_tflite_step.")
    return versioning.read_sidecar(json_path)

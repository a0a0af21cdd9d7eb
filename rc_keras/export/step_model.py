"""The per-frame step of an RCModel as a stand-alone Keras model, and its state layout.

Everything deployable is built from this step: ``(frame, *states) -> (probs, *new_states)``.
The early-exit loop stays outside (host or firmware), because TFLite graphs with a WHILE
op do not run in TFLM and their int8 conversion crashes (see FIELD-NOTES, Deployment).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rc_keras import validation
from rc_keras.quantization import int8_lstm

FORMAT_VERSION = 1

# |c| bound of LSTM cell states in int8 step models (``state_clip="auto"``). tanh(c) is
# within int8 rounding of +-1 beyond |c| = 3, yet trained LSTMs carry |c| up to ~80: a
# per-tensor int8 scale spanning that range (0.55 per level on the keyword network)
# rounds the states of every other unit away and exits drift. With |c| <= 8 the float
# network's exits are unchanged on 100% of the keyword test clips (99.2% of steps
# exact or +-1) and int8 gets 9x finer cell-state levels.
INT8_CELL_CLIP = 8.0


def check_model(model):
    """Raises ``ValueError`` unless ``model`` is a built RCModel-like model."""
    for attribute in ("cell", "head", "readout", "threshold"):
        if not hasattr(model, attribute):
            raise ValueError(f"export needs an rc_keras.RCModel; received {type(model).__name__} "
                             f"without `{attribute}`.")
    if not getattr(model, "built", False) or getattr(model, "feature_shape", None) is None:
        raise ValueError("the model is not built: call it on a batch of sequences, fit it, or load a "
                         "trained .keras file before exporting (its feature shape is unknown).")
    if any(d is None for d in model.feature_shape):
        raise ValueError(f"the model's feature shape {model.feature_shape} must be fully known "
                         "to export a per-frame step model.")
    validation.check_threshold_values(model.threshold, model.readout, model.num_outputs)


def _cell_list(cell):
    return list(getattr(cell, "cells", [cell]))


def _roles(cell, count):
    # A cell may name its states itself (SpikingLIFCell: potential "u", output "s").
    roles = list(getattr(cell, "state_roles", ()))
    if len(roles) == count:
        return roles
    name = type(cell).__name__
    if name == "LSTMCell" and count == 2:
        return ["h", "c"]
    if count == 1:
        return ["h"]
    return [f"s{j}" for j in range(count)]


def initial_state_structure(model):
    """The model's initial state structure for a batch of one (nested like the cell's)."""
    return model._initial_states(tf.zeros((1,) + tuple(model.feature_shape), model.compute_dtype))


def state_layout(model):
    """Describes each flat state tensor: name, shape (no batch), cell index, role.

    The order is ``tf.nest.flatten`` of the cell's states: ``[h, c]`` for an LSTMCell,
    ``[h]`` for GRUCell / SimpleRNNCell, each cell's states in turn for stacked cells.
    """
    structure = initial_state_structure(model)
    flat = tf.nest.flatten(structure)
    cells = _cell_list(model.cell)
    if len(cells) > 1:
        per_cell = [len(tf.nest.flatten(s)) for s in structure]
    else:
        per_cell = [len(flat)]
    layout = []
    index = 0
    for cell_index, (cell, count) in enumerate(zip(cells, per_cell)):
        for role in _roles(cell, count):
            layout.append({"name": f"state_{index}", "cell": cell_index,
                           "cell_type": type(cell).__name__, "role": role,
                           "shape": [int(d) for d in flat[index].shape[1:]]})
            index += 1
    return layout


def resolve_state_clip(model, state_clip, quantization="float32"):
    """``{state name: bound}`` of the states a step model clips to ``[-bound, bound]``.

    Args:
        model: a built `rc_keras.RCModel`.
        state_clip: ``"auto"`` (LSTM cell states ``c`` at `INT8_CELL_CLIP` for int8,
            nothing otherwise), a positive number (every ``c`` state at that bound),
            a dict ``{state name: bound}``, or ``None`` (no clipping).
        quantization: the export's quantization, for ``"auto"``.
    """
    layout = state_layout(model)
    cell_states = [s["name"] for s in layout if s["role"] == "c"]
    if state_clip is None:
        return {}
    if isinstance(state_clip, str):
        if state_clip != "auto":
            raise ValueError(f"`state_clip` must be 'auto', a positive number, a dict or None; "
                             f"received {state_clip!r}.")
        return dict.fromkeys(cell_states, INT8_CELL_CLIP) if quantization == "int8" else {}
    if isinstance(state_clip, dict):
        names = [s["name"] for s in layout]
        unknown = sorted(set(state_clip) - set(names))
        if unknown:
            raise ValueError(f"`state_clip` names unknown states {unknown}; the model's states "
                             f"are {names}.")
        clips = dict(state_clip)
    else:
        clips = dict.fromkeys(cell_states, state_clip)
    for name, bound in clips.items():
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
            raise ValueError(f"`state_clip` bounds must be positive numbers; received {bound!r} "
                             f"for {name}.")
    return {name: float(bound) for name, bound in clips.items()}


def resolve_gate_clip(model, gate_clip, quantization="float32"):
    """The bound on LSTM gate pre-activations a step model applies, or None.

    Args:
        model: a built `rc_keras.RCModel`.
        gate_clip: ``"auto"`` (`rc_keras.quantization.INT8_GATE_CLIP` for int8 when every
            LSTMCell of the model is a plain one, else nothing), a positive number, or None.
        quantization: the export's quantization, for ``"auto"``.
    """
    lstms = [cell for cell in _cell_list(model.cell) if isinstance(cell, keras.layers.LSTMCell)]
    plain = [cell for cell in lstms if int8_lstm.supports_lstm_step(cell)]
    if gate_clip is None:
        return None
    if isinstance(gate_clip, str):
        if gate_clip != "auto":
            raise ValueError(f"`gate_clip` must be 'auto', a positive number or None; received "
                             f"{gate_clip!r}.")
        usable = quantization == "int8" and plain and len(plain) == len(lstms)
        return int8_lstm.INT8_GATE_CLIP if usable else None
    if isinstance(gate_clip, bool) or not isinstance(gate_clip, (int, float)) or not gate_clip > 0:
        raise ValueError(f"`gate_clip` must be a positive number; received {gate_clip!r}.")
    if not plain or len(plain) != len(lstms):
        raise ValueError("`gate_clip` needs keras.layers.LSTMCell cells with their default "
                         "activations (tanh, sigmoid); this model's cells are "
                         f"{[type(c).__name__ for c in _cell_list(model.cell)]}.")
    return float(gate_clip)


def input_divisor(sequences):
    """What the first LSTM's input is divided by before it is concatenated with ``h``.

    The largest |value| of the calibration frames (at least 1): then frames and ``h``
    (within [-1, 1]) fit one int8 scale without costing ``h`` resolution.
    """
    if sequences is None:
        return 1.0
    return max(1.0, float(np.max(np.abs(np.asarray(sequences, np.float32)))))


def _call_cell(cell, inputs, states, gate_clip, divisor):
    """``cell(inputs, states)``, with plain LSTMCells written out op by op when
    ``gate_clip`` is set (see `rc_keras.quantization.lstm_step`)."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        new_states = []
        for index, (inner, inner_states) in enumerate(zip(cell.cells, states)):
            nested = tf.nest.is_nested(inner_states)
            inputs, inner_new = _call_cell(inner, inputs, list(inner_states) if nested
                                           else [inner_states], gate_clip,
                                           divisor if index == 0 else 1.0)
            new_states.append(inner_new if nested or len(inner_new) != 1 else inner_new[0])
        return inputs, new_states
    if gate_clip is not None and int8_lstm.supports_lstm_step(cell):
        h, c = states
        bias = cell.bias if cell.use_bias else None
        h, c = int8_lstm.lstm_step(cell.kernel, cell.recurrent_kernel, bias, inputs, h, c,
                                   input_divisor=divisor, gate_clip=gate_clip)
        return h, [h, c]
    return cell(inputs, states, training=False)


def build_step_model(model, batch_size=1, state_clip=None, gate_clip=None, divisor=1.0):
    """A functional Keras model sharing ``model``'s weights: one step of the RC network.

    Args:
        model: a built `rc_keras.RCModel`.
        batch_size: static batch (1 for TFLite / TFLM) or ``None``.
        state_clip: optional ``{state name: bound}``: those new states are clipped to
            ``[-bound, bound]`` (see `resolve_state_clip`).
        gate_clip: optional bound on LSTM gate pre-activations (see `resolve_gate_clip`);
            LSTMCells are then computed by `rc_keras.quantization.lstm_step`.
        divisor: the first LSTM's input divisor under ``gate_clip`` (see `input_divisor`).

    Returns:
        ``keras.Model`` with inputs ``[frame, state_0, ...]`` and a dict output
        ``{"probs", "state_0", ...}`` (same names, so the new states feed straight back).
    """
    check_model(model)
    structure = initial_state_structure(model)
    layout = state_layout(model)
    frame = keras.Input(batch_shape=(batch_size,) + tuple(model.feature_shape), name="frame")
    states = [keras.Input(batch_shape=(batch_size,) + tuple(s["shape"]), name=s["name"])
              for s in layout]
    output, new_states = _call_cell(model.cell, frame,
                                    tf.nest.pack_sequence_as(structure, states),
                                    gate_clip, divisor)
    probs = model.head(output, training=False)
    outputs = {"probs": probs}
    for spec, state in zip(layout, tf.nest.flatten(new_states)):
        bound = (state_clip or {}).get(spec["name"])
        if bound is not None:
            state = keras.ops.clip(state, -bound, bound)
        outputs[spec["name"]] = state
    return keras.Model([frame] + states, outputs, name="rc_step")


def check_sequences(sequences, model, name):
    """Returns ``sequences`` as float32 (n, time, *features) after checking it fits ``model``."""
    if sequences is None:
        raise ValueError(f"`{name}` is required: pass an array of shape (n, time, "
                         f"*{tuple(model.feature_shape)}).")
    try:
        array = np.asarray(sequences, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{name}` must be a numeric array of sequences; {error}") from None
    expected = tuple(model.feature_shape)
    if array.ndim != 2 + len(expected) or tuple(array.shape[2:]) != expected:
        raise ValueError(f"`{name}` must have shape (n, time, *{expected}) to match the model's "
                         f"feature shape {expected}; received shape {array.shape}.")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"`{name}` holds no sequences or no steps; received shape {array.shape}.")
    validation.check_finite(array, name)
    return array


def state_trajectories(model, sequences, max_samples=2000, seed=0, state_clip=None,
                       gate_clip=None):
    """Per-step (frame, states) samples from running ``model`` over ``sequences``.

    Int8 calibration must see the states the network actually visits: random states
    put the activations in the wrong ranges and nothing crosses the threshold any more.
    Every step of every sequence is run (no halting), so states after a spike are
    covered too; at most ``max_samples`` samples are kept, drawn evenly at random.
    ``state_clip`` (``{state name: bound}``) and ``gate_clip`` run the clipped step that
    will be exported.

    Returns:
        list of dicts ``{"frame": (1, *F), "state_0": (1, ...), ...}`` (float32).
    """
    sequences = check_sequences(sequences, model, "calibration")
    step = build_step_model(model, batch_size=None, state_clip=state_clip, gate_clip=gate_clip,
                            divisor=input_divisor(sequences))
    layout = state_layout(model)
    n, time = sequences.shape[:2]
    states = [np.zeros((n,) + tuple(s["shape"]), np.float32) for s in layout]
    frames, visited = [], [[] for _ in layout]
    call = tf.function(step, reduce_retracing=True)
    for t in range(time):
        frames.append(sequences[:, t])
        for k, s in enumerate(states):
            visited[k].append(s)
        out = call([tf.constant(sequences[:, t])] + [tf.constant(s) for s in states])
        states = [np.asarray(out[s["name"]]) for s in layout]
    frames = np.concatenate(frames)
    visited = [np.concatenate(v) for v in visited]
    # The final states are also inputs a stream can feed back: include them.
    frames = np.concatenate([frames, sequences[:, -1]])
    visited = [np.concatenate([v, s]) for v, s in zip(visited, states)]
    order = np.random.default_rng(seed).permutation(len(frames))[:max_samples]
    return [{"frame": frames[i:i + 1], **{s["name"]: visited[k][i:i + 1]
                                          for k, s in enumerate(layout)}} for i in order]


def to_plain(value):
    """Feature parameters (dataclass, dict or None) as a JSON-able dict."""
    if value is None:
        return None
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise ValueError(f"`feature_params` must be a dataclass or a dict; received "
                         f"{type(value).__name__}.")
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in value.items()}


_FEATURE_SIZE_KEYS = ("frame_size", "num_features", "feature_size", "features_per_frame",
                      "frame_features")


def check_feature_params(params, model):
    """Checks that feature parameters declaring a per-frame size agree with the model."""
    if not params:
        return
    expected = int(np.prod(model.feature_shape))
    for key in _FEATURE_SIZE_KEYS:
        if key in params and params[key] is not None and int(params[key]) != expected:
            raise ValueError(
                f"feature parameters say {key}={params[key]} but the model was trained on "
                f"frames of {expected} features (feature shape {tuple(model.feature_shape)}).")


def check_class_names(class_names, model):
    if class_names is None:
        return None
    names = [str(c) for c in class_names]
    if len(names) != model.num_classes:
        raise ValueError(f"`class_names` has {len(names)} names but the model has "
                         f"{model.num_classes} classes.")
    return names

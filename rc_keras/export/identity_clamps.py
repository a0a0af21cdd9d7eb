"""Drops MINIMUM / MAXIMUM ops that cannot change an integer, so TFLM does not run them.

The step graph clips the LSTM's gate pre-activations and cell state (`clip_by_value`) to the
range calibration saw. After int8 quantization the clip bounds are exactly the type's limits in
the very quantization of the clipped tensor (for example MINIMUM(x, 127) with x, 127 and the
result all at scale 0.0218, zero point -36): the op is the identity on every int8 value, yet
TFLM's reference MINIMUM and MAXIMUM cost about 9 instructions per value on a Cortex-M4
(11.6k per frame on the keyword network, 4% of it). `drop_identity_clamps` removes exactly
those ops and reads their input where their output was read; anything else is kept, so the
rewritten model gives the same integers as the original.
"""

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from rc_keras.export.lut_activations import _builtin

_OPS = schema.BuiltinOperator
_LIMITS = {schema.TensorType.INT8: (np.int8, -128, 127),
           schema.TensorType.INT16: (np.int16, -32768, 32767)}


def _quantization(tensor):
    q = tensor.quantization
    if q is None or q.scale is None or q.zeroPoint is None:
        return None
    return tuple(np.asarray(q.scale, np.float64).tolist()), tuple(np.asarray(q.zeroPoint).tolist())


def _constant(model, graph, index):
    """The single value of a constant scalar tensor, or None."""
    buffer = model.buffers[graph.tensors[index].buffer]
    limits = _LIMITS.get(graph.tensors[index].type)
    if limits is None or buffer.data is None:
        return None
    values = np.frombuffer(np.asarray(buffer.data, np.uint8).tobytes(), limits[0])
    return int(values[0]) if values.size == 1 else None


def _identity_clamp_source(model, graph, op):
    """The clamped input if ``op`` is a MINIMUM / MAXIMUM that leaves every value as it is."""
    builtin = _builtin(model, op)
    if builtin not in (_OPS.MINIMUM, _OPS.MAXIMUM) or len(op.inputs) != 2:
        return None
    (out,) = op.outputs
    for source, bound in (op.inputs, op.inputs[::-1]):
        tensors = [graph.tensors[i] for i in (source, bound, out)]
        if len({t.type for t in tensors}) != 1 or tensors[0].type not in _LIMITS:
            continue
        quantization = {_quantization(t) for t in tensors}
        if len(quantization) != 1 or None in quantization:
            continue
        _, low, high = _LIMITS[tensors[0].type]
        if _constant(model, graph, bound) == (high if builtin == _OPS.MINIMUM else low):
            return source
    return None


def drop_identity_clamps(data):
    """Removes every MINIMUM / MAXIMUM whose bound is its type's limit in its own quantization.

    Args:
        data: the .tflite bytes (a quantized step model).

    Returns:
        (new .tflite bytes, number of ops removed). Graph outputs and signature outputs that
        were a removed op's result become its input, in the same positions.

    Example:
        >>> import pathlib
        >>> from rc_keras.export.identity_clamps import drop_identity_clamps
        >>> data = pathlib.Path("saved_models/demo/step_int8.tflite").read_bytes()
        >>> rewritten, removed = drop_identity_clamps(data)
        >>> removed >= 0
        True
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    graph_inputs = set(np.asarray(graph.inputs).tolist())
    renamed, operators = {}, []
    for op in graph.operators:
        op.inputs = np.array([renamed.get(int(i), int(i)) for i in op.inputs], np.int32)
        source = _identity_clamp_source(model, graph, op)
        # A graph input cannot also be a graph output in TFLM: keep such a clamp.
        if source is not None and source not in graph_inputs:
            renamed[int(op.outputs[0])] = int(source)
            continue
        operators.append(op)
    graph.operators = operators
    graph.outputs = np.array([renamed.get(int(i), int(i)) for i in graph.outputs], np.int32)
    for signature in model.signatureDefs or []:
        for output in signature.outputs or []:
            output.tensorIndex = renamed.get(output.tensorIndex, output.tensorIndex)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), len(renamed)

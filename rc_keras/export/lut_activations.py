"""Int8 LOGISTIC and TANH as table lookups that TFLM runs bit-exactly.

An int8 activation maps 256 input values to 256 output values, so it is a table. TFLM's int8
LOGISTIC and TANH kernels compute each value in fixed point (about 370 instructions per value
on a Cortex-M4, measured: half of the keyword network's frame). `lut_activations` replaces each
by CAST (int8 -> int32), ADD 128 and GATHER from a 256-entry int8 table; the table is what
TFLM's own kernel outputs for every int8 input (the op is run alone in the TFLM Python
interpreter), so the rewritten model gives the same integers as the original, frame by frame.
"""

import copy

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from rc_keras.export.interpreters import tflm_interpreter

_OPS = schema.BuiltinOperator
_INT8, _INT32 = schema.TensorType.INT8, schema.TensorType.INT32


def _builtin(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _opcode(model, builtin):
    for k, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return k
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _table(model, op):
    """TFLM's outputs of ``op`` (alone, its quantization kept) for the inputs -128 ... 127."""
    single = copy.deepcopy(model)
    graph = single.subgraphs[0]
    source, target = op.inputs[0], op.outputs[0]
    graph.operators, graph.inputs, graph.outputs = [copy.deepcopy(op)], [source], [target]
    for t in (source, target):
        graph.tensors[t].shape = np.array([256], np.int32)
        graph.tensors[t].shapeSignature = None
    single.signatureDefs = []
    interpreter = tflm_interpreter(flatbuffer_utils.convert_object_to_bytearray(single))
    interpreter.set_input(np.arange(-128, 128, dtype=np.int8), 0)
    interpreter.invoke()
    return np.array(interpreter.get_output(0)).astype(np.int8).reshape(256)


def _tensor(graph, name, tensor_type, shape, buffer=0, quantization=None):
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.buffer = name.encode(), tensor_type, buffer
    tensor.shape = np.array(shape, np.int32)
    tensor.quantization = quantization
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _buffer(model, values):
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8)
    model.buffers.append(buffer)
    return len(model.buffers) - 1


def _operator(model, builtin, inputs, outputs, options_type=0, options=None):
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, builtin)
    op.inputs, op.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def lut_activations(data):
    """Rewrites every int8 LOGISTIC / TANH of a .tflite model as a table lookup.

    Args:
        data: the .tflite bytes (an int8 step model).

    Returns:
        (new .tflite bytes, number of ops replaced).
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    operators, replaced = [], 0
    for op in graph.operators:
        source, target = op.inputs[0], op.outputs[0]
        if (_builtin(model, op) not in (_OPS.LOGISTIC, _OPS.TANH)
                or graph.tensors[source].type != _INT8 or graph.tensors[target].type != _INT8):
            operators.append(op)
            continue
        shape = list(graph.tensors[source].shape)
        size = int(np.prod(shape))
        table = _tensor(graph, f"lut_{replaced}", _INT8, [256], _buffer(model, _table(model, op)),
                        copy.deepcopy(graph.tensors[target].quantization))
        index = _tensor(graph, f"lut_{replaced}_index", _INT32, shape)
        offset = _tensor(graph, f"lut_{replaced}_offset", _INT32, shape,
                         _buffer(model, np.full(size, 128, "<i4")))
        shifted = _tensor(graph, f"lut_{replaced}_shifted", _INT32, shape)
        add = schema.AddOptionsT()
        gather = schema.GatherOptionsT()
        gather.axis, gather.batchDims = 0, 0
        operators += [
            _operator(model, _OPS.CAST, [source], [index]),
            _operator(model, _OPS.ADD, [index, offset], [shifted], schema.BuiltinOptions.AddOptions, add),
            _operator(model, _OPS.GATHER, [table, shifted], [target],
                      schema.BuiltinOptions.GatherOptions, gather)]
        replaced += 1
    graph.operators = operators
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), replaced

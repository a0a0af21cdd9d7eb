"""Just enough TFLite flatbuffer reading (and in-place quantization patching) for export."""

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _model(data):
    return schema.Model.GetRootAs(bytes(data), 0)


def op_name(model, opcode_index):
    code = model.OperatorCodes(opcode_index)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if builtin == schema.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + (code.CustomCode() or b"").decode()
    return _OP_NAMES.get(builtin, str(builtin))


def describe(data):
    """Ops, tensors, graph inputs/outputs and signature of subgraph 0.

    Returns:
        dict with "ops" (list of (name, inputs, outputs)), "op_names" (sorted unique),
        "inputs" / "outputs" (tensor indices in graph order), "tensors" (index -> dict of
        name, shape, dtype, scale, zero_point), "signature" ({"inputs": {key: tensor},
        "outputs": {key: tensor}} or None), "num_subgraphs".
    """
    model = _model(data)
    graph = model.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        ops.append((op_name(model, op.OpcodeIndex()), [int(v) for v in op.InputsAsNumpy()],
                    [int(v) for v in op.OutputsAsNumpy()]))
    tensors = {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        quant = tensor.Quantization()
        scale = zero_point = None
        if quant is not None and quant.ScaleLength() == 1:
            scale, zero_point = float(quant.Scale(0)), int(quant.ZeroPoint(0))
        shape = tensor.ShapeAsNumpy()
        tensors[i] = {"name": (tensor.Name() or b"").decode(),
                      "shape": [int(d) for d in shape] if isinstance(shape, np.ndarray) else [],
                      "dtype": _TYPE_NAMES.get(tensor.Type(), str(tensor.Type())),
                      "scale": scale, "zero_point": zero_point, "buffer": int(tensor.Buffer())}
    signature = None
    if model.SignatureDefsLength():
        sig = model.SignatureDefs(0)
        signature = {
            "inputs": {sig.Inputs(i).Name().decode(): int(sig.Inputs(i).TensorIndex())
                       for i in range(sig.InputsLength())},
            "outputs": {sig.Outputs(i).Name().decode(): int(sig.Outputs(i).TensorIndex())
                        for i in range(sig.OutputsLength())}}
    return {"ops": ops, "op_names": sorted({name for name, _, _ in ops}),
            "inputs": [int(v) for v in graph.InputsAsNumpy()],
            "outputs": [int(v) for v in graph.OutputsAsNumpy()],
            "tensors": tensors, "signature": signature, "num_subgraphs": model.SubgraphsLength()}


def set_quantization(data, tensor_index, scale, zero_point):
    """Overwrites a per-tensor scale and zero point in place (``data``: bytearray).

    The vectors keep their length, so nothing else in the file moves.
    """
    model = schema.Model.GetRootAs(data, 0)
    quant = model.Subgraphs(0).Tensors(tensor_index).Quantization()
    if quant is None or quant.ScaleLength() != 1 or quant.ZeroPointLength() != 1:
        raise ValueError(f"tensor {tensor_index} is not per-tensor quantized.")
    table = quant._tab
    scale_at = table.Vector(table.Offset(8))
    zero_at = table.Vector(table.Offset(10))
    flatbuffers.encode.Write(flatbuffers.packer.float32, data, scale_at, float(scale))
    flatbuffers.encode.Write(flatbuffers.packer.int64, data, zero_at, int(zero_point))
    return data


def fc_macs(data):
    """Multiply-accumulates per invoke: FULLY_CONNECTED weights plus elementwise MULs."""
    info = describe(data)
    fc = mul = 0
    for name, inputs, outputs in info["ops"]:
        if name == "FULLY_CONNECTED":
            fc += int(np.prod(info["tensors"][inputs[1]]["shape"]))
        elif name == "MUL":
            fc_shape = info["tensors"][outputs[0]]["shape"]
            mul += int(np.prod(fc_shape))
    return {"fully_connected": fc, "elementwise_mul": mul, "total": fc + mul}

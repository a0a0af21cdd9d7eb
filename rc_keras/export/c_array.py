"""C source and header holding a step model as an aligned byte array plus its sidecar."""

import math
import pathlib
import re

# TFLM `MicroMutableOpResolver` method per TFLite builtin op (others: CamelCase guess).
_RESOLVER = {"FULLY_CONNECTED": "AddFullyConnected", "ADD": "AddAdd", "SUB": "AddSub",
             "MUL": "AddMul", "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV",
             "LOGISTIC": "AddLogistic", "TANH": "AddTanh", "SOFTMAX": "AddSoftmax",
             "RESHAPE": "AddReshape", "QUANTIZE": "AddQuantize", "DEQUANTIZE": "AddDequantize",
             "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
             "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "STRIDED_SLICE": "AddStridedSlice",
             "RELU": "AddRelu", "RELU6": "AddRelu6", "BATCH_MATMUL": "AddBatchMatMul",
             "MAX_POOL_2D": "AddMaxPool2D", "AVERAGE_POOL_2D": "AddAveragePool2D",
             "MEAN": "AddMean", "PACK": "AddPack", "UNPACK": "AddUnpack", "GATHER": "AddGather",
             "SQUARED_DIFFERENCE": "AddSquaredDifference", "TRANSPOSE": "AddTranspose"}

ALIGNMENT = 16


def resolver_method(op):
    """The TFLM resolver method that registers ``op`` (e.g. "AddFullyConnected")."""
    if op in _RESOLVER:
        return _RESOLVER[op]
    return "Add" + "".join(part.capitalize() for part in op.split("_"))


def _c_float(value):
    return f"{float(value)!r}f" if "e" in repr(float(value)) or "." in repr(float(value)) \
        else f"{float(value)}.0f"


def _c_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_c_array(data, sidecar, out_dir, name="rc_model", arena_bytes=None):
    """Writes ``<name>_data.h`` and ``<name>_data.c``.

    The source holds the .tflite bytes as ``const unsigned char <name>_tflite[]`` aligned
    to 16 bytes (TFLM reads the flatbuffer in place), its length, the state table and
    class names; the header defines the sidecar constants as macros (``<NAME>_THRESHOLD_Q``,
    frame and probs quantization, tensor positions, ``<NAME>_ARENA_BYTES``...) and
    ``<NAME>_REGISTER_OPS(resolver)`` with exactly the ops the model uses. For a
    quantized model (int8 or int16x8) ``<NAME>_QUANTIZED`` is 1 and ``<name>_q_t`` is the
    integer type of its frames, outputs and states (``int8_t`` or ``int16_t``, range
    ``<NAME>_Q_MIN``..``<NAME>_Q_MAX``), so one firmware loop serves both. Both files
    compile as C99 and as C++.

    Args:
        data: the .tflite bytes.
        sidecar: its sidecar dict (see `export_tflite_step`).
        out_dir: directory to write into.
        name: C identifier prefix.
        arena_bytes: TFLM arena size for the board (e.g. measured minimum plus margin).

    Returns:
        (header_path, source_path).
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"`name` must be a C identifier; received {name!r}.")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    upper = name.upper()
    int8 = sidecar["quantization"] == "int8"
    int16 = sidecar["quantization"] == "int16x8"
    quantized = int8 or int16
    frame, probs, states = sidecar["inputs"]["frame"], sidecar["outputs"]["probs"], sidecar["states"]
    scheduled = isinstance(sidecar["threshold"], (list, tuple))
    thetas = list(sidecar["threshold"]) if scheduled else [sidecar["threshold"]]
    if quantized:
        highs = list(sidecar["threshold_q"]) if scheduled else [sidecar["threshold_q"]]
        lows = sidecar["threshold_q_low"]
        lows = [None] * len(thetas) if lows is None else list(lows) if scheduled else [lows]
        lows = [(-32769 if int16 else -129) if v is None else v for v in lows]
    frame_size = 1
    for d in sidecar["feature_shape"]:
        frame_size *= int(d)
    macros = [
        ("FORMAT_VERSION", sidecar["format_version"]),
        ("BYTES", len(data)),
        ("INT8", int(int8)),
        ("INT16", int(int16)),
        ("QUANTIZED", int(quantized)),
        ("ARENA_BYTES", int(arena_bytes) if arena_bytes else 32 * 1024),
        ("FRAME_SIZE", frame_size),
        ("FRAME_INPUT", frame["position"]),
        ("PROBS_OUTPUT", probs["position"]),
        ("NUM_OUTPUTS", sidecar["num_outputs"]),
        ("NUM_CLASSES", sidecar["num_classes"]),
        ("READOUT_SIGMOID", int(sidecar["readout"] == "sigmoid")),
        ("THRESHOLD", _c_float(thetas[0])),
        # A per-step schedule: step t uses <name>_threshold_steps[min(t, THRESHOLD_STEPS - 1)]
        # (and the _q arrays); one threshold is a schedule of one step.
        ("THRESHOLD_STEPS", len(thetas)),
        ("NUM_STATES", len(states)),
        # Elements of all states together: the firmware stages every state output in a
        # buffer this long before writing the inputs (the planner may alias them).
        ("STATE_ELEMENTS", sum(math.prod(int(d) for d in s["shape"]) for s in states)),
    ]
    if quantized:
        macros += [
            ("Q_MIN", -32768 if int16 else -128),
            ("Q_MAX", 32767 if int16 else 127),
            ("FRAME_SCALE", _c_float(frame["scale"])),
            ("FRAME_ZERO_POINT", frame["zero_point"]),
            ("PROBS_SCALE", _c_float(probs["scale"])),
            ("PROBS_ZERO_POINT", probs["zero_point"]),
            ("THRESHOLD_Q", highs[0]),
            ("THRESHOLD_Q_LOW", lows[0]),
        ]
    ops = sidecar["ops"]
    register = " \\\n".join(f"    (resolver).{resolver_method(op)}();" for op in ops)
    guard = f"{upper}_DATA_H_"
    names = sidecar.get("class_names") or [str(i) for i in range(sidecar["num_classes"])]
    header = [
        f"/* Generated by rc_keras.export: {sidecar.get('model_file') or 'step model'} "
        f"({sidecar['quantization']}), sidecar format {sidecar['format_version']}. Do not edit. */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
    ]
    header += [f"#define {upper}_{key} " + (f"({value})" if isinstance(value, int) and value < 0 else str(value))
               for key, value in macros]
    if quantized:
        header += ["", f"/* Integer type of frames, outputs and states. */",
                   f"typedef {'int16_t' if int16 else 'int8_t'} {name}_q_t;"]
    header += [
        "",
        "/* Spike test: softmax readout: max(probs) >= THRESHOLD (int8: >= THRESHOLD_Q);",
        "   sigmoid readout: p >= THRESHOLD or p <= 1 - THRESHOLD (int8: q <= THRESHOLD_Q_LOW).",
        "   With a per-step schedule (THRESHOLD_STEPS > 1) step t uses entry min(t, STEPS - 1)",
        "   of the arrays below; the macros hold entry 0. */",
        f"extern const float {name}_threshold_steps[{upper}_THRESHOLD_STEPS];",
        *([f"extern const int {name}_threshold_q_steps[{upper}_THRESHOLD_STEPS];",
           f"extern const int {name}_threshold_q_low_steps[{upper}_THRESHOLD_STEPS];"]
          if quantized else []),
        "",
        "/* One recurrent state tensor: where it enters and leaves the model, its size and",
        "   the value that resets it (the zero point in int8). feedback_direct = 1: copy the",
        "   output into the input as is; 0: requantize with the scales below. */",
        "typedef struct {",
        "  int input_position;", "  int output_position;", "  int size;",
        "  int initial_value_q;", "  int feedback_direct;",
        "  float scale;", "  int zero_point;", "  float output_scale;", "  int output_zero_point;",
        f"}} {name}_state_t;",
        "",
        f"extern const unsigned char {name}_tflite[];",
        f"extern const unsigned int {name}_tflite_len;",
        f"extern const {name}_state_t {name}_states[{upper}_NUM_STATES];",
        f"extern const char* const {name}_class_names[{upper}_NUM_CLASSES];",
        "",
        f"/* Registers the ops the model uses on a tflite::MicroMutableOpResolver<{upper}_NUM_OPS>. */",
        f"#define {upper}_NUM_OPS {len(ops)}",
        f"#define {upper}_REGISTER_OPS(resolver) \\", register, "",
        "#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {guard} */", ""]
    state_rows = []
    for s in states:
        size = 1
        for d in s["shape"]:
            size *= int(d)
        state_rows.append(
            "  {" + ", ".join(str(v) for v in [
                s["input_position"], s["output_position"], size,
                s.get("initial_value_q", 0), int(s.get("feedback", "direct") == "direct"),
                _c_float(s.get("scale") or 0.0), s.get("zero_point", 0),
                _c_float(s.get("output_scale") or 0.0), s.get("output_zero_point", 0)]) +
            f"}},  /* {s['name']}: cell {s['cell']} {s['cell_type']} {s['role']} */")
    hex_rows = []
    for start in range(0, len(data), 12):
        chunk = data[start:start + 12]
        hex_rows.append("  " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    source = [
        f"/* Generated by rc_keras.export. Do not edit. */",
        f'#include "{name}_data.h"', "",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define {upper}_ALIGN __attribute__((aligned({ALIGNMENT})))",
        "#elif defined(_MSC_VER)",
        f"#define {upper}_ALIGN __declspec(align({ALIGNMENT}))",
        "#else", f"#define {upper}_ALIGN", "#endif", "",
        f"const {name}_state_t {name}_states[{upper}_NUM_STATES] = {{", *state_rows, "};", "",
        f"const float {name}_threshold_steps[{upper}_THRESHOLD_STEPS] = {{",
        "  " + ", ".join(_c_float(v) for v in thetas), "};",
        *([f"const int {name}_threshold_q_steps[{upper}_THRESHOLD_STEPS] = {{",
           "  " + ", ".join(str(int(v)) for v in highs), "};",
           f"const int {name}_threshold_q_low_steps[{upper}_THRESHOLD_STEPS] = {{",
           "  " + ", ".join(str(int(v)) for v in lows), "};"] if quantized else []), "",
        f"const char* const {name}_class_names[{upper}_NUM_CLASSES] = {{",
        "  " + ", ".join(_c_string(str(c)) for c in names), "};", "",
        f"const unsigned int {name}_tflite_len = {len(data)};", "",
        f"{upper}_ALIGN const unsigned char {name}_tflite[] = {{", *hex_rows, "};", ""]
    header_path = out_dir / f"{name}_data.h"
    source_path = out_dir / f"{name}_data.c"
    header_path.write_text("\n".join(header))
    source_path.write_text("\n".join(source))
    return header_path, source_path

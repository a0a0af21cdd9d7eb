"""The firmware's state feedback, compiled with the host's gcc (fast; the default run).

The firmware in QEMU against TFLM is tested in test_firmware_qemu.py (large).
"""

import json
import pathlib
import shutil
import subprocess
import types

import numpy as np
import pytest

from rc_keras.export.c_array import write_c_array
from rc_keras.export.interpreters import StepRunner

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
DEMO = ROOT / "saved_models" / "demo"
HARNESS = pathlib.Path(__file__).resolve().parent / "firmware_host" / "feedback_main.c"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a host C compiler (gcc)")


def _compile(model_dir, out):
    exe = out / "feedback"
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Werror", f"-I{FIRMWARE}", f"-I{model_dir}",
                    str(HARNESS), str(model_dir / "rc_model_data.c"), "-lm", "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe


def _feed_back(exe, mode, offsets, arena):
    text = " ".join([str(mode), *(f"{i} {o}" for i, o in offsets), str(len(arena)),
                     *(str(int(v)) for v in arena)])
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return np.array(done.stdout.split(), int)


def test_staged_feedback_survives_a_state_output_over_another_state_input(tmp_path):
    # The demo's LSTM: h (input 0, output 0) and c (input 1, output 2), 32 values each. Lay c's
    # OUTPUT over h's INPUT, as TFLM's planner did on the Cortex-M4 build of this model.
    sidecar = json.loads((DEMO / "step_int8.json").read_text())
    write_c_array((DEMO / "step_int8.tflite").read_bytes(), sidecar, tmp_path, arena_bytes=8192)
    exe = _compile(tmp_path, tmp_path)
    h_out = np.arange(32) - 100          # distinct from every c value
    c_out = np.arange(32) + 10
    arena = np.zeros(96, int)
    arena[0:32] = c_out                  # h input == c output
    arena[64:96] = h_out
    offsets = [(0, 64), (32, 0)]         # (input, output) of h, of c
    staged = _feed_back(exe, 0, offsets, arena)
    np.testing.assert_array_equal(staged, np.concatenate([h_out, c_out]))
    # The old state-by-state copy writes h into h's input, which is c's output: c gets h.
    old = _feed_back(exe, 1, offsets, arena)
    np.testing.assert_array_equal(old, np.concatenate([h_out, h_out]))


@pytest.mark.parametrize("quantization,bits", [("int8", (-128, 127)), ("int16x8", (-32768, 32767))])
def test_requantized_feedback_matches_the_host_loop(tmp_path, quantization, bits):
    # States the export could not tie ("requantize"): the firmware must round exactly as
    # StepRunner does (float32, half to even), including the halfway values a 0.5 ratio makes.
    sidecar = json.loads((DEMO / "step_int8.json").read_text())
    sidecar["quantization"] = quantization
    zero = 0 if quantization == "int16x8" else None
    h, c = sidecar["states"]
    h.update(feedback="requantize", scale=0.01, zero_point=zero if zero is not None else 3,
             output_scale=0.005, output_zero_point=zero if zero is not None else -7)
    c.update(feedback="requantize", scale=0.0625, zero_point=zero if zero is not None else -1,
             output_scale=0.023, output_zero_point=zero if zero is not None else 5)
    for s in (h, c):
        s["initial_value_q"] = s["zero_point"]
    write_c_array((DEMO / "step_int8.tflite").read_bytes(), sidecar, tmp_path, arena_bytes=8192)
    exe = _compile(tmp_path, tmp_path)
    dtype = np.int8 if quantization == "int8" else np.int16
    rng = np.random.default_rng(0)
    host = types.SimpleNamespace(int8=True, bits=bits, dtype=dtype)
    for _ in range(4 if quantization == "int8" else 8):
        values = rng.integers(bits[0], bits[1] + 1, 64)
        arena = np.concatenate([np.zeros(64, int), values])
        got = _feed_back(exe, 0, [(0, 64), (32, 96)], arena)
        want = [StepRunner._feed_back(host, s, values[32 * k:32 * (k + 1)].astype(dtype))
                for k, s in enumerate((h, c))]
        np.testing.assert_array_equal(got, np.concatenate(want).astype(int))
    # Every int8 value once through h (ratio 0.5: every odd value is a tie).
    if quantization == "int8":
        for start in range(-128, 128, 32):
            values = np.arange(start, start + 32)
            arena = np.concatenate([np.zeros(64, int), values, values])
            got = _feed_back(exe, 0, [(0, 64), (32, 96)], arena)
            np.testing.assert_array_equal(got[:32], StepRunner._feed_back(host, h, values.astype(dtype)))


def test_cli_firmware_run_needs_held_out_sequences(capsys):
    from rc_keras import cli

    assert cli.main(["firmware", "--bundle", str(DEMO), "--run"]) == 2
    assert "--run needs --verify-sequences FILE or --task" in capsys.readouterr().err


def test_cli_firmware_rejects_an_unknown_board(capsys):
    from rc_keras import cli

    assert cli.main(["firmware", "--bundle", str(DEMO), "--board", "stm32"]) == 2
    assert "--board" in capsys.readouterr().err


def test_firmware_input_file_rejects_mixed_or_float_clips(tmp_path):
    from rc_keras.export import firmware

    with pytest.raises(ValueError, match="int8 or all int16"):
        firmware.write_input(tmp_path / "in.bin", [np.zeros((3, 1), np.float32)])
    with pytest.raises(ValueError, match="pcm clips must be int16"):
        firmware.write_input(tmp_path / "in.bin", [np.zeros(3, np.int8)], kind="pcm")


def test_lut_activations_give_the_same_integers_in_tflm(tmp_path):
    # int8 LOGISTIC / TANH as CAST + ADD + GATHER from a table that TFLM's own kernel filled:
    # the rewritten demo model matches the original on every frame's outputs.
    from rc_keras import tasks
    from rc_keras.export import _flatbuffer, firmware
    from rc_keras.export.lut_activations import lut_activations

    original = (DEMO / "step_int8.tflite").read_bytes()
    data, replaced = lut_activations(original)
    ops = _flatbuffer.describe(data)["op_names"]
    assert replaced == 5  # the LSTM step: three sigmoid gates, tanh of the candidate and of c
    assert "LOGISTIC" not in ops and "TANH" not in ops and {"CAST", "GATHER"} <= set(ops)
    x, _ = tasks.get_task("spotting").data("test", 20, seed=3)
    runner = StepRunner(DEMO / "step_int8.tflite", runtime="tflm")
    clips = [runner.quantize_frames(c) for c in x]
    want = firmware.host_reference(DEMO / "step_int8.tflite", clips, whole_clip=True)
    path = tmp_path / "step_int8.tflite"
    path.write_bytes(data)
    shutil.copy(DEMO / "step_int8.json", tmp_path / "step_int8.json")
    got = firmware.host_reference(path, clips, whole_clip=True)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a["outputs"], b["outputs"])


def _op_list(data):
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from rc_keras.export.lut_activations import _builtin

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    return [names[_builtin(model, op)] for op in model.subgraphs[0].operators]


def test_identity_clamps_are_dropped_with_the_same_integers_in_tflm(tmp_path):
    # The step graph's clip_by_value becomes MINIMUM / MAXIMUM against -128 / 127 in the
    # clipped tensor's own quantization where calibration saw the clip's whole range: the
    # identity on int8. Dropping those (the c state's clip produces a graph output, which then
    # reads the op before it) keeps every frame's outputs.
    from rc_keras import tasks
    from rc_keras.export import firmware
    from rc_keras.export.identity_clamps import drop_identity_clamps

    original = (DEMO / "step_int8.tflite").read_bytes()
    before = _op_list(original)
    data, removed = drop_identity_clamps(original)
    after = _op_list(data)
    clamps = {"MINIMUM", "MAXIMUM"}
    assert removed >= 2 and len(after) == len(before) - removed
    assert [op for op in before if op not in clamps] == [op for op in after if op not in clamps]
    x, _ = tasks.get_task("spotting").data("test", 20, seed=3)
    runner = StepRunner(DEMO / "step_int8.tflite", runtime="tflm")
    clips = [runner.quantize_frames(c) for c in x]
    want = firmware.host_reference(DEMO / "step_int8.tflite", clips, whole_clip=True)
    path = tmp_path / "step_int8.tflite"
    path.write_bytes(data)
    shutil.copy(DEMO / "step_int8.json", tmp_path / "step_int8.json")
    got = firmware.host_reference(path, clips, whole_clip=True)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a["outputs"], b["outputs"])


def test_a_clamp_that_can_change_a_value_is_kept():
    # The first MINIMUM (the gates' clip, against 127) made to clip at 126 must stay.
    from tensorflow.lite.tools import flatbuffer_utils

    from rc_keras.export.identity_clamps import drop_identity_clamps

    data = (DEMO / "step_int8.tflite").read_bytes()
    _, removed = drop_identity_clamps(data)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    minimum = graph.operators[_op_list(data).index("MINIMUM")]
    bound = next(int(i) for i in minimum.inputs
                 if model.buffers[graph.tensors[i].buffer].data is not None)
    assert np.asarray(model.buffers[graph.tensors[bound].buffer].data).view(np.int8)[0] == 127
    model.buffers[graph.tensors[bound].buffer].data = np.array([126], np.int8).view(np.uint8)
    changed = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    rewritten, fewer = drop_identity_clamps(changed)
    assert fewer == removed - 1 and "MINIMUM" in _op_list(rewritten)

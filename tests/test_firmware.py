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


def _assert_same_outputs_as_the_demo(data, tmp_path):
    """A rewritten demo int8 step model (bytes) gives the original's outputs on every frame
    of 20 spotting sequences in the TFLM Python interpreter."""
    from rc_keras import tasks
    from rc_keras.export import firmware

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


def test_lut_activations_give_the_same_integers_in_tflm(tmp_path):
    # int8 LOGISTIC / TANH as CAST + ADD + GATHER from a table that TFLM's own kernel filled:
    # the rewritten demo model matches the original on every frame's outputs.
    from rc_keras.export import _flatbuffer
    from rc_keras.export.lut_activations import lut_activations

    original = (DEMO / "step_int8.tflite").read_bytes()
    data, replaced = lut_activations(original)
    ops = _flatbuffer.describe(data)["op_names"]
    assert replaced == 5  # the LSTM step: three sigmoid gates, tanh of the candidate and of c
    assert "LOGISTIC" not in ops and "TANH" not in ops and {"CAST", "GATHER"} <= set(ops)
    _assert_same_outputs_as_the_demo(data, tmp_path)


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
    from rc_keras.export.identity_clamps import drop_identity_clamps

    original = (DEMO / "step_int8.tflite").read_bytes()
    before = _op_list(original)
    data, removed = drop_identity_clamps(original)
    after = _op_list(data)
    clamps = {"MINIMUM", "MAXIMUM"}
    assert removed >= 2 and len(after) == len(before) - removed
    assert [op for op in before if op not in clamps] == [op for op in after if op not in clamps]
    _assert_same_outputs_as_the_demo(data, tmp_path)


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


# ------------------------------------------------------------------ stream policy (host g++)
POLICY_HARNESS = pathlib.Path(__file__).resolve().parent / "firmware_host" / "policy_main.cc"


class _ScriptedNetwork:
    """The stand-in network of tests/firmware_host/policy_main.cc, for `streaming.Listener`."""

    readout = "softmax"

    def __init__(self, outputs):
        self.outputs = outputs

    def set_threshold(self, threshold):
        pass

    def start(self, start_frame):
        return (0, 0)

    def step(self, state, frame, k):
        state = (state[0] + int(frame[0]), state[1] + 1)
        return state, state

    def crossed(self, raw, step):
        return (((raw[0] & 0xFFFFFFFF) * 2654435761) & 0xFFFFFFFF) >> 28 == 5

    def label(self, raw):
        return ((raw[0] >> 4) & 0xFFFFFFFF) % self.outputs

    def confidence(self, raw):
        return raw[1]


def _policy_exe(tmp_path, policy, sidecar, name):
    from rc_keras import features
    from rc_keras.export import firmware

    folder = tmp_path / name
    write_c_array((DEMO / "step_int8.tflite").read_bytes(), sidecar, folder, arena_bytes=8192)
    firmware.write_policy_source(policy, folder, sidecar, features.FrontEndParams(context_frames=0))
    subprocess.run(["gcc", "-std=c99", "-O1", "-c", str(folder / "rc_model_data.c"), "-o",
                    str(folder / "model.o")], check=True, capture_output=True, text=True)
    exe = folder / "policy"
    subprocess.run(["g++", "-std=c++17", "-O1", "-Wall", "-Werror", f"-I{FIRMWARE}", f"-I{folder}",
                    str(POLICY_HARNESS), str(FIRMWARE / "rc_stream_policy.cc"),
                    str(folder / "model.o"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe


def _energy_script(rng, frames):
    """Energies (1/256 dB) of a stream: noise around -60 dB with loud bursts of varied
    length and level, some dips inside them."""
    energy = -60 * 256 + rng.integers(-300, 300, frames)
    t = 5
    while t < frames:
        length = int(rng.integers(1, 40))
        energy[t:t + length] += int(rng.integers(2, 30)) * 256
        t += length + int(rng.integers(1, 30))
    return energy


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host C++ compiler (g++)")
@pytest.mark.parametrize("values", [
    dict(),
    dict(pre_roll_frames=0, onset_frames=1, release_frames=1, refractory_frames=0, max_frames=7),
    dict(pre_roll_frames=3, onset_frames=3, release_frames=2, refractory_frames=25, max_frames=30,
         ignore_classes=("b",), onset_db=6.5, floor_rise_db=0.5),
])
def test_firmware_stream_policy_decides_as_the_host_listener(tmp_path, values):
    # firmware/rc_stream_policy.cc over a scripted network (spikes at pseudo-random steps)
    # against rc_keras.streaming.Listener over the same script: the same detections (class,
    # spike, onset, start frame, confidence) and the same number of network invocations.
    from rc_keras import streaming

    sidecar = json.loads((DEMO / "step_int8.json").read_text())
    sidecar["class_names"] = ["a", "b"]
    policy = streaming.StreamPolicy(**values)
    exe = _policy_exe(tmp_path, policy, sidecar, "policy")
    rng = np.random.default_rng(len(values))
    frames = 3000
    q = rng.integers(-40, 41, frames)
    energy = _energy_script(rng, frames)
    text = " ".join([str(frames), *(f"{a} {b}" for a, b in zip(q, energy))])
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    lines = [line.split() for line in done.stdout.splitlines()]
    device = [tuple(int(v) for v in line[1:]) for line in lines if line[0] == "D"]
    listener = streaming.Listener(policy, _ScriptedNetwork(2), class_names=["a", "b"])
    host = [d for t in range(frames) for d in listener.push(q[t:t + 1], energy[t] / 256)]
    assert len(host) >= 10, "the script must produce detections"
    assert device == [(d.label, d.spike_frame, d.onset_frame, d.start_frame, d.confidence)
                      for d in host]
    assert int(lines[-1][1]) == listener.invocations


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host C++ compiler (g++)")
def test_firmware_frame_energy_is_the_host_energy(tmp_path):
    # RcPolicyEnergy (the log-mel's integer log2, a log-sum-exp by table) gives exactly
    # rc_keras.streaming.log_mel_energy_q8 on the fixed-point front end's features, from
    # digital silence to full scale, within 0.05 dB of the mean mel power in float64.
    from rc_keras import features, features_fixed, streaming

    sidecar = json.loads((DEMO / "step_int8.json").read_text())
    exe = _policy_exe(tmp_path, streaming.StreamPolicy(), sidecar, "energy")
    rng = np.random.default_rng(3)
    level = np.repeat(10.0 ** rng.uniform(-1, 4.5, 40), 400)
    pcm = np.clip(rng.standard_normal(len(level)) * level, -32768, 32767).astype(np.int16)
    pcm[2000:3000] = 0                      # digital silence
    pcm[5000:5400] = -32768                 # full scale
    params = features.FrontEndParams(context_frames=0, fixed_point=True)
    log_mel = features_fixed.log_mel_int16(pcm, params)
    want = streaming.log_mel_energy_q8(log_mel)
    text = " ".join([str(len(log_mel)), *map(str, log_mel.view(np.uint32).reshape(-1))])
    done = subprocess.run([str(exe), "energy"], input=text, capture_output=True, text=True,
                          check=True)
    np.testing.assert_array_equal(np.array(done.stdout.split(), np.int64), want)
    assert want.min() < -110 * 256 and want.max() > -2 * 256
    power = np.mean(np.exp(2.0 * log_mel.astype(np.float64)), axis=-1)   # (mel + offset)^2
    np.testing.assert_allclose(want / 256, 10 * np.log10(power), atol=0.05)


def test_policy_header_carries_the_policy_and_refuses_what_the_firmware_cannot_run(tmp_path):
    from rc_keras import streaming
    from rc_keras.export import firmware

    sidecar = {"num_classes": 4, "class_names": ["yes", "no", "unknown", "silence"],
               "threshold": 0.9, "feature_params": {"context_frames": 0}}
    policy = streaming.StreamPolicy(pre_roll_frames=7, refractory_frames=33, onset_db=5.5,
                                    floor_rise_db=0.02, onset_frames=3, release_frames=4,
                                    max_frames=90)
    text = firmware.write_policy_source(policy, tmp_path, sidecar).read_text()
    for line in ("RC_POLICY_MAX_FRAMES 90", "RC_POLICY_REFRACTORY_FRAMES 33",
                 "RC_POLICY_ONSET_FRAMES 3", "RC_POLICY_RELEASE_FRAMES 4",
                 "RC_POLICY_PRE_ROLL_FRAMES 7", "RC_POLICY_ONSET_Q8 1408",
                 "RC_POLICY_FLOOR_RISE_Q8 5", "RC_POLICY_CHANNELS 20", "RC_POLICY_NUM_CLASSES 4",
                 "RC_POLICY_LOG2_CHANNELS_Q8 1106", "rc_policy_exp2[257] = {",
                 "  1073741824, 1070838486,", "rc_policy_ignored[4] = {0, 0, 1, 1};"):
        assert line in text, line
    with pytest.raises(ValueError, match="`policy.mode` must be 'onset'"):
        firmware.write_policy_source(streaming.StreamPolicy(mode="staggered"), tmp_path, sidecar)
    with pytest.raises(ValueError, match="differs from the step model's"):
        firmware.write_policy_source(streaming.StreamPolicy(threshold=0.8), tmp_path, sidecar)
    firmware.write_policy_source(streaming.StreamPolicy(threshold=0.9), tmp_path, sidecar)
    with pytest.raises(ValueError, match="`feature_params` is needed"):
        firmware.write_policy_source(policy, tmp_path, dict(sidecar, feature_params=None))
    with pytest.raises(ValueError, match="`policy` must be a rc_keras.streaming.StreamPolicy"):
        firmware.write_policy_source({"mode": "onset"}, tmp_path, sidecar)

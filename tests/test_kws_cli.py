"""`rc-keras train/sweep --task speech-commands --data ROOT`."""

import json
import shutil

import numpy as np
import pytest

from rc_keras import cli, kws_training


def test_speech_commands_train_needs_data(tmp_path, capsys):
    assert cli.main(["train", "--task", "speech-commands", "--out", str(tmp_path / "r"),
                     "--epochs", "1"]) == 2
    assert "--data is required for the speech-commands task (--data ROOT)" in \
        capsys.readouterr().err
    assert cli.main(["train", "--task", "speech-commands", "--data", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "missing" in err and "not a directory" in err
    assert cli.main(["train", "--task", "speech-commands", "--data", str(tmp_path),
                     "--context-frames", "-1", "--out", str(tmp_path / "r")]) == 2
    assert "expected an integer >= 0" in capsys.readouterr().err


@pytest.mark.large
@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs espeak-ng and sox")
def test_speech_commands_train_and_sweep_end_to_end(tmp_path, capsys):
    from rc_keras.datasets import synthesize_keywords

    root = tmp_path / "data"
    synthesize_keywords(root, words=["yes", "no", "bed"], voices=10, seed=0, workers=2,
                        engines=["espeak-ng"], unknown_per_voice=0, real_unknown=0)
    run = tmp_path / "run"
    assert cli.main(["train", "--task", "speech-commands", "--data", str(root), "--epochs", "2",
                     "--units", "8", "--context-frames", "0", "--threshold", "0.5",
                     "--normalization", "running_mean", "--verbose", "0",
                     "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "trained speech-commands (rc, beta 0.2)" in out and "ms)" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["context_frames"] == 0 and summary["config"]["train_size"] > 0
    assert summary["test"]["sequence_length"] == 98
    assert 1 <= summary["epochs_run"] <= 2 and summary["recipe"]["global_clipnorm"] == 0.25
    # The default recipe augments the training split; the front end travels with the model.
    assert summary["recipe"]["augment"]["copies"] == 2
    front = json.loads((run / "front_end.json").read_text())
    assert front["normalization"] == "running_mean" and front["context_frames"] == 0

    assert cli.main(["evaluate", "--task", "speech-commands", "--data", str(root),
                     "--model", str(run / "model.keras"), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "mean_spike_time", "mean_spike_time_ms", "num_sequences"):
        assert evaluated[key] == pytest.approx(summary["test"][key])

    sweep_dir = tmp_path / "sweep"
    assert cli.main(["sweep", "--task", "speech-commands", "--data", str(root),
                     "--model", str(run / "model.keras"), "--thresholds", "0.4,0.5,0.99",
                     "--out", str(sweep_dir)]) == 0
    table = capsys.readouterr().out
    assert "frames read" in table and "ms of audio" in table
    data = json.loads((sweep_dir / "sweep.json").read_text())
    (points,) = data["curves"].values()
    assert [p["threshold"] for p in points] == [0.4, 0.5, 0.99]
    for p in points:
        assert p["mean_spike_time_ms"] == pytest.approx(25 + 10 * (p["mean_spike_time"] - 1))
    # The sweep at the trained threshold agrees with the saved summary's evaluation.
    assert points[1]["accuracy"] == pytest.approx(summary["test"]["accuracy"])
    assert points[1]["mean_spike_time"] == pytest.approx(summary["test"]["mean_spike_time"])
    assert data["num_sequences"] == summary["test"]["num_sequences"]
    assert np.isfinite(points[2]["mean_spike_time"])

    # Threshold schedules: fitted on the folder's validation split, read on its test split.
    assert cli.main(["sweep", "--task", "speech-commands", "--data", str(root),
                     "--model", str(run / "model.keras"), "--thresholds", "0.4,0.5",
                     "--schedule", "--out", str(tmp_path / "sched")]) == 0
    capsys.readouterr()
    scheduled = json.loads((tmp_path / "sched" / "sweep.json").read_text())["curves"]
    scheduled = scheduled["run schedule"]
    assert scheduled and all(len(p["threshold"]) == 98 for p in scheduled)
    assert all("mean_spike_time_ms" in p and "val_accuracy" in p for p in scheduled)
    budget = scheduled[-1]["val_mean_spike_time"]
    assert cli.main(["evaluate", "--task", "speech-commands", "--data", str(root),
                     "--model", str(run / "model.keras"), "--fit-schedule", str(budget),
                     "--save-schedule", str(tmp_path / "s.json"), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["schedule"]["validation"]["mean_spike_time"] <= budget
    assert cli.main(["evaluate", "--task", "speech-commands", "--data", str(root),
                     "--model", str(run / "model.keras"), "--threshold-schedule",
                     str(tmp_path / "s.json"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "mean_spike_time", "mean_spike_time_ms", "threshold"):
        assert again[key] == fitted[key]


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "two-sequence", "--data", "somewhere"],
     "--data does not apply to the 'two-sequence' task; it applies to: speech-commands."),
    (["train", "--task", "spotting", "--context-frames", "3"],
     "--context-frames does not apply to the 'spotting' task"),
    (["evaluate", "--task", "spotting", "--model", "m.keras", "--data", "somewhere"],
     "--data does not apply to the 'spotting' task"),
    (["sweep", "--task", "spotting", "--model", "m.keras", "--data", "somewhere"],
     "--data does not apply to the 'spotting' task"),
])
def test_a_flag_that_does_not_apply_to_the_task_is_an_error(argv, message, tmp_path, capsys):
    assert cli.main(argv + ["--out", str(tmp_path / "r")] if argv[0] != "evaluate"
                    else argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="needs espeak-ng and sox")
def test_speech_commands_trains_through_the_common_path_with_its_flags(tmp_path, capsys):
    """--train-size, --val-size, --test-size, --deterministic and --no-backup apply, and the
    non-finite-loss guard runs, as for every task."""
    import keras

    from rc_keras.datasets import synthesize_keywords

    root = tmp_path / "data"
    synthesize_keywords(root, words=["yes", "no"], voices=4, clips_per_voice=2, seed=1,
                        workers=2)
    run = tmp_path / "run"

    class NoBackup(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            assert not (run / "backup").exists()

    summary = cli.train("speech-commands", run, data_root=root, epochs=1, units=4,
                        context_frames=0, train_size=5, val_size=2, test_size=2,
                        backup=False, deterministic=True, verbose=0, callbacks=[NoBackup()])
    assert summary["config"]["train_size"] == 5 and summary["config"]["val_size"] == 2
    assert summary["test"]["num_sequences"] == 2 and summary["config"]["deterministic"]
    assert summary["config"]["context_frames"] == 0 and summary["recipe"]["best_epoch"] == 0
    assert (run / "last_good.weights.h5").is_file()  # StopOnNonFiniteLoss ran
    assert cli.main(["train", "--task", "speech-commands", "--data", str(root),
                     "--train-size", "500", "--out", str(tmp_path / "r2")]) == 2
    assert "the train split of" in capsys.readouterr().err

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import cli, tasks, tradeoff


# ---------------------------------------------------------------------- tasks
def test_task_registry_and_split_seeds():
    assert {"spotting", "two-sequence"} <= set(tasks.task_names())
    task = tasks.get_task("spotting")
    x_train, _ = task.data("train", 50, seed=0)
    x_val, _ = task.data("val", 50, seed=0)
    x_test, _ = task.data("test", 50, seed=0)
    x_train_1, _ = task.data("train", 50, seed=1)
    assert not np.array_equal(x_train, x_val) and not np.array_equal(x_val, x_test)
    assert not np.array_equal(x_train, x_train_1)
    np.testing.assert_array_equal(x_test, task.data("test", 50, seed=0)[0])
    seeds = {tasks.split_seed(s, r) for s in tasks.SPLITS for r in range(5)}
    assert len(seeds) == 15
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        tasks.get_task("nope")


def test_build_model_defaults_and_overrides():
    model = tasks.build_model("two-sequence")
    assert model.cell.units == 125 and model.threshold == 0.9
    assert model.loss.beta == pytest.approx(0.1)
    model = tasks.build_model("spotting", units=8, threshold=0.8, beta=0.0, training_mode="eos")
    assert model.cell.units == 8 and model.threshold == 0.8 and model.training_mode == "eos"
    x, y = tasks.get_task("spotting").data("test", 16)
    out = model.predict(x, verbose=0)
    assert out["probs"].shape == (16, 2)
    with pytest.raises(ValueError, match="beta"):
        tasks.build_model("spotting", beta=-1)


# ---------------------------------------------------------------------- commands
def test_train_evaluate_sweep_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--task", "spotting", "--epochs", "1", "--train-size", "128",
                     "--val-size", "32", "--test-size", "64", "--units", "8", "--beta", "0.05",
                     "--verbose", "0", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "test: accuracy" in out and "mean spike time" in out and "no-spike rate" in out
    assert (run / "model.keras").is_file()
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 1 and "val_spike_accuracy" in history
    summary = json.loads((run / "summary.json").read_text())
    assert summary["config"]["units"] == 8 and summary["test"]["num_sequences"] == 64

    model_path = str(run / "model.keras")
    assert cli.main(["evaluate", "--model", model_path, "--task", "spotting",
                     "--test-size", "64", "--threshold", "0.6", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == 0.6 and result["num_sequences"] == 64
    assert 0.0 <= result["accuracy"] <= 1.0 and 1.0 <= result["mean_spike_time"] <= 25.0
    assert 0.0 <= result["no_spike_rate"] <= 1.0

    assert cli.main(["evaluate", "--model", model_path, "--task", "spotting",
                     "--test-size", "64"]) == 0
    assert "accuracy" in capsys.readouterr().out

    sweep_dir = tmp_path / "sweep"
    assert cli.main(["sweep", "--model", model_path, "--task", "spotting", "--test-size", "64",
                     "--thresholds", "0.55,0.6,0.9", "--out", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "| θ | accuracy | mean spike time (steps read) | no-spike rate |" in out
    data = json.loads((sweep_dir / "sweep.json").read_text())
    (points,) = data["curves"].values()
    assert [p["threshold"] for p in points] == [0.55, 0.6, 0.9]
    assert (sweep_dir / "sweep.png").read_bytes().startswith(b"\x89PNG")
    # The sweep at the saved threshold agrees with evaluate at that threshold.
    ev = cli.evaluate(model_path, "spotting", threshold=0.6, test_size=64)
    assert points[1]["accuracy"] == pytest.approx(ev["accuracy"])
    assert points[1]["mean_spike_time"] == pytest.approx(ev["mean_spike_time"])

    # Schedules fitted on the validation split, read on the test split, beside the constants.
    result = cli.sweep(model_path, "spotting", [0.6, 0.9], test_size=64, schedule=True)
    assert set(result["curves"]) == {"run", "run schedule"} and result["frontier"]
    scheduled = result["curves"]["run schedule"]
    assert 1 <= len(scheduled) <= 12
    assert all(len(p["threshold"]) == 25 and p["theta_0"] >= p["theta_end"] for p in scheduled)
    x_test, y_test = tasks.get_task("spotting").data("test", 64, 0)
    (check,) = tradeoff.sweep_from_probabilities(
        tradeoff.all_step_probabilities(keras.models.load_model(model_path), x_test), y_test,
        [scheduled[0]["threshold"]])
    assert check["accuracy"] == scheduled[0]["accuracy"]

    # Two models: a composite frontier.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(model_path, other / "model.keras")
    result = cli.sweep([model_path, str(other / "model.keras")], "spotting", [0.6, 0.9],
                       test_size=32)
    assert set(result["curves"]) == {"run", "other"} and result["frontier"]


def test_demo_quick(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--verbose", "0", "--out", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    assert "demo done" in printed and "mean spike time" in printed
    report = json.loads((out_dir / "demo_report.json").read_text())
    assert report["quick"] is True
    assert set(report["test"]) >= {"accuracy", "mean_spike_time", "no_spike_rate"}
    for name in ("model.keras", "saved_model/saved_model.pb", "step_float32.tflite",
                 "step_int8.tflite", "step_int16x8.tflite", "report.json"):
        assert (out_dir / name).exists(), name
    rows = {(r["model"], r["runtime"]): r for r in report["exports"]["verify"]["rows"]}
    # The float32 step model answers exactly like Keras in both interpreters.
    for runtime in ("litert", "tflm"):
        float_row = next(r for (m, rt), r in rows.items() if "float32" in m and rt == runtime)
        assert float_row["class_agreement"] == 1.0 and float_row["step_exact"] == 1.0
    assert len(report["threshold_sweep"]) == len(cli.DEFAULT_THRESHOLDS)


def test_export_command_writes_the_bundle(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert cli.main(["train", "--task", "spotting", "--epochs", "1", "--train-size", "256",
                     "--units", "8", "--verbose", "0", "--out", str(run_dir)]) == 0
    out_dir = tmp_path / "bundle"
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out", str(out_dir),
                     "--int8", "--int16x8", "--verify", "--task", "spotting"]) == 0
    table = capsys.readouterr().out
    assert "class agree" in table and "step_int16x8.tflite" in table
    assert (out_dir / "step_int8.tflite").is_file() and (out_dir / "rc_model_data.c").is_file()
    assert (out_dir / "step_int16x8.tflite").is_file()
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out", str(out_dir),
                     "--int8"]) == 2
    assert "--int8/--int16x8 need --calibration" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "c16"), "--int16x8", "--c-array", "int16x8", "--task",
                     "spotting"]) == 0
    assert json.loads((tmp_path / "c16" / "report.json").read_text())["c_array"]["model"] == \
        "int16x8"
    assert "typedef int16_t rc_model_q_t;" in (tmp_path / "c16" / "rc_model_data.h").read_text()
    capsys.readouterr()
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "c8"), "--int8", "--c-array", "int16x8", "--task",
                     "spotting"]) != 0
    assert "c_array='int16x8' needs that model exported too" in capsys.readouterr().err
    # The int8-exact twin: the exported Keras model is the quantization-aware one.
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "qat"), "--quantization-aware", "--verify", "--task",
                     "spotting"]) == 0
    capsys.readouterr()
    twin = keras.models.load_model(tmp_path / "qat" / "model.keras")
    assert rk.quantization.is_quantization_aware(twin)
    rows = json.loads((tmp_path / "qat" / "report.json").read_text())["verify"]["rows"]
    assert {r["model"] for r in rows} >= {"step_int8.tflite", "step_float32.tflite"}
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "q16"), "--quantization-aware", "--int16x8", "--task",
                     "spotting"]) == 2
    assert "--quantization-aware exports int8 only" in capsys.readouterr().err
    # Fine-tuned on given training data: the twin's weights move, its int8 still agrees.
    x, y = tasks.get_task("spotting").data("train", 128, seed=1)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "qat1"), "--quantization-aware", "--qat-epochs", "1",
                     "--train-data", str(tmp_path / "train.npz"), "--task", "spotting"]) == 0
    tuned = keras.models.load_model(tmp_path / "qat1" / "model.keras")
    assert not np.allclose(tuned.cell.get_weights()[0], twin.cell.get_weights()[0])
    capsys.readouterr()
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "q2"), "--qat-epochs", "1", "--task", "spotting"]) == 2
    assert "add --quantization-aware" in capsys.readouterr().err
    np.savez(tmp_path / "x_only.npz", x=x)
    assert cli.main(["export", "--model", str(run_dir / "model.keras"), "--out",
                     str(tmp_path / "q3"), "--quantization-aware", "--qat-epochs", "1",
                     "--train-data", str(tmp_path / "x_only.npz"), "--task", "spotting"]) == 2
    assert "must hold labels" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "nope", "--out", "x"], "unknown task 'nope'"),
    (["train", "--task", "spotting", "--threshold", "1.5", "--out", "x"],
     "threshold must lie strictly between 0 and 1"),
    (["train", "--task", "spotting", "--threshold", "0", "--out", "x"],
     "threshold must lie strictly between 0 and 1"),
    (["train", "--task", "spotting", "--beta", "-0.1", "--out", "x"],
     "beta must be a finite number >= 0"),
    (["evaluate", "--model", "missing.keras", "--task", "spotting"],
     "model file 'missing.keras' does not exist"),
    (["sweep", "--model", "missing.keras", "--task", "spotting", "--out", "x"],
     "does not exist"),
    (["sweep", "--model", "m.keras", "--task", "spotting", "--thresholds", "0.5,1.2",
      "--out", "x"], "threshold must lie strictly between 0 and 1"),
    (["train", "--task", "spotting"], "required: --out"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert message in lines[0] and "error" in lines[0]
    assert "Traceback" not in captured.err
    assert not (tmp_path / "x").exists()


def test_unreadable_model_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    assert cli.main(["evaluate", "--model", str(bad), "--task", "spotting"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a Keras archive" in err[0]


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out


def test_console_script_help():
    script = shutil.which("rc-keras") or str(Path(sys.executable).parent / "rc-keras")
    assert os.path.exists(script), "the rc-keras console script is not installed"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "sweep", "demo"):
        assert command in result.stdout

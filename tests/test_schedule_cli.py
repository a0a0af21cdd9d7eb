"""Threshold schedules wherever they enter: `rc-keras evaluate`'s schedule flags, schedule
files, and the checks of every entry point (bad values, lengths, monotone families)."""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import rc_keras as rk
from rc_keras import cli, tasks, tradeoff, validation
from rc_keras.workflows import schedules

DEMO = str(Path(__file__).resolve().parents[1] / "saved_models" / "demo" / "model.keras")
# The demo model answers the spotting task: 25 steps, 2 classes (theta must exceed 0.5).
STEPS = 25
EVAL = ["evaluate", "--model", DEMO, "--task", "spotting", "--test-size", "300"]


def _probs(model, split, size=300):
    x, y = tasks.get_task("spotting").data(split, size, 0)
    return tradeoff.all_step_probabilities(model, x), y


def test_evaluate_fits_on_validation_reads_on_test_and_round_trips_the_file(tmp_path, capsys):
    path = tmp_path / "schedule.json"
    assert cli.main(EVAL + ["--fit-schedule", "18", "--save-schedule", str(path), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    record = json.loads(path.read_text())
    assert record["monotone"] is True and len(record["threshold"]) == STEPS
    assert fitted["threshold"] == record["threshold"]
    # The schedule is the fitter's choice on the validation split at that budget ...
    model = keras.models.load_model(DEMO)
    val_probs, y_val = _probs(model, "val")
    expected = tradeoff.fit_threshold_schedule(val_probs, y_val, budget=18)
    assert record["threshold"] == [validation.float32_value(v) for v in expected["threshold"]]
    assert fitted["schedule"]["validation"] == {"accuracy": expected["accuracy"],
                                                "mean_spike_time": expected["mean_spike_time"]}
    assert expected["mean_spike_time"] <= 18
    assert fitted["schedule"]["constant_on_validation"]["threshold"] == \
        expected["constant"]["threshold"][0]
    # ... and the result is the halting model's answer on the test split with it.
    test_probs, y_test = _probs(model, "test")
    (point,) = tradeoff.sweep_from_probabilities(test_probs, y_test, [record["threshold"]])
    assert fitted["accuracy"] == pytest.approx(point["accuracy"])
    assert fitted["mean_spike_time"] == pytest.approx(point["mean_spike_time"])
    # The file gives the same answers, and the summary line names the schedule.
    assert cli.main(EVAL + ["--threshold-schedule", str(path), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["accuracy"], again["mean_spike_time"]) == (fitted["accuracy"],
                                                             fitted["mean_spike_time"])
    assert again["schedule"] == {"source": str(path), "monotone": True}
    assert cli.main(EVAL + ["--threshold-schedule", str(path)]) == 0
    assert f"theta schedule {record['threshold'][0]:g}→{record['threshold'][-1]:g}" in \
        capsys.readouterr().out


def test_a_plain_list_file_holds_its_last_value(tmp_path, capsys):
    """A 3-value list: steps 2..24 use its last value, as the model does."""
    path = tmp_path / "short.json"
    path.write_text("[0.99, 0.95, 0.9]")
    assert cli.main(EVAL + ["--threshold-schedule", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == [0.99, 0.95, 0.9]
    model = keras.models.load_model(DEMO)
    test_probs, y_test = _probs(model, "test")
    (point,) = tradeoff.sweep_from_probabilities(test_probs, y_test, [[0.99, 0.95] + [0.9] * 23])
    assert result["accuracy"] == pytest.approx(point["accuracy"])
    assert result["mean_spike_time"] == pytest.approx(point["mean_spike_time"])


@pytest.mark.parametrize("content, message", [
    ("[0.99, NaN, 0.9]", r"--threshold-schedule must lie strictly between 0 and 1; received "
                         r"nan \(schedule value at step 1\)"),
    ("[0.99, 1.2]", r"strictly between 0 and 1; received 1.2 \(schedule value at step 1\)"),
    ("[0.99, 0.0]", r"strictly between 0 and 1; received 0.0 \(schedule value at step 1\)"),
    ("[0.99, 0.5]", r"--threshold-schedule must be above 0.5 for this model; received 0.5.*"
                    r"\(schedule value at step 1\)"),
    ("[]", r"--threshold-schedule schedule is empty"),
    (json.dumps([0.9] * 26), r"--threshold-schedule schedule holds 26 values, but "
                                           r"the sequences have 25 steps"),
    ('{"threshold": [0.9, 0.95], "monotone": true}',
     r"--threshold-schedule must not increase over time for the monotone family; the value at "
     r"step 1 \(0.95\) is above the value at step 0 \(0.9\)"),
    ('{"threshold": [0.9], "monotone": "yes"}', r"\"monotone\" must be true or false"),
    ('{"theta": [0.9]}', r"holds an object without \"threshold\""),
    ('"0.9"', r"must hold a list of per-step thresholds"),
    ('["0.9"]', r"must hold numbers only"),
    ("[0.9,", r"is not valid JSON"),
])
def test_bad_schedule_files_name_the_flag(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert cli.main(EVAL + ["--threshold-schedule", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rc-keras evaluate: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_a_rising_list_is_allowed_when_no_monotone_family_is_declared(tmp_path, capsys):
    path = tmp_path / "rising.json"
    path.write_text('{"threshold": [0.9, 0.95]}')
    assert cli.main(EVAL + ["--threshold-schedule", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == [0.9, 0.95]


@pytest.mark.parametrize("extra, message", [
    (["--threshold", "0.9", "--fit-schedule", "10"], "give --threshold or --fit-schedule, not both"),
    (["--threshold-schedule", "x.json", "--fit-schedule", "10"],
     "give --threshold-schedule or --fit-schedule, not both"),
    (["--save-schedule", "x.json"], "--save-schedule needs a schedule: pass --fit-schedule"),
    (["--threshold-schedule", "missing.json"], "--threshold-schedule 'missing.json' is not a file"),
    (["--fit-schedule", "0"], "--fit-schedule: expected a mean spike time budget > 0"),
    (["--fit-schedule", "soon"], "--fit-schedule: expected a mean spike time budget > 0"),
    (["--fit-schedule", "0.5"], "--fit-schedule 0.5 is below every candidate's mean spike time"),
])
def test_conflicting_or_impossible_schedule_flags(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert cli.main(EVAL + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


# ----------------------------------------------------------------------------- library
def test_length_and_monotone_checks_of_the_validator():
    assert validation.check_threshold_values([0.9, 0.8], max_length=2) == (0.9, 0.8)
    with pytest.raises(ValueError, match=r"`threshold` schedule holds 3 values, but the sequences "
                                         r"have 2 steps"):
        validation.check_threshold_values([0.9, 0.8, 0.7], max_length=2)
    assert validation.check_threshold_values([0.9, 0.9, 0.8], non_increasing=True) == \
        (0.9, 0.9, 0.8)
    with pytest.raises(ValueError, match=r"must not increase over time for a monotone schedule; "
                                         r"the value at step 2 \(0.95\)"):
        validation.check_threshold_values([0.9, 0.8, 0.95], non_increasing=True)
    # A scalar is a constant: monotone, and fits every length.
    assert validation.check_threshold_values(0.9, max_length=1, non_increasing=True) == 0.9


def test_exponential_family_refuses_a_rising_schedule_when_monotone():
    assert tradeoff.exponential_schedule(0.8, 0.9, 2.0, 3)[0] == pytest.approx(0.8)
    with pytest.raises(ValueError, match=r"`theta_0` \(0.8\) must be >= `theta_end` \(0.9\) for "
                                         r"a monotone"):
        tradeoff.exponential_schedule(0.8, 0.9, 2.0, 3, monotone=True)
    with pytest.raises(ValueError, match=r"`theta_end` must lie strictly between 0 and 1"):
        tradeoff.exponential_schedule(0.9, float("nan"), 2.0, 3)


@pytest.mark.parametrize("bad, message", [
    ([0.9, float("nan")], r"received nan \(schedule value at step 1\)"),
    ([0.9, 1.5], r"received 1.5 \(schedule value at step 1\)"),
    ([0.9, -0.1], r"received -0.1 \(schedule value at step 1\)"),
    ([], r"schedule is empty"),
])
def test_every_numpy_entry_point_refuses_a_bad_schedule(bad, message):
    probs = np.full((2, 3, 2), 0.5, np.float32)
    with pytest.raises(ValueError, match=message):
        tradeoff.first_crossing(probs, bad)
    with pytest.raises(ValueError, match=message):
        tradeoff.sweep_from_probabilities(probs, [0, 1], [0.9, bad])
    with pytest.raises(ValueError, match=message):
        rk.RCModel(keras.layers.LSTMCell(2), keras.layers.Dense(2, activation="softmax"),
                   threshold=bad)


def test_the_tflite_runner_refuses_a_bad_schedule_in_its_sidecar(tmp_path):
    from rc_keras import export

    model = keras.models.load_model(DEMO)
    export.export_tflite_step(model, tmp_path / "s.tflite")
    sidecar = tmp_path / "s.json"
    record = json.loads(sidecar.read_text())
    record["threshold"] = [0.99, float("nan")]
    sidecar.write_text(json.dumps(record))
    x, _ = tasks.get_task("spotting").data("test", 2, 0)
    with pytest.raises(ValueError, match=r"received nan \(schedule value at step 1\)"):
        export.run_tflite_stream(tmp_path / "s.tflite", x)
    with pytest.raises(ValueError, match=r"received 1.5 \(schedule value at step 0\)"):
        export.run_tflite_stream(tmp_path / "s.tflite", x, threshold=[1.5])


def test_check_schedule_names_the_flag_it_is_given():
    model = keras.models.load_model(DEMO)
    with pytest.raises(ValueError, match=r"^`--fit-schedule` schedule holds 26 values"):
        schedules.check_schedule([0.9] * 26, model, STEPS, flag="--fit-schedule")

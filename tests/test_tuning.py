import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import pytest

from rc_keras import cli, convergence, tasks, tradeoff, tuning

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tuning" / "search_beta_theta.py"
THRESHOLDS = (0.6, 0.8, 0.9, 0.99)
# Tiny searches: one training step per epoch (64 sequences, batch 64), LSTM 4-8.
TINY = dict(train_size=64, val_size=64, test_size=64, thresholds=THRESHOLDS,
            space=tuning.SearchSpace(beta=(0.0, 0.2), units=(4, 8)))
TINY_ARGS = ["--task", "spotting", "--train-size", "64", "--val-size", "64", "--test-size", "64",
             "--thresholds", "0.6,0.8,0.9,0.99", "--beta-range", "0,0.2", "--units-range", "4,8"]


def _point(accuracy, time_, threshold=0.9):
    return {"threshold": threshold, "accuracy": accuracy, "mean_spike_time": time_,
            "no_spike_rate": 0.0}


def _dominates(q, p):
    return (q["accuracy"] >= p["accuracy"] and q["mean_spike_time"] <= p["mean_spike_time"]
            and (q["accuracy"] > p["accuracy"] or q["mean_spike_time"] < p["mean_spike_time"]))


def _check_front(front, records):
    """The front has no dominated point, misses no non-dominated one, repeats none."""
    points = [dict(p, curve=r["trial_id"]) for r in records for p in r["curve"]]
    pairs = [(p["accuracy"], p["mean_spike_time"]) for p in front]
    assert len(set(pairs)) == len(pairs)
    for p in front:
        assert any(p["curve"] == q["curve"] and p["threshold"] == q["threshold"]
                   and p["accuracy"] == q["accuracy"] for q in points), "front point not recorded"
        assert not any(_dominates(q, p) for q in points), f"dominated point on the front: {p}"
    for p in points:
        if not any(_dominates(q, p) for q in points):
            assert (p["accuracy"], p["mean_spike_time"]) in pairs, f"front misses {p}"


# ---------------------------------------------------------------------- objectives
def test_objectives_on_a_hand_made_curve():
    curve = [_point(0.70, 5.0, 0.6), _point(0.80, 10.0, 0.8), _point(0.90, 20.0, 0.9),
             _point(0.80, 12.0, 0.85)]
    budget = tuning.make_objective("budget", sequence_length=40, max_spike_time=12)
    assert budget.keras_objective().name == "budget_accuracy"
    assert budget.keras_objective().direction == "max"
    # 0.80 is reached at 10 and at 12 steps: the faster point wins.
    assert budget.best_point(curve)["threshold"] == 0.8
    assert budget.score(curve) == pytest.approx(0.80)
    assert budget.metrics(curve)["met_budget"] == 1.0
    # No point within 4 steps: the fastest is 1 step over, so -(5 - 4) / 40.
    tight = tuning.make_objective("budget", sequence_length=40, max_spike_time=4)
    assert tight.best_point(curve) is None
    assert tight.score(curve) == pytest.approx(-1.0 / 40)
    assert tight.metrics(curve) == {"budget_accuracy": pytest.approx(-0.025), "met_budget": 0.0}

    weighted = tuning.make_objective("weighted", sequence_length=40, weight=1.0)
    # 0.70 - 5/40 = 0.575; 0.80 - 10/40 = 0.55; 0.90 - 20/40 = 0.40.
    assert weighted.score(curve) == pytest.approx(0.575)
    assert weighted.best_point(curve)["threshold"] == 0.6
    assert weighted.keras_objective().name == "weighted_score"
    # With a budget as well, a curve outside it scores below -weight (any point inside).
    assert tuning.make_objective("weighted", sequence_length=40, weight=1.0,
                                 max_spike_time=2).score(curve) == pytest.approx(-1.0 - 3 / 40)

    assert tuning.parse_spike_time("150ms", step_ms=10) == 15.0
    assert tuning.parse_spike_time("12 steps") == 12.0
    assert tuning.parse_spike_time(7) == 7.0


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="`objective` must be one of .*'fastest'"):
        tuning.make_objective("fastest", sequence_length=25)
    with pytest.raises(ValueError, match="`max_spike_time` is required"):
        tuning.make_objective("budget", sequence_length=25)
    with pytest.raises(ValueError, match="0.5 steps.*earliest possible answer.*no trial can meet"):
        tuning.make_objective("budget", sequence_length=25, max_spike_time=0.5)
    with pytest.raises(ValueError, match="in ms.*step_ms"):
        tuning.make_objective("budget", sequence_length=25, max_spike_time="150ms")
    with pytest.raises(ValueError, match="`max_spike_time` must be a number of steps"):
        tuning.parse_spike_time("soon")
    with pytest.raises(ValueError, match="`weight` must be a finite number >= 0"):
        tuning.make_objective("weighted", sequence_length=25, weight=-1)
    with pytest.raises(ValueError, match="`beta` is inverted: low 0.3 > high 0.1"):
        tuning.SearchSpace(beta=(0.3, 0.1))
    with pytest.raises(ValueError, match="`beta` must be a range of two values.*empty"):
        tuning.SearchSpace(beta=())
    with pytest.raises(ValueError, match="`units` is inverted: low 16 > high 8"):
        tuning.SearchSpace(units=(16, 8))
    with pytest.raises(ValueError, match="`units` must hold integers"):
        tuning.SearchSpace(units=(4.5, 8))
    with pytest.raises(ValueError, match="`learning_rate` must hold values > 0"):
        tuning.SearchSpace(learning_rate=(0.0, 0.1))
    with pytest.raises(ValueError, match="`beta` must lie at or above 0"):
        tuning.SearchSpace(beta=(-0.1, 0.1))
    with pytest.raises(ValueError, match="`thresholds` is empty"):
        tuning.check_thresholds([])
    with pytest.raises(ValueError, match="`thresholds` must lie strictly between 0 and 1"):
        tuning.check_thresholds([0.9, 1.0])
    with pytest.raises(ValueError, match="`tuner` must be one of"):
        tuning.run_search("spotting", tmp_path / "s", tuner="grid", **TINY)
    with pytest.raises(ValueError, match="`max_trials` must be a positive integer; received 0"):
        tuning.run_search("spotting", tmp_path / "s", max_trials=0, **TINY)
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        tuning.run_search("nope", tmp_path / "s", **TINY)
    # The command line reports the same errors in one line, with exit status 2.
    assert cli.main(["tune", *TINY_ARGS, "--directory", str(tmp_path / "c"),
                     "--beta-range", "0.3,0.1"]) == 2
    assert cli.main(["tune", *TINY_ARGS, "--directory", str(tmp_path / "c"),
                     "--objective", "fastest"]) == 2
    assert not (tmp_path / "c" / "rc_search").exists()  # nothing ran


# ---------------------------------------------------------------------- searches
@pytest.mark.parametrize("tuner_name", tuning.TUNERS)
def test_tiny_search_per_tuner(tmp_path, tuner_name):
    hyperband = tuner_name == "hyperband"
    # Hyperband with max_epochs 2, factor 2: two 1-epoch models, then the better one
    # continued for a second epoch from its checkpoint (3 trials).
    max_trials = 3 if hyperband else 2
    result = tuning.run_search("spotting", tmp_path, tuner=tuner_name, max_trials=max_trials,
                               objective="weighted", weight=0.5, epochs=2 if hyperband else 1,
                               export=not hyperband, log=lambda *_: None, **TINY)
    records = result["trials"]
    assert result["num_trials"] == len(records) == max_trials
    objective = tuning.make_objective("weighted", sequence_length=25, weight=0.5)
    search_tuner = tuning.make_tuner(
        tuning.RCHyperModel("spotting", objective, space=TINY["space"], thresholds=THRESHOLDS),
        tuner_name, max_trials=max_trials, directory=tmp_path, max_epochs=2)
    for record in records:
        assert [p["threshold"] for p in record["curve"]] == list(THRESHOLDS)
        assert 0.0 <= record["hyperparameters"]["beta"] <= 0.2
        assert 4 <= record["hyperparameters"]["units"] <= 8
        # The reported objective is the curve's score, and the oracle holds that value.
        assert record["metrics"]["weighted_score"] == pytest.approx(objective.score(record["curve"]))
        trial = search_tuner.oracle.trials[record["trial_id"]]
        assert trial.status == "COMPLETED"
        assert trial.score == pytest.approx(record["metrics"]["weighted_score"])
    _check_front(result["front"], records)
    best_trial = search_tuner.oracle.get_best_trials(1)[0]
    # The oracle's best (ties broken as the oracle breaks them).
    assert search_tuner.oracle.trials[result["best"]["trial_id"]].score == best_trial.score
    assert result["best"]["objective_value"] == pytest.approx(
        max(r["metrics"]["weighted_score"] for r in records))
    assert Path(result["png"]).read_bytes().startswith(b"\x89PNG")
    assert "| trial | beta | units | θ |" in (tmp_path / "pareto_front.md").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["num_trials"] == max_trials
    if hyperband:
        continued = [r for r in records if "tuner/trial_id" in r["hyperparameters"]]
        assert len(continued) == 1 and continued[0]["hyperparameters"]["tuner/epochs"] == 2
    else:
        # The exported model is the best trial's checkpoint, with its theta set: its sweep
        # on the validation data reproduces the recorded point.
        model = keras.models.load_model(result["best"]["model_path"])
        assert model.threshold == result["best"]["threshold"]
        x_val, y_val = tasks.get_task("spotting").data("val", 64, 0)
        (point,) = tradeoff.threshold_sweep(model, x_val, y_val, [model.threshold])
        assert point["accuracy"] == pytest.approx(result["best"]["val_accuracy"])
        assert point["mean_spike_time"] == pytest.approx(result["best"]["val_mean_spike_time"])


def test_budget_no_trial_meets_is_a_clear_result(tmp_path, capsys):
    # theta 0.999 on a barely trained model: nobody spikes, every answer takes 25 steps.
    status = cli.main(["tune", *TINY_ARGS, "--thresholds", "0.999", "--directory",
                       str(tmp_path), "--max-trials", "1", "--epochs", "1", "--objective",
                       "budget", "--max-spike-time", "2"])
    captured = capsys.readouterr()
    assert status == 1
    assert "rc-keras tune: no trial met the budget: the budget is 2 steps" in captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["best"] is None and "no trial met the budget" in report["message"]
    assert report["trials"][0]["metrics"]["met_budget"] == 0.0
    assert not (tmp_path / "best_model.keras").exists()
    # Resuming with other settings is refused instead of mixing two searches.
    with pytest.raises(ValueError, match="holds a search with other settings.*objective"):
        tuning.run_search("spotting", tmp_path, max_trials=1, epochs=1, **TINY)


def test_patience_stops_a_trial_whose_objective_stops_improving(tmp_path):
    # theta 0.999 on a barely trained model: nobody spikes, so the budget score stays at
    # its floor every epoch; patience 1 ends a trial after its second epoch of four.
    tiny = dict(TINY, thresholds=(0.999,))
    tuning.run_search("spotting", tmp_path, tuner="random", max_trials=1, objective="budget",
                      max_spike_time=2, epochs=4, patience=1, export=False,
                      log=lambda *_: None, **tiny)
    assert json.loads((tmp_path / "search_config.json").read_text())["patience"] == 1
    # The rule inside a trial: the objective is in the epoch logs before the stop reads it.
    objective = tuning.make_objective("budget", sequence_length=25, max_spike_time=2)
    hypermodel = tuning.RCHyperModel("spotting", objective, space=TINY["space"],
                                     thresholds=(0.999,))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    task = tasks.get_task("spotting")
    epochs = keras.callbacks.History()
    hypermodel.fit(hp, model, *task.data("train", 64, 0), epochs=4,
                   validation_data=task.data("val", 64, 0),
                   callbacks=[convergence.early_stopping(objective.metric_name, 1), epochs])
    assert epochs.epoch == [0, 1]
    # A search saved with patience resumes only with the same patience.
    with pytest.raises(ValueError, match="other settings.*patience"):
        tuning.run_search("spotting", tmp_path, tuner="random", max_trials=1,
                          objective="budget", max_spike_time=2, epochs=4, patience=2, **tiny)


# ---------------------------------------------------------------------- processes
def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)
    env.update(extra)
    return env


def _stop(process):
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _completed(directory):
    done = set()
    for path in Path(directory, "rc_search").glob("trial_*/trial.json"):
        try:
            status = json.loads(path.read_text())["status"]
        except (json.JSONDecodeError, OSError):  # being written right now
            continue
        if status == "COMPLETED":
            done.add(path.parent.name)
    return done


@pytest.mark.large
def test_resume_after_killed_process(tmp_path):
    command = [sys.executable, str(SCRIPT), *TINY_ARGS, "--directory", str(tmp_path),
               "--max-trials", "3", "--epochs", "1"]
    first = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        # Kill once the second trial has started: the first one's end is saved by then.
        while (not (_completed(tmp_path) and len(list(tmp_path.glob("rc_search/trial_*/trial.json")))
                    >= 2) and time.monotonic() < deadline and first.poll() is None):
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
    finally:
        _stop(first)
    done = _completed(tmp_path)
    assert 1 <= len(done) < 3, f"kill after the first trial, not after {sorted(done)}"
    before = {name: (tmp_path / "rc_search" / name / tuning.CURVE_FILE).read_text()
              for name in done}
    second = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        output = second.communicate(timeout=300)[0]
    finally:
        _stop(second)
    assert second.returncode == 0, output[-2000:]
    assert f"resuming with {len(done)} finished" in output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["num_trials"] == 3
    for record in report["trials"]:
        name = f"trial_{record['trial_id']}"
        if name in before:  # finished before the kill: not run again
            assert (tmp_path / "rc_search" / name / tuning.CURVE_FILE).read_text() == before[name]
            assert record["pid"] == first.pid
        else:
            assert record["pid"] == second.pid


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.large
def test_distributed_chief_and_two_workers(tmp_path):
    port = str(_free_port())
    command = [sys.executable, str(SCRIPT), *TINY_ARGS, "--directory", str(tmp_path),
               "--max-trials", "4", "--epochs", "1"]
    processes, logs = {}, {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = _env(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                       KERASTUNER_ORACLE_PORT=port)
            logs[tuner_id] = tmp_path / f"{tuner_id}.log"
            with open(logs[tuner_id], "w") as log:
                processes[tuner_id] = subprocess.Popen(command, env=env, stdout=log,
                                                       stderr=subprocess.STDOUT)
        # Bounded: stop at the first failure, or after the deadline.
        deadline = time.monotonic() + 540
        while time.monotonic() < deadline and any(p.poll() is None for p in processes.values()):
            if any(p.poll() not in (None, 0) for p in processes.values()):
                break
            time.sleep(0.5)
    finally:
        for process in processes.values():
            _stop(process)
    outputs = {tuner_id: path.read_text() for tuner_id, path in logs.items()}
    for tuner_id, process in processes.items():
        assert process.returncode == 0, f"{tuner_id}: {outputs[tuner_id][-2000:]}"
    assert "worker tuner0 done" in outputs["tuner0"] and "worker tuner1 done" in outputs["tuner1"]
    report = json.loads((tmp_path / "report.json").read_text())
    records = report["trials"]
    # Every trial finished, each ran once, on the workers (the chief only serves the oracle).
    assert report["num_trials"] == 4
    assert sorted(r["trial_id"] for r in records) == sorted({r["trial_id"] for r in records})
    assert {r["tuner_id"] for r in records} <= {"tuner0", "tuner1"}
    assert {r["pid"] for r in records} <= {processes["tuner0"].pid, processes["tuner1"].pid}
    # Shared: both workers ran trials of the same search.
    assert {r["tuner_id"] for r in records} == {"tuner0", "tuner1"}
    _check_front(report["front"], records)
    assert (tmp_path / "best_model.keras").is_file()


def test_schedule_search_scores_each_trial_by_its_best_constant_or_schedule(tmp_path):
    result = tuning.run_search("spotting", tmp_path, max_trials=1, objective="budget",
                               max_spike_time=20, epochs=1, log=lambda *_: None, schedule=True,
                               **TINY)
    (record,) = result["trials"]
    constants = [p for p in record["curve"] if not p.get("schedule")]
    scheduled = [p for p in record["curve"] if p.get("schedule")]
    assert [p["threshold"] for p in constants] == list(THRESHOLDS)
    assert scheduled and all(len(p["threshold"]) == 25 for p in scheduled)
    # The schedule points are the fitter's frontier on the same validation data (the
    # exported model is this trial's only epoch).
    model = keras.models.load_model(result["best"]["model_path"])
    x_val, y_val = tasks.get_task("spotting").data("val", 64, 0)
    probs = tradeoff.all_step_probabilities(model, x_val)
    fitted = [p for p in tradeoff.fit_threshold_schedule(probs, y_val) if p["tau"] is not None]
    assert [p["threshold"] for p in scheduled] == [p["threshold"] for p in fitted]
    # The trial's value is the best of both kinds within the budget.
    objective = tuning.make_objective("budget", sequence_length=25, max_spike_time=20)
    best = objective.best_point(record["curve"])
    assert record["metrics"]["budget_accuracy"] == best["accuracy"] == max(
        p["accuracy"] for p in record["curve"] if p["mean_spike_time"] <= 20)
    assert record["metrics"]["budget_accuracy"] >= objective.score(constants)
    # The exported model carries the winning threshold (a schedule or a theta) and
    # reproduces the recorded validation point with it.
    assert result["best"]["threshold"] == best["threshold"]
    expected = tuple(best["threshold"]) if isinstance(best["threshold"], list) else best["threshold"]
    assert model.threshold == expected
    (point,) = tradeoff.threshold_sweep(model, x_val, y_val, [model.threshold])
    assert point["accuracy"] == pytest.approx(result["best"]["val_accuracy"])
    assert point["mean_spike_time"] == pytest.approx(result["best"]["val_mean_spike_time"])
    if isinstance(best["threshold"], list):
        assert record["metrics"]["best_is_schedule"] == 1.0
        assert "schedule " in (tmp_path / "pareto_front.md").read_text()

"""Beta/theta searches end to end: tuner, search, Pareto front, best model, plot.

```python
from rc_keras import tuning
result = tuning.run_search("two-sequence", "runs/tune", tuner="bayesian", max_trials=12,
                           objective="budget", max_spike_time=15, epochs=3)
print(result["front_table"])
```

Re-running with the same ``directory`` resumes the search (KerasTuner's
``overwrite=False``): finished trials are kept, a trial that was running when the
process died is run again, and only the missing trials run. For a distributed search,
start the same command once with ``KERASTUNER_TUNER_ID=chief`` and once per worker
(``tuner0``, ``tuner1``...), all with ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` set and a shared ``directory``; the chief serves the oracle and
writes the report when every trial has finished.
"""

import json
import os
from pathlib import Path

import keras
import keras_tuner
import numpy as np

from rc_keras import convergence, tasks, tradeoff, validation
from rc_keras.tuning.hypermodel import (CURVE_FILE, DEFAULT_THRESHOLDS, RCHyperModel,
                                        SearchSpace, check_thresholds)
from rc_keras.tuning.objectives import make_objective

TUNERS = ("random", "bayesian", "hyperband")
PROJECT_NAME = "rc_search"
CONFIG_FILE = "search_config.json"
NO_TRIAL_MET_BUDGET = "no trial met the budget"


def is_worker():
    """True in a distributed search's worker (KERASTUNER_* set, tuner id not chief)."""
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "")
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in tuner_id


def make_tuner(hypermodel, tuner="random", max_trials=10, directory="tuning_runs",
               project_name=PROJECT_NAME, max_epochs=3, seed=0, overwrite=False):
    """A KerasTuner tuner of ``hypermodel`` maximising its objective.

    Args:
        hypermodel: an `RCHyperModel`.
        tuner: "random", "bayesian" or "hyperband".
        max_trials: number of trials. Hyperband has no such argument of its own: its
            brackets for ``max_epochs`` decide the trials, and this caps their number.
        directory, project_name: where KerasTuner keeps the search.
        max_epochs: Hyperband's largest number of epochs for one model.
        seed: the tuner's random seed.
        overwrite: start over instead of resuming a search found in ``directory``.

    Returns:
        The `keras_tuner.Tuner`.
    """
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {list(TUNERS)}; received {tuner!r}.")
    max_trials = validation.check_positive_int(max_trials, "max_trials")
    common = dict(objective=hypermodel.objective.keras_objective(), seed=int(seed),
                  directory=str(directory), project_name=project_name, overwrite=overwrite,
                  max_consecutive_failed_trials=1)
    if tuner == "random":
        return keras_tuner.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if tuner == "bayesian":
        return keras_tuner.BayesianOptimization(
            hypermodel, max_trials=max_trials, num_initial_points=min(3, max_trials), **common)
    max_epochs = validation.check_positive_int(max_epochs, "max_epochs")
    if max_epochs < 2:
        raise ValueError(f"`max_epochs` must be >= 2 for Hyperband (it trains models for "
                         f"fewer epochs first); received {max_epochs}.")
    result = keras_tuner.Hyperband(hypermodel, max_epochs=max_epochs, factor=2, **common)
    # The base Oracle stops handing out trials at `max_trials`; Hyperband leaves it unset.
    result.oracle.max_trials = max_trials
    return result


def trial_records(tuner):
    """The recorded curve of every completed trial, ordered by trial id.

    Returns:
        List of the dicts written by the trials (``rc_curve.json``): "trial_id",
        "hyperparameters", "epoch", "metrics", "curve", "tuner_id", "pid".
    """
    records = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        if trial.status != "COMPLETED":
            continue
        path = Path(tuner.get_trial_dir(trial_id)) / CURVE_FILE
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def pareto_front(records):
    """The Pareto front of accuracy vs. mean spike time over all (beta, theta) points.

    Args:
        records: trial records (`trial_records`).

    Returns:
        Front points sorted by mean spike time; each a sweep point with "curve" (the
        trial id) and the trial's "beta" (and other hyperparameters) added.
    """
    curves = {}
    for record in records:
        hps = {k: v for k, v in record["hyperparameters"].items() if not k.startswith("tuner/")}
        curves[record["trial_id"]] = [dict(point, **hps) for point in record["curve"]]
    return tradeoff.composite_frontier(curves)


def format_front(front, time_unit="steps"):
    """A markdown table of front points: trial, hyperparameters, theta, accuracy, time."""
    keys = [k for k in ("beta", "units", "learning_rate") if any(k in p for p in front)]
    header = ["trial"] + keys + ["θ", "accuracy", f"mean spike time ({time_unit} read)",
                                 "no-spike rate"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in front:
        row = [str(p["curve"])] + [f"{p[k]:.4g}" if k in p else "" for k in keys] + [
            tradeoff.format_threshold(p["threshold"]), f"{p['accuracy']:.4f}", f"{p['mean_spike_time']:.2f}",
            f"{p['no_spike_rate']:.4f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def plot_search(records, front, path, time_unit="steps", title=None):
    """PNG of every trial's curve with the Pareto front highlighted."""
    curves = {f"trial {r['trial_id']} (β={r['hyperparameters']['beta']:.3g})": r["curve"]
              for r in records}
    return tradeoff.plot_tradeoff(curves, path, frontier=front, time_unit=time_unit,
                                  title=title, annotate_thresholds=False)


def _check_config(directory, config, overwrite):
    """Refuses to resume a search that was started with other settings."""
    path = Path(directory) / CONFIG_FILE
    if path.is_file() and not overwrite:
        saved = json.loads(path.read_text())
        if saved != config:
            changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
            raise ValueError(
                f"`directory` {str(directory)!r} holds a search with other settings "
                f"({', '.join(changed)} differ); resume it with the same settings, or use "
                "another directory or overwrite=True.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not is_worker():
        # Atomic: workers starting at the same time may be reading it.
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=1) + "\n")
        os.replace(tmp, path)


def run_search(task, directory, tuner="random", max_trials=10, objective="weighted",
               max_spike_time=None, weight=0.5, step_ms=None, space=None,
               thresholds=DEFAULT_THRESHOLDS, epochs=3, train_size=None, val_size=None,
               test_size=None, seed=0, overwrite=False, export=True, verbose=0, log=print,
               patience=None, schedule=False):
    """Runs (or resumes) a beta/theta search and writes its report.

    Writes, in ``directory``: KerasTuner's project ``rc_search/`` (a ``rc_curve.json``
    per trial), ``search_config.json``, ``report.json``, ``pareto_front.md``,
    ``search.png`` and, when a trial met the budget and ``export``, ``best_model.keras``
    (the best trial's model with its theta set).

    Args:
        task: a `rc_keras.tasks.Task` or registered name.
        directory: search directory; the same directory resumes the search.
        tuner: "random", "bayesian" or "hyperband".
        max_trials: number of trials.
        objective, max_spike_time, weight, step_ms: see `make_objective`.
        space: a `SearchSpace` (default: beta in [0, 0.3]).
        thresholds: the theta grid swept on validation data.
        epochs: training epochs per trial (Hyperband's ``max_epochs``).
        train_size, val_size, test_size: data sizes; task defaults when None. The best
            model is evaluated at its theta on fresh test data.
        seed: seed of data, weights and tuner.
        overwrite: start over instead of resuming.
        export: save the best model.
        verbose: Keras ``fit`` verbosity inside trials.
        log: callable for progress lines.
        patience: stop a trial once its objective on validation has not improved for
            this many epochs (`rc_keras.convergence.early_stopping`, the rule of every
            RC-vs-EOS comparison); None trains every trial for ``epochs``.
        schedule: score each trial by the best of its constant thetas and of per-step
            threshold schedules fitted on the validation data (`RCHyperModel`); the best
            model is then saved and tested with its schedule when one wins.

    Returns:
        The report dict (also in ``report.json``); in a distributed worker, a short dict
        ``{"worker": tuner_id}`` (the chief writes the report). When no trial met the
        budget, "best" is None and "message" says so.
    """
    task = tasks.get_task(task)
    seed = int(seed)
    x_train, y_train = task.data("train", train_size, seed)
    x_val, y_val = task.data("val", val_size, seed)
    sequence_length = int(x_train.shape[1])
    objective = make_objective(objective, sequence_length=sequence_length,
                               max_spike_time=max_spike_time, weight=weight, step_ms=step_ms)
    space = space or SearchSpace()
    thresholds = check_thresholds(thresholds)
    epochs = validation.check_positive_int(epochs, "epochs")
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {list(TUNERS)}; received {tuner!r}.")
    validation.check_positive_int(max_trials, "max_trials")
    config = {"task": task.name, "tuner": tuner, "max_trials": int(max_trials),
              "objective": objective.to_dict(), "space": space.to_dict(),
              "thresholds": list(thresholds), "epochs": epochs, "seed": seed,
              "train_size": int(len(x_train)), "val_size": int(len(x_val))}
    if patience is not None:  # only then, so searches saved without it still resume
        config["patience"] = validation.check_positive_int(patience, "patience")
    if schedule:  # only then: a search started before schedules existed still resumes
        config["schedule"] = True
    directory = Path(directory)
    _check_config(directory, config, overwrite)

    keras.utils.set_random_seed(seed)
    hypermodel = RCHyperModel(task, objective, space=space, thresholds=thresholds,
                              input_shape=x_train.shape[1:], schedule=schedule)
    search_tuner = make_tuner(hypermodel, tuner, max_trials=max_trials, directory=directory,
                              max_epochs=epochs, seed=seed, overwrite=overwrite)
    # A worker's oracle is a gRPC client without the trial list.
    done_before = 0 if is_worker() else len(trial_records(search_tuner))
    log(f"search: {task.name}, {tuner}, {max_trials} trials, {objective.describe()}"
        + (f"; resuming with {done_before} finished" if done_before else ""))
    callbacks = [] if patience is None else [
        convergence.early_stopping(objective.metric_name, patience)]
    search_tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                        verbose=verbose, callbacks=callbacks)
    if is_worker():
        return {"worker": os.environ.get("KERASTUNER_TUNER_ID")}
    return report(search_tuner, task, objective, directory, config, test_size=test_size,
                  seed=seed, export=export, log=log)


def report(search_tuner, task, objective, directory, config=None, test_size=None, seed=0,
           export=True, log=print):
    """Pareto front, best trial, exported best model and plot of a finished search.

    See `run_search` for the files written and the returned dict.
    """
    records = trial_records(search_tuner)
    if not records:
        raise ValueError(f"the search in {str(directory)!r} has no completed trial.")
    front = pareto_front(records)
    name = objective.metric_name
    # The oracle's own ranking (its tie-breaking included) picks the best trial.
    by_id = {r["trial_id"]: r for r in records}
    best_ids = [t.trial_id for t in search_tuner.oracle.get_best_trials(len(by_id) + 1)
                if t.trial_id in by_id]
    best_record = by_id[best_ids[0]] if best_ids else None
    if best_record is not None and not best_record["metrics"]["met_budget"]:
        best_record = None
    result = {"task": task.name, "config": config, "objective": objective.to_dict(),
              "objective_description": objective.describe(), "num_trials": len(records),
              "trials": records, "front": front, "front_table": format_front(front, task.time_unit),
              "best": None, "message": None}
    directory = Path(directory)
    if best_record is None:
        fastest = min(p["mean_spike_time"] for r in records for p in r["curve"])
        result["message"] = (
            f"{NO_TRIAL_MET_BUDGET}: the budget is {objective.max_spike_time:g} "
            f"{task.time_unit}, the fastest point of {len(records)} trials answers after "
            f"{fastest:.2f} {task.time_unit} on average. Raise --max-spike-time, lower the "
            "thresholds or raise beta.")
        log(result["message"])
    else:
        metrics = best_record["metrics"]
        # The trial's best point, as its callback chose it: a theta or a schedule.
        threshold = objective.best_point(best_record["curve"])["threshold"]
        best = {"trial_id": best_record["trial_id"],
                "hyperparameters": best_record["hyperparameters"],
                "threshold": threshold, "objective_value": metrics[name],
                "val_accuracy": metrics["best_accuracy"],
                "val_mean_spike_time": metrics["best_mean_spike_time"]}
        trial = search_tuner.oracle.trials[best_record["trial_id"]]
        model = search_tuner.load_model(trial)
        model.threshold = best["threshold"]
        x_test, y_test = task.data("test", test_size, seed)
        test = tradeoff.threshold_sweep(model, x_test, y_test, [best["threshold"]])[0]
        best["test"] = test
        if export:
            best["model_path"] = str(directory / "best_model.keras")
            model.save(best["model_path"])
        result["best"] = best
        log(f"best: trial {best['trial_id']} beta {best['hyperparameters']['beta']:.4g} "
            f"theta {tradeoff.format_threshold(best['threshold'])}: validation accuracy {best['val_accuracy']:.4f} at "
            f"{best['val_mean_spike_time']:.2f} {task.time_unit}; test accuracy "
            f"{test['accuracy']:.4f} at {test['mean_spike_time']:.2f} {task.time_unit}")
    result["png"] = plot_search(records, front, directory / "search.png", task.time_unit,
                                title=f"{task.name}: {len(records)} trials, Pareto front")
    (directory / "pareto_front.md").write_text(
        f"Pareto front over {len(records)} trials ({task.name}, validation data)\n\n"
        + result["front_table"] + "\n")
    result["json"] = str(directory / "report.json")
    Path(result["json"]).write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    return result


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")

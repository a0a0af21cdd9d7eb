"""A beta/theta search on the 2-sequence problem, against the Bayes-optimal frontier.

KerasTuner (Bayesian optimization by default) searches beta, the LSTM width and the
learning rate; each trial trains once and sweeps theta on validation data
(`rc_keras.tuning`). The Pareto front over all (trial, theta) points is then compared
with the Bayes-optimal frontier (`rc_keras.bayes_optimal`): on the validation data it was
chosen on, and, honestly, with the same (trial, theta) settings re-run on fresh test data.
The gap at a point is the Bayes-optimal accuracy at the point's mean spike time minus the
point's accuracy (in accuracy points; > 0: below the physical limit).

Sizes are kept small for a shared 2-core machine: a few thousand sequences per trial,
each trial trained until its objective on validation stops improving (patience 3, at
most 12 epochs), so the front is not expected to reach the frontier that the long runs
of ``bench_toy_tasks.py`` approach.

    python benchmarks/bench_tuning.py [--quick] [--trials 12] [--tuner bayesian] [--out DIR]

Writes ``tuning.json``, ``tuning.md`` and ``tuning.png`` to ``--out``
(default benchmarks/results).
"""

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import numpy as np

from rc_keras import bayes_optimal, tasks, tradeoff, tuning

TASK = "two-sequence"
SETTINGS = {
    # Each trial trains until its objective on validation has not improved for `patience`
    # epochs (at most `epochs`; rc_keras.convergence.early_stopping), best epoch kept.
    "tuner": "bayesian", "trials": 12, "epochs": 12, "patience": 3, "train_size": 3000,
    "val_size": 1000,
    "test_size": 2000, "objective": "budget", "max_spike_time": 16.0,
    "space": {"beta": (0.0, 0.3), "units": (32, 96), "learning_rate": (1e-3, 1e-2)},
}
QUICK = {"trials": 2, "epochs": 2, "patience": 1, "train_size": 512, "val_size": 256, "test_size": 512,
         "space": {"beta": (0.0, 0.3), "units": (8, 16), "learning_rate": (1e-3, 1e-2)}}
BUDGETS = (2, 4, 6, 8, 10, 12, 14, 16, 20, 25, 30, 40)
THRESHOLDS = (0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98,
              0.99, 0.995, 0.998, 0.999)


def _gaps(points, frontier):
    """Bayes-optimal accuracy at each point's mean spike time and the gap, in points."""
    rows = []
    for p in points:
        bayes = bayes_optimal.frontier_accuracy_at(frontier, p["mean_spike_time"])
        rows.append({"bayes_accuracy": bayes, "gap_points": 100.0 * (bayes - p["accuracy"])})
    return rows


def run(out, quick=False, trials=None, tuner=None, directory=None, seed=0, log=print,
        command=None):
    """Runs the search and the comparison; returns the result dict (also written)."""
    settings = {**SETTINGS, **(QUICK if quick else {})}
    settings["trials"] = trials or settings["trials"]
    settings["tuner"] = tuner or settings["tuner"]
    directory = Path(directory or tempfile.mkdtemp(prefix="bench_tuning_"))
    space = tuning.SearchSpace(**settings["space"])
    start = time.perf_counter()
    result = tuning.run_search(
        TASK, directory, tuner=settings["tuner"], max_trials=settings["trials"],
        objective=settings["objective"], max_spike_time=settings["max_spike_time"], space=space,
        thresholds=THRESHOLDS, epochs=settings["epochs"], train_size=settings["train_size"],
        val_size=settings["val_size"], test_size=settings["test_size"], seed=seed, log=log,
        patience=settings["patience"])
    search_seconds = time.perf_counter() - start

    task = tasks.get_task(TASK)
    x_val, y_val = task.data("val", settings["val_size"], seed)
    x_test, y_test = task.data("test", settings["test_size"], seed)
    val_frontier = bayes_optimal.bayes_frontier(x_val, y_val)
    test_frontier = bayes_optimal.bayes_frontier(x_test, y_test)

    # The front's (trial, theta) settings, re-run on fresh test data.
    objective = tuning.make_objective(settings["objective"], sequence_length=x_val.shape[1],
                                      max_spike_time=settings["max_spike_time"])
    search_tuner = tuning.make_tuner(
        tuning.RCHyperModel(TASK, objective, space=space, thresholds=THRESHOLDS,
                            input_shape=x_val.shape[1:]),
        settings["tuner"], max_trials=settings["trials"], directory=directory,
        max_epochs=settings["epochs"], seed=seed)
    front = result["front"]
    test_points = {}
    for trial_id in sorted({p["curve"] for p in front}):
        model = search_tuner.load_model(search_tuner.oracle.trials[trial_id])
        thetas = [p["threshold"] for p in front if p["curve"] == trial_id]
        for point in tradeoff.threshold_sweep(model, x_test, y_test, thetas):
            test_points[(trial_id, point["threshold"])] = point
    rows = []
    for p, v_gap in zip(front, _gaps(front, val_frontier)):
        t = test_points[(p["curve"], p["threshold"])]
        (t_gap,) = _gaps([t], test_frontier)
        rows.append({"trial": p["curve"], "beta": p["beta"], "units": p.get("units"),
                     "learning_rate": p.get("learning_rate"), "threshold": p["threshold"],
                     "val_accuracy": p["accuracy"], "val_mean_spike_time": p["mean_spike_time"],
                     "val_bayes_accuracy": v_gap["bayes_accuracy"], "val_gap": v_gap["gap_points"],
                     "test_accuracy": t["accuracy"], "test_mean_spike_time": t["mean_spike_time"],
                     "test_bayes_accuracy": t_gap["bayes_accuracy"],
                     "test_gap": t_gap["gap_points"]})
    test_gaps = np.array([r["test_gap"] for r in rows])
    best = result["best"]
    best_gap = None
    if best is not None:
        (best_gap,) = _gaps([best["test"]], test_frontier)
    summary = {
        "num_trials": result["num_trials"],
        "front_points": len(rows),
        "mean_test_gap_points": float(test_gaps.mean()),
        "max_test_gap_points": float(test_gaps.max()),
        "min_test_gap_points": float(test_gaps.min()),
        "mean_val_gap_points": float(np.mean([r["val_gap"] for r in rows])),
        "best": best and {"trial": best["trial_id"], "threshold": best["threshold"],
                          "beta": best["hyperparameters"]["beta"],
                          "test_accuracy": best["test"]["accuracy"],
                          "test_mean_spike_time": best["test"]["mean_spike_time"],
                          "test_bayes_accuracy": best_gap["bayes_accuracy"],
                          "test_gap_points": best_gap["gap_points"]},
        "message": result["message"],
        "bayes_accuracy_all_steps_test": float(test_frontier[-1]["accuracy"]),
    }
    data = {"date": datetime.date.today().isoformat(), "quick": bool(quick), "task": TASK,
            "command": command,
            "settings": {**settings, "space": space.to_dict(), "thresholds": list(THRESHOLDS),
                         "seed": seed},
            "search_seconds": round(search_seconds, 1), "summary": summary, "front": rows,
            "trials": [{"trial": r["trial_id"], "hyperparameters": r["hyperparameters"],
                        "metrics": r["metrics"], "curve": r["curve"]} for r in result["trials"]],
            "bayes_frontier_test": test_frontier}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    provenance.write_json(out / "tuning.json", data, __file__, indent=1)
    (out / "tuning.md").write_text(format_markdown(data) + "\n")
    plot(data, out / "tuning.png")
    log(format_markdown(data))
    return data


def format_markdown(data):
    """The front table with the gaps, and a summary paragraph."""
    s, st = data["summary"], data["settings"]
    lines = ["| within (val steps) | trial | beta | units | lr | θ | val acc % | val steps | "
             "test acc % | test steps | Bayes test acc % | gap (points) |", "|" + "---|" * 12]
    for budget in BUDGETS:
        # The most accurate front point within the budget: the last one that fits.
        fits = [r for r in data["front"] if r["val_mean_spike_time"] <= budget]
        if not fits:
            continue
        r = fits[-1]
        lines.append(
            f"| {budget:g} | {r['trial']} | {r['beta']:.3f} | {r['units']} | "
            f"{r['learning_rate']:.2g} | "
            f"{r['threshold']:g} | {100 * r['val_accuracy']:.2f} | "
            f"{r['val_mean_spike_time']:.2f} | {100 * r['test_accuracy']:.2f} | "
            f"{r['test_mean_spike_time']:.2f} | {100 * r['test_bayes_accuracy']:.2f} | "
            f"{r['test_gap']:.2f} |")
    best = s["best"]
    best_line = (f"Best for the objective (accuracy with mean spike time <= "
                 f"{st['max_spike_time']:g} steps on validation): trial {best['trial']}, beta "
                 f"{best['beta']:.3f}, θ {best['threshold']:g}: test {100 * best['test_accuracy']:.2f}% "
                 f"at {best['test_mean_spike_time']:.2f} steps, Bayes-optimal "
                 f"{100 * best['test_bayes_accuracy']:.2f}% (gap {best['test_gap_points']:.2f} "
                 "points)." if best else s["message"])
    return "\n".join([
        f"Pareto front of a {st['tuner']} search ({s['num_trials']} trials) on the 2-sequence "
        "problem, chosen on validation data, re-run on fresh test data; gap = Bayes-optimal "
        "accuracy at the point's mean spike time minus its accuracy. Rows: the most accurate "
        f"front point within each mean spike time; all {s['front_points']} front points are in "
        "tuning.json.", "", *lines, "",
        f"Gap over the {s['front_points']} front points (test): mean {s['mean_test_gap_points']:.2f}, "
        f"min {s['min_test_gap_points']:.2f}, max {s['max_test_gap_points']:.2f} points "
        f"(validation: mean {s['mean_val_gap_points']:.2f}; the validation front is picked on "
        f"the same {st['val_size']} sequences, hence optimistic). With {st['test_size']} test "
        "sequences one standard error of an accuracy near 90% is about 0.7 points, so gaps "
        f"below zero are noise. {best_line}",
        f"Bayes-optimal accuracy reading all 40 samples (test): "
        f"{100 * s['bayes_accuracy_all_steps_test']:.2f}%.",
        f"Settings: {st['trials']} trials x at most {st['epochs']} epochs (early stopping, "
        f"patience {st.get('patience', '-')}) x {st['train_size']} training "
        f"sequences, {st['val_size']} validation, {st['test_size']} test; beta in "
        f"{st['space']['beta']}, units in {st['space']['units']}, learning rate in "
        f"{st['space']['learning_rate']}; search {data['search_seconds']:.0f} s on a shared "
        f"2-core CPU. Small on purpose (time); {data['date']}. Command: "
        f"`{data.get('command')}`"])


def plot(data, path):
    """Every trial's validation curve (grey), the front, and the Bayes-optimal frontier."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(6.5, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for index, trial in enumerate(data["trials"]):
        curve = sorted(trial["curve"], key=lambda p: p["mean_spike_time"])
        ax.plot([p["mean_spike_time"] for p in curve], [100 * p["accuracy"] for p in curve],
                color="0.7", linewidth=0.8, marker=".", label="trials (validation)" if index == 0
                else None)
    front = data["front"]
    ax.plot([r["val_mean_spike_time"] for r in front], [100 * r["val_accuracy"] for r in front],
            color="black", marker="o", drawstyle="steps-post", label="Pareto front (validation)")
    ax.plot([r["test_mean_spike_time"] for r in front], [100 * r["test_accuracy"] for r in front],
            color="tab:blue", marker="s", linestyle="none", label="front settings (test)")
    bayes = data["bayes_frontier_test"]
    ax.plot([p["mean_steps"] for p in bayes], [100 * p["accuracy"] for p in bayes],
            color="tab:red", label="Bayes-optimal (test)")
    ax.set_xlabel("mean spike time (steps read)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"2-sequence: {data['summary']['num_trials']} trials of a "
                 f"{data['settings']['tuner']} search")
    ax.set_ylim(45, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    return str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about a minute)")
    parser.add_argument("--trials", type=int, help="number of trials (default 12)")
    parser.add_argument("--tuner", choices=tuning.TUNERS, help="default: bayesian")
    parser.add_argument("--directory", help="search directory (default: a new temporary one); "
                                            "the same directory resumes the search")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"),
                        help="results directory (default: benchmarks/results)")
    parser.add_argument("--render", action="store_true",
                        help="rewrite tuning.md and tuning.png from tuning.json in --out")
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads((Path(args.out) / "tuning.json").read_text())
        (Path(args.out) / "tuning.md").write_text(format_markdown(data) + "\n")
        plot(data, Path(args.out) / "tuning.png")
        print(format_markdown(data))
        return
    command = "python benchmarks/bench_tuning.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    run(args.out, quick=args.quick, trials=args.trials, tuner=args.tuner,
        directory=args.directory, seed=args.seed, command=command.strip())


if __name__ == "__main__":
    main()

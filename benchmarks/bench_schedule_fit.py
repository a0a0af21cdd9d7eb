"""Speed of `rc_keras.tradeoff.fit_threshold_schedule`, and what a schedule buys on data
with a known structure.

Target (issue 18): fitting a schedule on 10,000 sequences x 100 steps takes under 10 s on
2 cores (median of ``--repeats`` wall times, default grid).

The data are synthetic step probabilities (2 classes) with early noise: before an onset
step (3..30) the largest probability is 0.5 + 0.48 u exp(-t / 10) on a random label, from
the onset on it is 0.95 on the true label. A schedule that starts high and relaxes
ignores the early noise; a constant theta cannot. The schedule is fitted on one draw
(validation) and read on another (test); the table gives both, beside the best constant
theta chosen the same way.

    python benchmarks/bench_schedule_fit.py [--repeats 3]
"""

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import numpy as np

from rc_keras import tradeoff

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10.0


def synthetic(n, time, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    onset = rng.integers(3, 31, n)
    t = np.arange(time)[None, :]
    noise = 0.5 + 0.48 * rng.uniform(size=(n, time)) * np.exp(-t / 10)
    after = t >= onset[:, None]
    confidence = np.where(after, 0.95, noise)
    label = np.where(after, y[:, None], rng.integers(0, 2, (n, time)))
    p1 = np.where(label == 1, confidence, 1 - confidence).astype("float32")
    return np.stack([1 - p1, p1], axis=-1), y


def two_sequence_rows(n, budgets):
    """The exact 2-sequence posterior read with a fitted schedule vs. constant levels.

    The Bayes reader of `rc_keras.bayes_optimal` answers at the first step where
    max(P, 1 - P) reaches a constant level; the optimal sequential rule for a mean-time
    budget may vary the level with time. Fitted on a validation draw, read on a test draw.
    """
    from rc_keras import bayes_optimal, tasks  # noqa: PLC0415

    task = tasks.get_task("two-sequence")
    draws = {}
    for split in ("val", "test"):
        x, y = task.data(split, n, seed=0)
        posterior = bayes_optimal.two_sequence_posterior(x)
        draws[split] = (np.stack([1 - posterior, posterior], axis=-1), np.asarray(y), x)
    val_probs, val_y, _ = draws["val"]
    test_probs, test_y, test_x = draws["test"]
    constant = bayes_optimal.bayes_frontier(test_x, test_y, posterior=test_probs[..., 1])
    rows = []
    for budget in budgets:
        fitted = tradeoff.fit_threshold_schedule(val_probs, val_y, budget=budget)
        (on_test,) = tradeoff.sweep_from_probabilities(test_probs, test_y, [fitted["threshold"]])
        reference = bayes_optimal.frontier_accuracy_at(constant, on_test["mean_spike_time"])
        rows.append({"budget": budget, "theta_0": fitted["theta_0"],
                     "theta_end": fitted["theta_end"], "tau": fitted["tau"],
                     "val_accuracy": fitted["accuracy"], "test_accuracy": on_test["accuracy"],
                     "test_mean_steps": on_test["mean_spike_time"],
                     "constant_level_accuracy_at_same_steps": reference,
                     "difference_points": 100 * (on_test["accuracy"] - reference)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 15, 20, 30])
    parser.add_argument("--two-sequence-n", type=int, default=8000,
                        help="sequences per split of the 2-sequence posterior section (0: skip)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1000 sequences, one repeat, no 2-sequence section")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results",
                        help="results folder")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeats, args.two_sequence_n = 1000, 1, 0
    val, val_y = synthetic(args.n, args.time, seed=0)
    test, test_y = synthetic(args.n, args.time, seed=1)
    # Timed on confidences spread over (0.5, 1) (no ties: the default grid is at its
    # largest) as well as on the structured data.
    rng = np.random.default_rng(2)
    p1 = rng.uniform(0.0, 1.0, size=(args.n, args.time)).astype("float32")
    spread = np.stack([1 - p1, p1], axis=-1)
    spread_y = rng.integers(0, 2, args.n)
    candidates = len(tradeoff.fit_threshold_schedule(spread, spread_y, monotone=True,
                                                     _all_candidates=True))
    times = []
    for data, labels in [(spread, spread_y), (val, val_y)] * args.repeats:
        start = time.perf_counter()
        tradeoff.fit_threshold_schedule(data, labels, budget=max(args.budgets))
        times.append(time.perf_counter() - start)
    rows = []
    for budget in args.budgets:
        fitted = tradeoff.fit_threshold_schedule(val, val_y, budget=budget)
        (sched_test,) = tradeoff.sweep_from_probabilities(test, test_y, [fitted["threshold"]])
        constant = fitted["constant"]
        (const_test,) = tradeoff.sweep_from_probabilities(test, test_y,
                                                          [constant["threshold"][0]])
        rows.append({
            "budget": budget,
            "schedule": {"theta_0": fitted["theta_0"], "theta_end": fitted["theta_end"],
                         "tau": fitted["tau"]},
            "schedule_val": {k: fitted[k] for k in ("accuracy", "mean_spike_time")},
            "schedule_test": {k: sched_test[k] for k in ("accuracy", "mean_spike_time")},
            "constant_threshold": constant["threshold"][0],
            "constant_val": {k: constant[k] for k in ("accuracy", "mean_spike_time")},
            "constant_test": {k: const_test[k] for k in ("accuracy", "mean_spike_time")},
        })
    two_sequence = (two_sequence_rows(args.two_sequence_n, [12, 14, 16, 18, 20])
                    if args.two_sequence_n else [])
    median = statistics.median(times)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "shape": [args.n, args.time, 2], "fit_seconds": times, "candidates": candidates, "median_seconds": median,
        "target_seconds": TARGET_SECONDS, "target_met": median < TARGET_SECONDS, "budgets": rows,
        "two_sequence_posterior": two_sequence,
    }
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    provenance.write_json(out / "schedule_fit.json", result, __file__)
    lines = [f"# Threshold schedule fit ({args.n} x {args.time}, {os.cpu_count()} CPUs)", "",
             f"Fit time: median {median:.2f} s of {len(times)} ({candidates} candidates; target < {TARGET_SECONDS:g} s: "
             f"{'met' if result['target_met'] else 'NOT met'}).", "",
             "| budget | schedule (θ0→θend, τ) | schedule acc val / test | mean spike val / test "
             "| constant θ | constant acc val / test | mean spike val / test |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["schedule"]
        lines.append(
            f"| {r['budget']:g} | {s['theta_0']:.4f}→{s['theta_end']:.4f}, {s['tau'] or 0:.1f} "
            f"| {r['schedule_val']['accuracy']:.4f} / {r['schedule_test']['accuracy']:.4f} "
            f"| {r['schedule_val']['mean_spike_time']:.2f} / "
            f"{r['schedule_test']['mean_spike_time']:.2f} "
            f"| {r['constant_threshold']:.4f} "
            f"| {r['constant_val']['accuracy']:.4f} / {r['constant_test']['accuracy']:.4f} "
            f"| {r['constant_val']['mean_spike_time']:.2f} / "
            f"{r['constant_test']['mean_spike_time']:.2f} |")
    if two_sequence:
        lines += ["", f"## Exact 2-sequence posterior ({args.two_sequence_n} val / "
                  f"{args.two_sequence_n} test sequences)", "",
                  "Schedule fitted on the validation draw, read on the test draw, against the "
                  "Bayes reader with a constant confidence level (`rc_keras.bayes_optimal`) "
                  "at the same mean number of steps.", "",
                  "| budget | schedule (θ0→θend, τ) | val acc | test acc | test mean steps "
                  "| constant-level acc at those steps | difference (points) |",
                  "|---|---|---|---|---|---|---|"]
        for r in two_sequence:
            lines.append(
                f"| {r['budget']:g} | {r['theta_0']:.5f}→{r['theta_end']:.5f}, "
                f"{r['tau'] or 0:.1f} | {r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} "
                f"| {r['test_mean_steps']:.2f} | "
                f"{r['constant_level_accuracy_at_same_steps']:.4f} "
                f"| {r['difference_points']:+.2f} |")
    (out / "schedule_fit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Spiking LIF cell vs LSTM and GRU on the 2-sequence problem and synthesized keywords, EOS and RC.

Claims of Ponghiran & Roy (2021) used as the reference (benchmark targets, not unit tests):

- accuracy of the SpikingLIFCell network within 1.5 points of the LSTM network, at
  <= 0.55x its (cell) parameters;
- >= 5x fewer multiplications per sequence than the GRU network (event-driven count of
  `rc_keras.opcount`);
- with RC, the savings of halting at the first output spike come on top.

Every network has the same width and a softmax head, trains (2-sequence: on fresh
sequences each epoch; keywords: on the synthesized training voices), and is scored on test sequences drawn with a seed training never uses.
Each is scored two ways from one pass of ``step_probabilities``: reading the whole
sequence (answer at the last step) and halting at the first crossing of theta (the RC
answer); multiplications are counted for both (``halt=False`` / ``True``).

The keyword set is synthesized with espeak-ng (`rc_keras.datasets.synthesize_keywords`)
on the first run; clips shorter than 1 s keep their true length, so no answer lands in
padding.

    python benchmarks/bench_spiking.py [--quick] [--out DIR] [--task two-sequence|keywords]
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

import provenance  # benchmarks/provenance.py: command line, versions, date, load

import keras
import numpy as np

import rc_keras as rk
from rc_keras import opcount, tradeoff
from rc_keras.cells import SpikingLIFCell
from rc_keras.convergence import FreshEpochs, fit_to_convergence

TEST_SEED = 999
VAL_SEED = 777
BATCH_SIZE = 128
CELLS = {
    "LSTM": lambda units, bits: keras.layers.LSTMCell(units),
    "GRU": lambda units, bits: keras.layers.GRUCell(units),
    # The potential only leaks (reset="none"): the claims are checked with this cell.
    "SpikingLIF": lambda units, bits: SpikingLIFCell(units, output_bits=bits, reset="none"),
    # Binary spikes: recurrent and head products become additions (rc_keras.opcount).
    "SpikingLIF-1bit": lambda units, bits: SpikingLIFCell(units, output_bits=1, reset="none"),
    # The same cell with the soft reset by subtraction, as an ablation: firing drains the
    # potential, so it cannot hold a keyword through the silence after it.
    "SpikingLIF-reset": lambda units, bits: SpikingLIFCell(units, output_bits=bits,
                                                            reset="subtract"),
}
MODES = ("eos", "rc")
# 3-bit outputs: 2 bits trained to ~91-93% here against ~94-95% for 3 bits (12-epoch trials).
SETTINGS = {
    "two-sequence": {"units": 64, "output_bits": 3, "learning_rate": 3e-3, "beta": 0.1,
                     "threshold": 0.9, "epochs": 20, "patience": 4, "train_size": 8000,
                     "val_size": 2000, "test_size": 4000, "classes": 2},
    # Synthesized keywords (10 keywords + unknown, voices disjoint across splits), 20
    # log-mel bands per 10 ms frame, 98 frames a clip; the set is made once and reused.
    "keywords": {"units": 64, "output_bits": 3, "learning_rate": 3e-3, "beta": 0.1,
                 "threshold": 0.9, "epochs": 20, "patience": 4, "min_epochs": 4,
                 "batch_size": 32,
                 "classes": 11,
                 "keyword_voices": 120,
                 "keyword_root": "/tmp/rc_keras_bench_keywords_120"},
}
QUICK = {"two-sequence": {"units": 32, "epochs": 2, "patience": 1, "train_size": 1024,
                          "val_size": 256, "test_size": 500},
         "keywords": {"units": 32, "epochs": 2, "patience": 1, "keyword_voices": 12,
                      "keyword_root": "/tmp/rc_keras_bench_keywords_quick"}}
# Every model sees x * INPUT_SCALE: 2-sequence samples have a standard deviation of at most
# 0.25, far below the LIF threshold of 1 at initialization (a dead, silent network); the
# same fixed rescaling for all cells keeps the comparison fair.
INPUT_SCALE = 4.0
# Reference claims.
ACCURACY_GAP_POINTS = 1.5
PARAM_RATIO = 0.55
MULT_RATIO_VS_GRU = 5.0


def load_task(task, split, cfg, seed=0):
    """(x, y, lengths) of a benchmark task; lengths is None for fixed-length tasks.

    Args:
        task: "two-sequence" (fresh sequences drawn with ``seed``) or "keywords" (the
            synthesized keyword set, made once under ``cfg["keyword_root"]``).
        split: "train", "validation" or "test".
        cfg: the benchmark settings.
        seed: data seed (two-sequence only).
    """
    if task == "two-sequence":
        size = cfg[{"train": "train_size", "validation": "val_size", "test": "test_size"}[split]]
        x, y = rk.datasets.two_sequence(size, seed=seed)
        return x * INPUT_SCALE, y, None
    if task == "keywords":
        return keyword_arrays(split, cfg)
    raise ValueError(f"unknown task {task!r}")


def keyword_arrays(split, cfg):
    """Log-mel features (20 per 10 ms frame, no context) of the synthesized keyword set.

    The set (``cfg["keyword_voices"]`` espeak-ng voices x the ten keywords and the
    default unknown words, voices disjoint across splits) is synthesized once into
    ``cfg["keyword_root"]`` and reused by later runs; the features of each split are
    cached beside it (`rc_keras.kws_training.load_split_arrays`). Every split is
    standardized with the raw training split's per-band mean and standard deviation
    over valid frames.
    """
    from rc_keras import kws_training
    from rc_keras.datasets import synthesize_keywords
    from rc_keras.datasets.keyword_synthesis import CLOSED_ESPEAK_SET
    from rc_keras.features import FrontEndParams

    root = Path(cfg["keyword_root"])
    if not (root / "testing_list.txt").exists():
        synthesize_keywords(root, voices=cfg["keyword_voices"], seed=0, noise=0.05,
                            **CLOSED_ESPEAK_SET)
    options = {"features": FrontEndParams(context_frames=0),
               "cache_dir": root.parent / (root.name + "_features")}
    x, lengths, y = kws_training.load_split_arrays(root, split, **options)
    train_x, train_n = ((x, lengths) if split == "train"
                        else kws_training.load_split_arrays(root, "train", **options)[:2])
    valid = np.arange(train_x.shape[1])[None, :] < train_n[:, None]
    mean, std = train_x[valid].mean(0), train_x[valid].std(0) + 1e-6
    return ((x - mean) / std).astype(np.float32), y, lengths


def build_model(cell_name, mode, cfg):
    """An RCModel with a ``cell_name`` cell and a 2-way softmax head, compiled."""
    model = rk.RCModel(CELLS[cell_name](cfg["units"], cfg["output_bits"]),
                       keras.layers.Dense(cfg["classes"], activation="softmax"),
                       threshold=cfg["threshold"], training_mode=mode)
    steps = max(cfg["epochs"] * (cfg["train_size"] // cfg.get("batch_size", BATCH_SIZE)), 1)
    schedule = keras.optimizers.schedules.CosineDecay(cfg["learning_rate"], decay_steps=steps,
                                                      alpha=0.05)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=1.0), rk.ConfidencePenalty(cfg["beta"]),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    return model


def _inputs(x, lengths):
    return x if lengths is None else {"inputs": x, "lengths": lengths}


def train(task, cell_name, mode, cfg, validation, seed=0, log=print):
    """Trains one model until its validation metric stops improving.

    2-sequence: fresh sequences every epoch; keywords: the synthesized training voices.
    `rc_keras.convergence.fit_to_convergence` judges an RC model by its validation spike
    accuracy at theta and an EOS model by its accuracy at the last valid step, under the
    same epoch budget and patience, and keeps the best epoch.

    Returns:
        (model, `Convergence` record).
    """
    keras.utils.set_random_seed(seed)
    model = build_model(cell_name, mode, cfg)
    batch_size = cfg.get("batch_size", BATCH_SIZE)
    if task == "keywords":  # a fixed set: load and standardize it once, not every epoch
        x, y, lengths = load_task(task, "train", cfg)
        train_data = (_inputs(x, lengths), y)
    else:
        def draw(epoch):
            x, y, lengths = load_task(task, "train", cfg, seed=10_000 * (seed + 1) + epoch)
            return _inputs(x, lengths), y
        train_data = FreshEpochs(draw, batch_size)
    x_val, y_val, n_val = validation
    model, run = fit_to_convergence(model, train_data, (_inputs(x_val, n_val), y_val),
                                    max_epochs=cfg["epochs"], patience=cfg["patience"],
                                    min_epochs=cfg.get("min_epochs", 0), batch_size=batch_size)
    log(f"  {cell_name} {mode}: {run.epochs_used} epochs (best {run.best_epoch + 1}), "
        f"{run.monitor} {run.best:.4f}, {run.train_seconds:.0f} s")
    return model, run


def first_crossing(step_probs, threshold, lengths=None):
    """0-based answer step at ``threshold`` (the last valid step when never crossed)."""
    return tradeoff.first_crossing(step_probs, threshold, lengths=lengths).spike_time


def cell_params(model):
    return int(sum(np.prod(w.shape) for w in model.cell.trainable_weights))


def evaluate(model, x, y, lengths=None):
    """One row: accuracies, parameters, firing rate, multiplications, spike step."""
    probs = tradeoff.all_step_probabilities(model, x, batch_size=1000)
    spike = first_crossing(probs, model.threshold, lengths)
    rc_labels = probs[np.arange(len(y)), spike].argmax(-1)
    last = np.full(len(y), x.shape[1] - 1) if lengths is None else np.asarray(lengths) - 1
    full = opcount.count_ops(model, x, halt=False, lengths=lengths)
    halted = opcount.count_ops(model, x, lengths=lengths, spike_time=spike)
    return {
        "accuracy_full_sequence": float(np.mean(probs[np.arange(len(y)), last].argmax(-1) == y)),
        "accuracy_rc_halt": float(np.mean(rc_labels == y)),
        "mean_spike_step": float(spike.mean()),          # 0-based, as predict()["spike_time"]
        "spiked_fraction": float(np.mean(probs.max(-1).max(-1) >= np.float32(model.threshold))),
        "cell_params": cell_params(model),
        "total_params": int(model.count_params()) - 1,   # minus the threshold variable
        "firing_rate": full.firing_rate,
        "mults_per_sequence_full": full.summary()["mults_per_sequence"],
        "mults_per_sequence_rc_halt": halted.summary()["mults_per_sequence"],
        "adds_per_sequence_full": full.summary()["adds_per_sequence"],
        "adds_per_sequence_rc_halt": halted.summary()["adds_per_sequence"],
    }


# The spiking variants the claims are checked for (the soft-reset cell is an ablation).
CLAIMED = ("SpikingLIF", "SpikingLIF-1bit")


def check_claims(rows):
    """The paper's claims, per spiking variant and training mode; each says whether it is met."""
    claims = []
    for name in CLAIMED:
        if f"{name}_eos" not in rows:
            continue
        for mode in MODES:
            lif, lstm, gru = (rows[f"{cell}_{mode}"] for cell in (name, "LSTM", "GRU"))
            acc = "accuracy_full_sequence" if mode == "eos" else "accuracy_rc_halt"
            gap = 100 * (lstm[acc] - lif[acc])
            claims.append({"mode": mode, "cell": name,
                           "claim": f"accuracy within {ACCURACY_GAP_POINTS} points of LSTM",
                           "value": f"{100 * lif[acc]:.2f}% vs LSTM {100 * lstm[acc]:.2f}% "
                                    f"(gap {gap:.2f} points, {acc})",
                           "met": bool(gap <= ACCURACY_GAP_POINTS)})
            ratio = lif["cell_params"] / lstm["cell_params"]
            claims.append({"mode": mode, "cell": name,
                           "claim": f"<= {PARAM_RATIO}x LSTM parameters (cell)",
                           "value": f"{ratio:.3f}x ({lif['cell_params']} vs {lstm['cell_params']}); "
                                    f"with head {lif['total_params'] / lstm['total_params']:.3f}x",
                           "met": bool(ratio <= PARAM_RATIO)})
            mult = gru["mults_per_sequence_full"] / max(lif["mults_per_sequence_full"], 1.0)
            claims.append({"mode": mode, "cell": name,
                           "claim": f">= {MULT_RATIO_VS_GRU}x fewer multiplications than GRU "
                                    "(full sequence)",
                           "value": f"{mult:.2f}x", "met": bool(mult >= MULT_RATIO_VS_GRU)})
        lif, gru = rows[f"{name}_rc"], rows["GRU_eos"]
        halt_gain = lif["mults_per_sequence_full"] / max(lif["mults_per_sequence_rc_halt"], 1.0)
        vs_gru = gru["mults_per_sequence_full"] / max(lif["mults_per_sequence_rc_halt"], 1.0)
        claims.append({"mode": "rc", "cell": name,
                       "claim": "RC early halt saves multiplications on top",
                       "value": f"{halt_gain:.2f}x fewer than the same LIF reading the whole "
                                f"sequence; {vs_gru:.1f}x fewer than the EOS GRU",
                       "met": bool(halt_gain > 1.0)})
    return claims


def markdown(result):
    rows, cfg = result["rows"], result["settings"]
    lines = ["| cell | training | accuracy full seq % | accuracy RC halt % | mean spike step | "
             "cell params | firing rate | mults/seq full | mults/seq RC halt | "
             "epochs used (best) | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        cell, mode = name.rsplit("_", 1)
        rate = "-" if row["firing_rate"] is None else f"{row['firing_rate']:.3f}"
        lines.append(f"| {cell} | {mode.upper()} | {100 * row['accuracy_full_sequence']:.2f} | "
                     f"{100 * row['accuracy_rc_halt']:.2f} | {row['mean_spike_step']:.2f} | "
                     f"{row['cell_params']} | {rate} | {row['mults_per_sequence_full']:.0f} | "
                     f"{row['mults_per_sequence_rc_halt']:.0f} | "
                     + (f"{row['epochs_used']} ({row['best_epoch']}) | "
                        if "epochs_used" in row else "- | ")
                     + f"{row['train_seconds']:.0f} |")
    lines += ["", "| cell | training | claim (Ponghiran & Roy 2021) | measured | met |",
              "|---|---|---|---|---|"]
    for claim in result["claims"]:
        lines.append(f"| {claim['cell']} | {claim['mode'].upper()} | {claim['claim']} | "
                     f"{claim['value']} | "
                     f"{'yes' if claim['met'] else '**no**'} |")
    if result["task"] == "two-sequence":
        steps, inputs, data = "40 steps", f"inputs x {INPUT_SCALE:g}", "fresh sequences"
    else:
        steps, inputs, data = ("98 frames of 10 ms", "20 log-mel bands standardized",
                               f"clips of {cfg['keyword_voices']} voices (train split)")
    lines += ["", f"Task: {result['task']} ({steps}). Width {cfg['units']} for every cell; "
              f"SpikingLIF with {cfg['output_bits']}-bit outputs, no reset (SpikingLIF-1bit: "
              "binary spikes, no reset; SpikingLIF-reset: 3-bit, soft reset by subtraction); "
              f"{inputs}; "
              f"head Dense({cfg['classes']}, softmax); theta {cfg['threshold']}, "
              f"beta {cfg['beta']}; at most {cfg['epochs']} epochs x {cfg['train_size']} {data}, "
              f"each model stopped once its validation metric ({cfg.get('val_size', '?')} "
              f"validation sequences; RC: spike accuracy at theta, EOS: accuracy at the last "
              f"step) had not improved for {cfg.get('patience', '?')} epochs, best epoch kept; "
              f"{cfg['test_size']} test sequences. Mean spike step is 0-based (first crossing of "
              "theta, last step when never crossed). Multiplications: event-driven count "
              "(`rc_keras.opcount`), cell + head, per sequence; 'full' reads every valid step, "
              "'RC halt' stops at the first crossing.",
              f"{'QUICK RUN: not representative. ' if result['quick'] else ''}"
              f"{result['date']}, {result['seconds']:.0f} s. Command: "
              f"`{result.get('command')}`"]
    return "\n".join(lines) + "\n"


def plot(result, path):
    """Accuracy vs event-driven multiplications: colour = cell, marker = training and reading."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return None
    colours = {"LSTM": "tab:blue", "GRU": "tab:orange", "SpikingLIF": "tab:green",
               "SpikingLIF-1bit": "tab:purple", "SpikingLIF-reset": "tab:olive"}
    markers = {("eos", "full"): "o", ("eos", "rc_halt"): "s", ("rc", "full"): "^",
               ("rc", "rc_halt"): "*"}
    readings = {"full": "reads the whole sequence", "rc_halt": "halts at the first spike"}
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, row in result["rows"].items():
        cell, mode = name.rsplit("_", 1)
        for key in ("full", "rc_halt"):
            acc = row["accuracy_full_sequence" if key == "full" else "accuracy_rc_halt"]
            ax.scatter(row[f"mults_per_sequence_{key}"], 100 * acc, color=colours[cell],
                       marker=markers[(mode, key)], s=90 if key == "rc_halt" else 50,
                       label=f"{cell}, {mode.upper()}-trained, {readings[key]}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("multiplications per sequence (event-driven count, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['task']}: test accuracy vs. multiplications per sequence", fontsize=10)
    # Outside the axes: inside, the legend hides points (16 entries).
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_learning_curves(result, path):
    """Every model's validation curve (the metric its early stopping watched)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MODES), figsize=(11, 4), sharey=True)
    for ax, mode in zip(axes, MODES, strict=True):
        for name, run_ in result["training"].items():
            if name.rsplit("_", 1)[1] != mode:
                continue
            curve = [100 * v for v in run_["curve"]]
            line, = ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3,
                            label=name.rsplit("_", 1)[0])
            ax.plot(run_["best_epoch"] + 1, curve[run_["best_epoch"]], marker="*",
                    markersize=11, color=line.get_color(), linestyle="none")
        ax.set_title(f"{mode.upper()}-trained: validation "
                     + ("spike accuracy at theta" if mode == "rc" else "accuracy at the end"),
                     fontsize=9)
        ax.set_xlabel("epoch (star: epoch kept)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("validation accuracy (%)")
    fig.suptitle(f"{result['task']}: learning curves", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(task="two-sequence", quick=False, out=Path("benchmarks/results"), log=print,
        command=None):
    """Trains and scores every (cell, mode); writes spiking_<task>.json/.md/.png under ``out``."""
    cfg = dict(SETTINGS[task], **(QUICK[task] if quick else {}))
    start = time.perf_counter()
    x_test, y_test, n_test = load_task(task, "test", cfg, seed=TEST_SEED)
    if task == "keywords":
        cfg["train_size"] = len(load_task(task, "train", cfg)[1])
        cfg["test_size"] = len(y_test)
    validation = load_task(task, "validation", cfg, seed=VAL_SEED)
    if task == "keywords":
        cfg["val_size"] = len(validation[1])
    rows, training = {}, {}
    for cell_name in CELLS:
        for mode in MODES:
            model, run_ = train(task, cell_name, mode, cfg, validation, log=log)
            rows[f"{cell_name}_{mode}"] = dict(
                evaluate(model, x_test, y_test, n_test), train_seconds=run_.train_seconds,
                epochs_used=run_.epochs_used, best_epoch=run_.best_epoch + 1,
                stopped_early=run_.stopped_early)
            training[f"{cell_name}_{mode}"] = run_.to_dict()
    result = {"task": task, "quick": quick, "settings": cfg, "rows": rows,
              "training": training, "command": command,
              "date": datetime.date.today().isoformat()}
    result["claims"] = check_claims(rows)
    result["seconds"] = time.perf_counter() - start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "spiking_" + task.replace("-", "_")
    provenance.write_json(out / f"{stem}.json", result, __file__)
    (out / f"{stem}.md").write_text(markdown(result))
    plot(result, out / f"{stem}.png")
    plot_learning_curves(result, out / f"{stem}_learning_curves.png")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run (< 1 minute)")
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--task", default="two-sequence", choices=["two-sequence", "keywords"],
                        help="keywords: synthesized with espeak-ng on the first run")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_spiking.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    result = run(args.task, args.quick, Path(args.out), command=command.strip())
    print(markdown(result))


if __name__ == "__main__":
    main()

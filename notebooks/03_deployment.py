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
# # Deployment: export, int8 verification in LiteRT and TFLM, the agreement table
#
# An RC network answers early by stopping its loop over frames, and on a device that loop
# runs in the firmware. So the export is a **per-frame step model** (frame and recurrent
# states in; probabilities and new states out), as float32 and as full-integer int8
# calibrated on the states the network visits on real sequences.
# `rc_keras.export.export_bundle` writes everything a deployment needs (Keras model,
# SavedModel, both step models, a C array for TensorFlow Lite Micro) and, with
# `verify=True`, runs held-out sequences through Keras, the SavedModel, LiteRT and the
# TFLM interpreter and compares the answers: the **agreement table**.
#
# The model here is an LSTM trained with rank coding on the 2-sequence problem.
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
    # LSTM units, epochs, training sequences, held-out sequences for the agreement table.
    # qat_epochs: quantization-aware fine-tuning of the int8-exact twin.
    "ci": {"units": 32, "epochs": 4, "train_size": 4096, "verify_size": 200, "qat_epochs": 1},
    "full": {"units": 64, "epochs": 12, "train_size": 16384, "verify_size": 1000,
             "qat_epochs": 2},
}
if SIZE not in CONFIGS:
    raise ValueError(f"SIZE must be one of {sorted(CONFIGS)}; received {SIZE!r}.")
CFG = CONFIGS[SIZE]

# Imported after the SIZE check: a wrong SIZE fails in a second, not after TensorFlow.
import keras
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import rc_keras as rk
from rc_keras import export

THRESHOLD, BETA = 0.9, 0.1
FIGURES = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_FIGURES", "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
# The bundle goes to a fresh temporary directory unless RC_KERAS_NOTEBOOK_OUT names one.
BUNDLE = pathlib.Path(os.environ.get("RC_KERAS_NOTEBOOK_OUT")
                      or tempfile.mkdtemp(prefix="rc_keras_deploy_")) / f"bundle_{SIZE}"
print(f"SIZE={SIZE}: {CFG}; bundle in {BUNDLE}")

# %% [markdown]
# ## Train the model to deploy

# %%
keras.utils.set_random_seed(0)
x_train, y_train = rk.datasets.two_sequence(CFG["train_size"], seed=0)
x_test, y_test = rk.datasets.two_sequence(CFG["verify_size"], seed=99)
model = rk.RCModel(keras.layers.LSTMCell(CFG["units"]),
                   keras.Sequential([keras.layers.Dense(2, activation="softmax")]),
                   threshold=THRESHOLD)
model.compile(keras.optimizers.Adam(3e-3), rk.ConfidencePenalty(BETA),
              metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
start = time.perf_counter()
model.fit(x_train, y_train, epochs=CFG["epochs"], batch_size=128, verbose=0)
train_seconds = time.perf_counter() - start
scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(f"trained in {train_seconds:.0f} s; held-out spike accuracy {scores['spike_accuracy']:.4f} "
      f"at {scores['mean_spike_time']:.2f} samples read")

# %% [markdown]
# ## Export the bundle and verify it
#
# int8 ranges are calibrated on state trajectories of training sequences (random states
# would give ranges the network never visits). Verification runs the early-exit loop over
# every held-out sequence in each runtime.

# %%
report = export.export_bundle(model, BUNDLE, int8=True, calibration=x_train[:512],
                              verify=True, verify_sequences=(x_test, y_test))
for name, size in report["files"].items():
    print(f"{name:<24}{size / 1024:>9.1f} KB")
for q, info in report["models"].items():
    print(f"step model {q}: {info['kb']} KB, TFLM arena {info['tflm_arena']['min_arena_bytes']} B, "
          f"{info['macs_per_frame']['total']} MACs per frame")
display(Markdown(export.format_agreement_table(report)))

# %% [markdown]
# ## Quantization-aware int8: the int8-exact twin
#
# Post-training int8 rounds every tensor of the step, and an output that approaches θ
# slowly crosses it a frame or more away from the float model's crossing.
# `rc_keras.quantization.quantize_aware` builds the model's **int8-exact twin**: the same
# weights, with each tensor rounded in Keras as the int8 model will round it (FakeQuant
# ops whose ranges the converter takes as the int8 scales). Fine-tuned with the same loss,
# the network adapts to the rounding; its int8 export then computes what the Keras model
# computes, and the twin is the model that is deployed.

# %%
twin = rk.quantization.quantize_aware(model, x_train[:512])
twin.compile(keras.optimizers.Adam(1e-3), rk.ConfidencePenalty(BETA),
             metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime()])
twin.fit(x_train, y_train, epochs=CFG["qat_epochs"], batch_size=128, verbose=0)
twin_scores = twin.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(f"twin after {CFG['qat_epochs']} epoch(s): spike accuracy "
      f"{twin_scores['spike_accuracy']:.4f} at {twin_scores['mean_spike_time']:.2f} samples read")
twin_report = export.export_bundle(twin, BUNDLE.with_name(f"bundle_{SIZE}_qat"), int8=True,
                                   calibration=x_train[:512], verify=True,
                                   verify_sequences=(x_test, y_test))
display(Markdown(export.format_agreement_table(twin_report)))

# %% [markdown]
# ## Figure: how closely each deployed model agrees with Keras
#
# For each step model and runtime, the share of held-out sequences where it gives the same
# class as Keras, exits at exactly the same frame, and exits within one frame.

# %%
rows = [r for r in report["verify"]["rows"] if r["model"] != "keras"]
rows += [dict(r, model=r["model"].replace("step_", "twin_")) for r in twin_report["verify"]["rows"]
         if r["model"].startswith("step_")]
measures = [("class_agreement", "same class"), ("step_exact", "same exit frame"),
            ("step_within_1", "exit frame ±1")]
fig, ax = plt.subplots(figsize=(10, 4))
width = 0.8 / len(measures)
positions = np.arange(len(rows))
for k, (key, label) in enumerate(measures):
    values = [100 * r[key] for r in rows]
    bars = ax.bar(positions + (k - 1) * width, values, width, label=label)
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
ax.set_xticks(positions, [f"{r['model'].replace('.tflite', '')}\n{r['runtime']}" for r in rows],
              fontsize=8)
ax.set_ylabel("agreement with Keras (% of sequences)")
ax.set_ylim(0, 110)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
ax.set_title(f"Deployed step models against Keras ({len(x_test)} held-out sequences, "
             f"SIZE={SIZE})", fontsize=10)
fig.tight_layout()
fig.savefig(FIGURES / f"deploy_agreement_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Figure: one sequence, frame by frame, in Keras and in TFLM
#
# `StepRunner` runs a step model one frame at a time, as the firmware loop does. Here it
# runs past the exit so the whole readout can be compared with Keras's
# `step_probabilities`; the markers show where each one first crosses θ.

# %%
keras_steps = model.step_probabilities(x_test)[..., 1].numpy()
keras_spike = model.predict(x_test, verbose=0)["spike_time"]
# A sequence that answers after a few frames, so that the curves have room to differ.
index = int(np.argmin(np.abs(keras_spike - np.median(keras_spike))))
traces = {"Keras": keras_steps[index]}
for q in ("float32", "int8"):
    runner = export.StepRunner(BUNDLE / f"step_{q}.tflite", runtime="tflm")
    frames = runner.quantize_frames(x_test[index])
    traces[f"TFLM {q}"] = np.array([runner.dequantize_probs(runner.invoke(f))[1] for f in frames])

fig, ax = plt.subplots(figsize=(7, 4))
frames_read = np.arange(1, x_test.shape[1] + 1)
styles = {"Keras": ("black", "-"), "TFLM float32": ("tab:blue", "--"),
          "TFLM int8": ("tab:red", ":")}
for name, trace in traces.items():
    color, line = styles[name]
    ax.plot(frames_read, trace, color=color, linestyle=line, linewidth=1.8, label=name)
    crossed = np.flatnonzero(np.maximum(trace, 1 - trace) >= THRESHOLD)
    if len(crossed):
        ax.plot(frames_read[crossed[0]], trace[crossed[0]], marker="o", color=color,
                markersize=8, fillstyle="none", linestyle="none")
for level in (THRESHOLD, 1 - THRESHOLD):
    ax.axhline(level, color="gray", linewidth=1, linestyle=(0, (1, 3)))
ax.set_xlabel("frame (samples read)")
ax.set_ylabel("P(class 1) output")
ax.set_ylim(-0.05, 1.05)
ax.legend(title=f"label {y_test[index]}; ○ first crossing of θ", fontsize=8, title_fontsize=8)
ax.set_title("The int8 step model tracks the Keras readout frame by frame", fontsize=10)
fig.tight_layout()
fig.savefig(FIGURES / f"deploy_trace_{SIZE}.png", dpi=120)
plt.show()

# %% [markdown]
# ## Numbers behind the figures

# %%
record = {"size": SIZE, "config": CFG, "threshold": THRESHOLD, "beta": BETA,
          "train_seconds": train_seconds, "keras_scores": scores,
          "agreement": report["verify"]["rows"], "models": report["models"],
          "twin_scores": twin_scores, "twin_agreement": twin_report["verify"]["rows"],
          "versions": report["versions"], "trace_sequence": index}
(FIGURES / f"deploy_{SIZE}.json").write_text(json.dumps(record, indent=2))
print(export.format_agreement_table(report))

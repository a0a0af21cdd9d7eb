"""Runs one RC train step on 2 logical CPU devices (MirroredStrategy) and on one device.

Prints a JSON line with the max weight difference and both losses. Run in its own
process: logical devices must be configured before TensorFlow initializes.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rc_keras as rk  # noqa: E402


def build():
    keras.utils.set_random_seed(7)
    model = rk.RCModel(keras.layers.LSTMCell(6), keras.layers.Dense(3, activation="softmax"),
                       threshold=0.42, per_example_halting=True)
    model.compile(keras.optimizers.SGD(0.5), rk.ConfidencePenalty(beta=0.2),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.NoSpikeRate(), rk.metrics.StepsRun(),
                           rk.metrics.ComputeFraction()])
    model.build((None, 10, 4))
    return model


rng = np.random.default_rng(0)
x = rng.normal(size=(16, 10, 4)).astype("float32") * 2
y = rng.integers(0, 3, size=16).astype("int32")

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = build()
single = build()
for a, b in zip(mirrored.weights, single.weights):
    assert np.array_equal(a.numpy(), b.numpy())
spikes = single.predict(x, verbose=0)["spike_time"]
h_m = mirrored.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
h_s = single.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
diff = max(float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(mirrored.weights, single.weights))
moved = max(float(np.max(np.abs(a.numpy() - b.numpy())))
            for a, b in zip(single.trainable_weights, build().trainable_weights))

def loop_length(spike_time):
    """Iterations the halting loop runs for a batch: up to its last example's spike."""
    return int(spike_time.max()) + 1


def staged_evaluations(spike_time, fraction=0.75, min_rows=4):
    """Cell evaluations of the per-example unroll, by its documented rule for a batch
    size known while tracing (as here): stage sizes are fixed in advance, each
    floor(3/4) of the one before; a stage runs its rows (those still running, padded
    with rows that answered before) while more than its floor(3/4) still run, checked
    before each step, so a stage may run no step at all; a stage of 4 rows or fewer
    runs to the end. (Batches this small never reach the stage limit.)"""
    spikes, t, total, count = [int(s) for s in spike_time], 0, 0, len(spike_time)
    while True:
        limit = int(np.floor(fraction * count))
        while True:
            running = sum(s >= t for s in spikes)
            if running == 0 or (count > min_rows and running <= limit):
                break
            total += count
            t += 1
        if running == 0:
            return total
        count = limit


json.dump({"replicas": strategy.num_replicas_in_sync, "weight_diff": diff, "moved": moved,
           "loss_mirrored": h_m["loss"][0], "loss_single": h_s["loss"][0],
           "mst_mirrored": h_m["mean_spike_time"][0], "mst_single": h_s["mean_spike_time"][0],
           "metrics_mirrored": {k: v[0] for k, v in h_m.items()},
           "metrics_single": {k: v[0] for k, v in h_s.items()},
           # Each replica runs its own loop over its half of the batch: StepsRun reports
           # the mean of the two loop lengths, one device the length of the whole batch.
           "steps_run_expected_mirrored": (loop_length(spikes[:8]) + loop_length(spikes[8:])) / 2,
           "steps_run_expected_single": loop_length(spikes),
           # ComputeFraction sums the replicas' evaluations over the global batch x time.
           "compute_fraction_expected_mirrored": (staged_evaluations(spikes[:8])
                                                  + staged_evaluations(spikes[8:])) / 160,
           "compute_fraction_expected_single": staged_evaluations(spikes) / 160,
           "distinct_spikes": len(set(spikes.tolist()))}, sys.stdout)

"""One worker of a 2-worker MultiWorkerMirroredStrategy run of RCModel on 127.0.0.1.

Usage: multiworker_train.py INDEX PORT0,PORT1

Trains a few steps of a toy task on a global batch split across the workers, then
trains the same model on one device with the same global batches, and prints a JSON
line: the worker's losses and metrics and its largest weight difference to the
one-device run.
"""

import json
import os
import sys

index = int(sys.argv[1])
ports = sys.argv[2].split(",")
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
    "task": {"type": "worker", "index": index}})
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import rc_keras as rk  # noqa: E402

GLOBAL_BATCH, STEPS = 16, 3


def build():
    keras.utils.set_random_seed(7)
    model = rk.RCModel(keras.layers.LSTMCell(6), keras.layers.Dense(2, activation="softmax"),
                       threshold=0.6)
    model.compile(keras.optimizers.SGD(0.5), rk.ConfidencePenalty(beta=0.2),
                  metrics=[rk.metrics.SpikeAccuracy(), rk.metrics.MeanSpikeTime(),
                           rk.metrics.NoSpikeRate()])
    model.build((None, 12, 1))
    return model


def dataset():
    x, y = rk.datasets.two_sequence(GLOBAL_BATCH * STEPS, seed=11)
    x = x[:, :12] * 20  # a short, strong signal: spikes fall at many different steps
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    # Each global batch is split between the workers (not whole files or batches).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    distributed = build()
h_d = distributed.fit(dataset(), epochs=1, verbose=0).history
single = build()
h_s = single.fit(dataset(), epochs=1, verbose=0).history
diff = max(float(np.max(np.abs(a.numpy() - b.numpy())))
           for a, b in zip(distributed.weights, single.weights))
moved = max(float(np.max(np.abs(a.numpy() - b.numpy())))
            for a, b in zip(single.trainable_weights, build().trainable_weights))
print(json.dumps({"index": index, "replicas": strategy.num_replicas_in_sync, "weight_diff": diff,
                  "moved": moved, "steps": int(distributed.optimizer.iterations.numpy()),
                  "distributed": {k: v[0] for k, v in h_d.items()},
                  "single": {k: v[0] for k, v in h_s.items()}}))
sys.stdout.flush()

"""`rc_keras.cli.train` on a small two-sequence run, optionally killed mid-training.

Usage: resume_train.py OUT_DIR [KILL_AFTER_BATCHES]

With KILL_AFTER_BATCHES the process SIGKILLs itself right after that many training
batches (counted over all epochs), as a preempted job would die. Run in its own process:
op determinism is a process-wide switch.
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402

from rc_keras import cli  # noqa: E402

# 256 sequences in batches of 64: 4 batches per epoch, 3 epochs.
RUN = dict(task="two-sequence", epochs=3, train_size=256, val_size=64, test_size=64, units=8,
           seed=3, learning_rate=0.01, verbose=0, deterministic=True)


class KillAfter(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches, self.seen = batches, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.batches:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    out = sys.argv[1]
    callbacks = [KillAfter(int(sys.argv[2]))] if len(sys.argv) > 2 else []
    summary = cli.train(out_dir=out, callbacks=callbacks, **RUN)
    print("resumed_from_epoch", summary["resumed_from_epoch"])

"""`rc_keras.workflows.train` (`rc_keras.cli.train`) on a small two-sequence run, optionally killed mid-training.

Usage: resume_train.py OUT_DIR [KILL_AFTER_BATCHES [SPEECH_COMMANDS_ROOT]]

With KILL_AFTER_BATCHES (0: none) the process SIGKILLs itself right after that many
training batches (counted over all epochs), as a preempted job would die. With
SPEECH_COMMANDS_ROOT the run is the speech-commands task on that folder instead. Run in
its own process: op determinism is a process-wide switch.
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
# The keyword recipe (best validation epoch kept, majority-class stop) on a tiny folder:
# 24 training clips in batches of 8, 3 batches per epoch (no augmented copies, so that
# the kill lands at a known batch).
RUN_KWS = dict(task="speech-commands", epochs=3, units=8, seed=3, learning_rate=0.01,
               verbose=0, deterministic=True, context_frames=0, batch_size=8,
               augment_copies=0)


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
    kill = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    callbacks = [KillAfter(kill)] if kill else []
    run = dict(RUN_KWS, data_root=sys.argv[3]) if len(sys.argv) > 3 else RUN
    summary = cli.train(out_dir=out, callbacks=callbacks, **run)
    print("resumed_from_epoch", summary["resumed_from_epoch"])

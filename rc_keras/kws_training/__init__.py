"""Training the keyword-spotting network on Speech Commands (real or synthesized).

The recipe of the paper's Speech Commands experiment: `rc_keras.models.kws_lstm`
(LSTM 128, Dense 32 relu, Dense n softmax) on log-mel frames, Adam with the gradients
clipped to a global L2 norm of 0.25 (``global_clipnorm``: the norm of all gradients
together, as PyTorch's ``clip_grad_norm_``), the confidence penalty
``cross-entropy - beta * entropy``, the best epoch by validation spike accuracy kept
(``keras.callbacks.ModelCheckpoint(save_best_only=True)``), and a run stopped once its
spike accuracy falls below the share of the majority class (`MajorityClassStop`): a run
that answers no better than "always unknown" has collapsed.

```python
from rc_keras import kws_training
summary = kws_training.train_speech_commands("data/speech_commands", "runs/kws_b02", beta=0.2)
```
or ``rc-keras train --task speech-commands --data data/speech_commands --beta 0.2 --out runs/kws``.

Clips are turned into feature arrays once per split and cached as ``.npz`` files
(`load_split_arrays`), so every epoch and every model of a beta sweep reads the same
features without recomputing them.

This package is the public entry: every name below is importable from
``rc_keras.kws_training``; each lives in the module that holds its part of the recipe.

| part of the recipe | module | main names |
| --- | --- | --- |
| compile, fit, evaluate, whole run | `recipe` | `compile_kws`, `fit_kws`, `evaluate_kws`, `train_speech_commands` |
| Keras callbacks | `callbacks` | `MajorityClassStop`, `EndOfClipAccuracy`, `EpochTimer` |
| feature-array cache, split loading | `arrays` | `load_split_arrays`, `waveform_features`, `test_arrays_for` |
| front end, frame timing | `front_end_params` | `front_end`, `saved_front_end`, `context_frames_of`, `frames_to_ms` |
| the ``--task speech-commands`` hooks | `task` | `SPEECH_COMMANDS` |
"""

# Thin re-exports: the names users and the rest of rc_keras import from here.
from rc_keras.kws_training.arrays import (check_data_root, load_split_arrays,
                                          speech_commands_module, test_arrays_for,
                                          waveform_features)
from rc_keras.kws_training.callbacks import (EndOfClipAccuracy, EpochTimer, MajorityClassStop,
                                             checkpoint_monitor, end_of_clip_accuracy,
                                             majority_share)
from rc_keras.kws_training.front_end_params import (DEFAULT_NORMALIZATION, FRAME_STRIDE_MS,
                                                    FRAME_WINDOW_MS, FRONT_END_FILE,
                                                    context_frames_of, frames_to_ms, front_end,
                                                    saved_front_end, sweep_points_ms,
                                                    task_front_end)
from rc_keras.kws_training.recipe import (GRACE_EPOCHS, GRADIENT_CLIP_NORM, UNKNOWN_KEEP,
                                          augment_params, compile_kws, evaluate_kws, fit_kws,
                                          train_speech_commands)
from rc_keras.kws_training.task import SPEECH_COMMANDS

__all__ = ["MajorityClassStop", "EpochTimer", "majority_share", "compile_kws",
           "fit_kws", "load_split_arrays", "evaluate_kws", "train_speech_commands",
           "front_end", "context_frames_of", "sweep_points_ms", "test_arrays_for",
           "end_of_clip_accuracy", "EndOfClipAccuracy", "waveform_features", "saved_front_end",
           "FRONT_END_FILE", "DEFAULT_NORMALIZATION",
           "FRAME_STRIDE_MS", "FRAME_WINDOW_MS", "frames_to_ms", "SPEECH_COMMANDS",
           "checkpoint_monitor", "task_front_end", "augment_params", "check_data_root",
           "speech_commands_module", "GRADIENT_CLIP_NORM", "GRACE_EPOCHS", "UNKNOWN_KEEP"]

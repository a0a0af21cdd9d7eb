"""The front end a keyword model is trained on, saved with and timed by.

`front_end` (the paper's `rc_keras.features.FrontEndParams`), `task_front_end` (what
``rc-keras train --task speech-commands`` uses), `FRONT_END_FILE` written beside a trained
model and read back by `saved_front_end`, `context_frames_of` (the context a model's
input width implies), and the frame timing `FRAME_STRIDE_MS` / `FRAME_WINDOW_MS` with
`frames_to_ms` and `sweep_points_ms`.

Part of `rc_keras.kws_training`, which re-exports every name here.
"""

import json
from pathlib import Path

# One frames -> milliseconds map for the whole library (re-exported here).
from rc_keras.tradeoff import frames_to_ms

__all__ = ["FRAME_STRIDE_MS", "FRAME_WINDOW_MS", "frames_to_ms", "front_end",
           "FRONT_END_FILE", "DEFAULT_NORMALIZATION", "task_front_end", "saved_front_end",
           "context_frames_of", "sweep_points_ms"]

FRAME_STRIDE_MS = 10.0
"""Hop between feature frames (the paper's front end: 10 ms)."""
FRAME_WINDOW_MS = 25.0
"""Analysis window of one frame (25 ms): frame k (1-based) covers audio up to
``25 + 10 * (k - 1)`` ms."""


def front_end(context_frames=10, **kwargs):
    """The paper's `rc_keras.features.FrontEndParams` with ``context_frames`` each side."""
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    return FrontEndParams(context_frames=int(context_frames), **kwargs)


FRONT_END_FILE = "front_end.json"
"""Written next to a trained keyword model: its `FrontEndParams` (normalization included)."""
DEFAULT_NORMALIZATION = "none"
"""The causal normalization `rc-keras train --task speech-commands` uses by default: the
leave-one-engine-out benchmark (benchmarks/results/kws_transfer_72_voices.md) measured plain
log-mel ahead of running-mean subtraction and PCEN at its training budget."""


def task_front_end(context_frames=None, normalization=None):
    """The speech-commands task's `FrontEndParams`: ``context_frames`` each side (None:
    10, the paper's) and a causal ``normalization`` (None: `DEFAULT_NORMALIZATION`)."""
    return front_end(10 if context_frames is None else context_frames,
                     normalization=normalization or DEFAULT_NORMALIZATION)


def saved_front_end(model_path):
    """The `FrontEndParams` saved next to ``model_path`` (`FRONT_END_FILE`), or None."""
    from rc_keras.features import FrontEndParams  # noqa: PLC0415

    path = Path(model_path).parent / FRONT_END_FILE
    if not path.is_file():
        return None
    return FrontEndParams(**json.loads(path.read_text()))


def context_frames_of(model, num_mel_bins=20):
    """Context frames each side that a keyword model's input width implies.

    A model on ``num_mel_bins * (2 * c + 1)`` features per step was trained with a
    context of ``c`` frames each side (20 features: none, 420: ten).

    Raises:
        ValueError: for a width that no context gives.
    """
    width = int(model.feature_shape[-1])
    if width % num_mel_bins or (width // num_mel_bins) % 2 == 0:
        raise ValueError(f"the model reads {width} features per step, which is not "
                         f"{num_mel_bins} mel bands x (2 * context + 1) frames.")
    return (width // num_mel_bins - 1) // 2


def sweep_points_ms(points, model):
    """Sweep points of a keyword model with "mean_spike_time_ms" added (its look-ahead
    of stacked future frames included)."""
    from rc_keras import tradeoff  # noqa: PLC0415

    return tradeoff.add_milliseconds(points, FRAME_STRIDE_MS, FRAME_WINDOW_MS,
                                     lookahead_frames=context_frames_of(model))

"""The paper's keyword-spotting network, `kws_lstm`, and its parameter count.

```python
import rc_keras
from rc_keras import models
model = models.kws_lstm(num_classes=11)        # LSTM 128 -> Dense 32 relu -> Dense 11 softmax
model.compile("adam", rc_keras.ConfidencePenalty(beta=0.2))
```
"""

import keras

from rc_keras import validation
from rc_keras.model import RCModel

__all__ = ["kws_lstm", "kws_lstm_param_count"]


def kws_lstm_param_count(num_classes, num_features=20, units=128, hidden=32):
    """Trainable parameters of `kws_lstm` with these sizes, counted by hand
    (``count_params()`` adds one: the non-trainable threshold variable).

    LSTM: 4 gates x units x (features + units + 1 bias); Dense layers: inputs x outputs
    + outputs. For the paper's sizes (20 features, 128 units, 32 hidden, 11 classes):
    76,288 + 4,128 + 363 = 80,779.
    """
    lstm = 4 * units * (num_features + units + 1)
    return lstm + (units * hidden + hidden) + (hidden * num_classes + num_classes)


def kws_lstm(num_classes, num_features=20, units=128, hidden=32, threshold=0.95,
             training_mode="rc", dropout=0.0, name="kws_lstm"):
    """The keyword-spotting network of the paper's Speech Commands experiment.

    One ``keras.layers.LSTMCell(units)`` reads one feature frame per step; the head
    ``Dense(hidden, relu) -> Dense(num_classes, softmax)`` is applied at every step and
    the model answers at the first step whose largest probability reaches ``threshold``.
    The model is built for inputs ``(batch, time, num_features)``, so its weights exist
    (and ``count_params()`` works) before training. Pass the clips' true lengths as
    ``{"inputs": frames, "lengths": n}`` so that no spike lands in padding.

    Args:
        num_classes: number of classes (11 for "paper11", 12 for "standard12"); >= 2.
        num_features: features per frame (20 log-mel bands; 20 x 21 with a context of
            10 frames each side stacked).
        units: LSTM width.
        hidden: width of the ReLU layer of the head.
        threshold: spike threshold theta in (0, 1); can be changed after training.
        training_mode: "rc" (loss at the spike) or "eos" (conventional: loss at the
            last valid frame).
        dropout: input dropout rate of the LSTM cell, in [0, 1).
        name: model name.

    Returns:
        A built, uncompiled `rc_keras.RCModel`.

    Raises:
        ValueError: naming the argument, for a size that is not a positive integer, a
            class count below 2, a threshold outside (0, 1), an unknown mode or a
            dropout outside [0, 1).
    """
    num_classes = validation.check_positive_int(num_classes, "num_classes")
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be >= 2 for a softmax readout; received "
                         f"{num_classes}.")
    num_features = validation.check_positive_int(num_features, "num_features")
    units = validation.check_positive_int(units, "units")
    hidden = validation.check_positive_int(hidden, "hidden")
    threshold = validation.check_threshold(threshold)
    validation.check_choice(training_mode, validation.MODES, "training_mode")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"`dropout` must lie in [0, 1); received {dropout!r}.")
    head = keras.Sequential([keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")],
                            name=f"{name}_head")
    model = RCModel(cell=keras.layers.LSTMCell(units, dropout=float(dropout)), head=head,
                    threshold=threshold, readout="softmax", training_mode=training_mode,
                    name=name)
    model.build((None, None, num_features))
    return model

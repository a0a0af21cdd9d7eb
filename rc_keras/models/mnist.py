"""The paper's temporally coded MNIST networks, as uncompiled `RCModel` factories.

- ``rc_lstm_mnist()``: 784-340-10, an LSTM of 340 units over flattened frames
  (``temporal_mnist(flatten=True)``), then a dense 10-way softmax.
- ``rc_conv_lstm_mnist(filters=20)`` / ``(filters=10)``: 784-20-10 and 784-10-10, a
  ConvLSTM over (28, 28, 1) frames with 20 or 10 feature maps ("same" padding, so the
  maps stay 28 x 28), flattened into a dense 10-way softmax.
"""

import keras

from rc_keras.cells.conv_lstm import ConvLSTM2DCell
from rc_keras.model import RCModel


def _softmax_head(num_classes, flatten):
    layers = [keras.layers.Flatten()] if flatten else []
    return keras.Sequential(layers + [keras.layers.Dense(num_classes, activation="softmax")])


def rc_lstm_mnist(units=340, num_classes=10, threshold=0.9, training_mode="rc", **kwargs):
    """The 784-340-10 RC-LSTM. Inputs: (batch, time, 784) frames.

    Args:
        units: LSTM width (340 in the paper).
        num_classes: classes of the softmax head.
        threshold: spike threshold theta.
        training_mode: "rc" or "eos".
        **kwargs: passed to `RCModel`.
    """
    return RCModel(keras.layers.LSTMCell(units), _softmax_head(num_classes, flatten=False),
                   threshold=threshold, training_mode=training_mode, **kwargs)


def rc_conv_lstm_mnist(filters=20, kernel_size=3, num_classes=10, threshold=0.9,
                       training_mode="rc", **kwargs):
    """The 784-20-10 (``filters=20``) or 784-10-10 (``filters=10``) RC-ConvLSTM.

    Inputs: (batch, time, 28, 28, 1) frames.

    Args:
        filters: ConvLSTM feature maps.
        kernel_size: convolution window of the cell (3 x 3 by default; the paper's
            network size names only the maps).
        num_classes: classes of the softmax head.
        threshold: spike threshold theta.
        training_mode: "rc" or "eos".
        **kwargs: passed to `RCModel`.
    """
    return RCModel(ConvLSTM2DCell(filters, kernel_size, padding="same"),
                   _softmax_head(num_classes, flatten=True),
                   threshold=threshold, training_mode=training_mode, **kwargs)

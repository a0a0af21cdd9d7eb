"""Old import path of the MNIST model factories, kept for existing code and notebooks:
they live in `rc_keras.models.mnist` (``from rc_keras.models import rc_lstm_mnist``)."""

from rc_keras.models.mnist import rc_conv_lstm_mnist, rc_lstm_mnist

__all__ = ["rc_lstm_mnist", "rc_conv_lstm_mnist"]

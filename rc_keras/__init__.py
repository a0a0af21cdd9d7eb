"""rc_keras: rank-coded recurrent networks for Keras 3 on TensorFlow."""

import os

# TensorFlow's C++ info logs (oneDNN notices, converter traces) drown the progress
# output of training and export; a value the user has set is left alone.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rc_keras import cells, datasets, metrics, quantization
from rc_keras.losses import ConfidencePenalty
from rc_keras.model import RCModel
from rc_keras.rank_coding import RCOutput

__version__ = "0.1.0"

__all__ = ["RCModel", "ConfidencePenalty", "RCOutput", "cells", "datasets", "metrics", "quantization", "__version__"]

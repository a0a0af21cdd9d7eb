"""Model factories: the paper's networks as ready-made, uncompiled `RCModel` instances.

| factory | network | module |
| --- | --- | --- |
| `kws_lstm` | keyword spotting: LSTM 128, Dense 32 relu, Dense n softmax | `rc_keras.models.keyword` |
| `rc_lstm_mnist` | temporal MNIST 784-340-10 (LSTM) | `rc_keras.models.mnist` |
| `rc_conv_lstm_mnist` | temporal MNIST 784-20-10 / 784-10-10 (ConvLSTM) | `rc_keras.models.mnist` |

```python
import rc_keras
from rc_keras import models
model = models.kws_lstm(num_classes=11)
model.compile("adam", rc_keras.ConfidencePenalty(beta=0.2))
```

The model class itself is `rc_keras.RCModel` (rc_keras/model.py); the halting loop it runs
is `rc_keras.rank_coding.rank_code`.
"""

from rc_keras.models.keyword import kws_lstm, kws_lstm_param_count
from rc_keras.models.mnist import rc_conv_lstm_mnist, rc_lstm_mnist

__all__ = ["kws_lstm", "kws_lstm_param_count", "rc_lstm_mnist", "rc_conv_lstm_mnist"]

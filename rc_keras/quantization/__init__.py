"""Quantization: the int8-friendly LSTM step and quantization-aware (int8-exact) models.

`quantize_aware` turns a trained RCModel into a twin whose forward pass rounds like its
int8 TFLite export; fine-tune it with `fit` and export it, and the int8 model's exits
agree with the Keras model's.
"""

from rc_keras.quantization.int8_lstm import INT8_GATE_CLIP, lstm_step, supports_lstm_step
from rc_keras.quantization.quantize_aware import is_quantization_aware, quantize_aware
from rc_keras.quantization.quantized_dense import QuantizedDense
from rc_keras.quantization.quantized_lstm_cell import QuantizedLSTMCell

__all__ = ["INT8_GATE_CLIP", "QuantizedDense", "QuantizedLSTMCell", "is_quantization_aware",
           "lstm_step", "quantize_aware", "supports_lstm_step"]

"""Quantization: the int8-friendly LSTM step used by the step-model export."""

from rc_keras.quantization.int8_lstm import INT8_GATE_CLIP, lstm_step, supports_lstm_step

__all__ = ["INT8_GATE_CLIP", "lstm_step", "supports_lstm_step"]

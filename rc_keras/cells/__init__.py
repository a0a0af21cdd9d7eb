"""Recurrent cells that Keras lacks."""

from rc_keras.cells.conv_lstm import ConvLSTM2DCell
from rc_keras.cells.spiking_lif import SpikingLIFCell, quantize_spikes

__all__ = ["ConvLSTM2DCell", "SpikingLIFCell", "quantize_spikes"]

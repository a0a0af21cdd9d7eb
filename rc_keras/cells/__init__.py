"""Recurrent cells that Keras lacks."""

from rc_keras.cells.spiking_lif import SpikingLIFCell, quantize_spikes

__all__ = ["SpikingLIFCell", "quantize_spikes"]

"""Multiplications and additions a recurrent model needs on an event-driven device.

Counting rules (per example and time step):

- A matrix-vector product ``y = W x + b`` with ``m`` outputs costs ``m * k``
  multiplications and ``m * k`` additions, where ``k`` is the number of inputs it must
  read: all ``n`` of them, unless ``x`` is the output of a spiking layer
  (`rc_keras.cells.SpikingLIFCell`), whose zero outputs skip their column of ``W``
  (``k`` = the non-zero outputs of that step). The accumulator starts at the bias, so
  the bias is free. A *binary* spiking source (``output_bits=1``) needs no
  multiplications at all: ``W[:, j] * 1`` is an addition of the column.
- LSTM, GRU and SimpleRNN cells pay every product of both their input and recurrent
  matrices; their element-wise gate arithmetic is counted as the Keras cells compute it.
- Non-linearities (sigmoid, tanh, softmax), comparisons and clipping are not counted;
  a quantizer's ``1/L`` output scale is folded into the next layer's weights.

`count_ops` runs the model over the data to see which outputs are zero, and counts an
`rc_keras.RCModel` only on the steps it runs before each example's answer (or on every
valid step with ``halt=False``), and a plain ``keras.Sequential`` of RNN (``RNN``,
``LSTM``, ``GRU``, ``SimpleRNN``) and ``Dense`` layers on every step.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from rc_keras.cells.spiking_lif import SpikingLIFCell

_PASS_THROUGH = (keras.layers.InputLayer, keras.layers.Dropout, keras.layers.Identity,
                 keras.layers.Activation, keras.layers.Softmax)


@dataclasses.dataclass(frozen=True)
class OpCount:
    """Operation counts of a model over a batch of sequences.

    Attributes:
        mults: (batch, time) multiplications per example and step; 0 on steps not run.
        adds: (batch, time) additions per example and step; 0 on steps not run.
        steps_run: (batch,) steps counted for each example.
        firing_rate: mean fraction of non-zero outputs of the spiking layers over the
            counted steps (all units, all spiking layers); None without spiking layers.
    """

    mults: np.ndarray
    adds: np.ndarray
    steps_run: np.ndarray
    firing_rate: float = None

    @property
    def mults_per_sequence(self):
        """(batch,) multiplications of each example's whole (possibly halted) run."""
        return self.mults.sum(axis=1)

    @property
    def adds_per_sequence(self):
        """(batch,) additions of each example's whole (possibly halted) run."""
        return self.adds.sum(axis=1)

    @property
    def mults_per_step(self):
        """Mean multiplications per step run."""
        return float(self.mults.sum() / max(int(self.steps_run.sum()), 1))

    def summary(self):
        """Means over the batch, as a JSON-friendly dict."""
        return {
            "mults_per_sequence": float(self.mults_per_sequence.mean()),
            "adds_per_sequence": float(self.adds_per_sequence.mean()),
            "mults_per_step": self.mults_per_step,
            "adds_per_step": float(self.adds.sum() / max(int(self.steps_run.sum()), 1)),
            "mean_steps_run": float(self.steps_run.mean()),
            "firing_rate": self.firing_rate,
        }


def matvec_ops(rows, active_inputs, binary_inputs=False):
    """(multiplications, additions) of ``W x + b`` reading ``active_inputs`` columns.

    Args:
        rows: outputs of the product.
        active_inputs: number of inputs read (an int or an array).
        binary_inputs: the inputs are 0/1 spikes: products become additions.
    """
    products = rows * np.asarray(active_inputs, dtype=np.float64)
    return (np.zeros_like(products) if binary_inputs else products), products


def cell_step_ops(cell, input_dim, active_inputs=None, binary_inputs=False,
                  active_recurrent=None):
    """(multiplications, additions) of one step of one cell.

    Args:
        cell: a ``keras.layers.LSTMCell``, ``GRUCell``, ``SimpleRNNCell`` or
            `rc_keras.cells.SpikingLIFCell`.
        input_dim: width of the cell input.
        active_inputs: inputs read (default all); fewer where the input comes from a
            spiking layer.
        binary_inputs: the input is a binary spike vector.
        active_recurrent: for a spiking cell, the non-zero outputs of its previous step
            (default all); the other cells read their whole recurrent state.

    Returns:
        Two floats, or two arrays shaped like ``active_inputs`` / ``active_recurrent``.
    """
    n = input_dim if active_inputs is None else active_inputs
    if isinstance(cell, SpikingLIFCell):
        u = cell.units
        k = u if active_recurrent is None else active_recurrent
        m_in, a_in = matvec_ops(2 * u, n, binary_inputs)
        m_rec, a_rec = matvec_ops(2 * u, k, cell.output_bits == 1)
        # v = c + f * (u - c): 1 mult, 2 adds; floor(L * v): 1 mult unless L = 1;
        # soft reset u = v - s: 1 add.
        mults = u * (1 + (cell.output_bits > 1))
        return m_in + m_rec + mults, a_in + a_rec + 3 * u
    u = cell.units
    if isinstance(cell, keras.layers.LSTMCell):
        m_in, a_in = matvec_ops(4 * u, n, binary_inputs)
        m_rec, a_rec = matvec_ops(4 * u, u)
        # c = f * c + i * g; h = o * tanh(c)
        return m_in + m_rec + 3 * u, a_in + a_rec + u
    if isinstance(cell, keras.layers.GRUCell):
        m_in, a_in = matvec_ops(3 * u, n, binary_inputs)
        m_rec, a_rec = matvec_ops(3 * u, u)
        # r * (U_h h + b_h); h = z * h + (1 - z) * hh
        mults, adds = 3 * u, 2 * u
        if cell.reset_after:
            adds += u                      # x_h + r * (U_h h + b_h)
            if cell.use_bias:
                adds += 3 * u              # the separate recurrent bias
        return m_in + m_rec + mults, a_in + a_rec + adds
    if isinstance(cell, keras.layers.SimpleRNNCell):
        m_in, a_in = matvec_ops(u, n, binary_inputs)
        m_rec, a_rec = matvec_ops(u, u)
        return m_in + m_rec, a_in + a_rec
    raise NotImplementedError(f"no operation count for {type(cell).__name__}.")


class _Signal:
    """A layer's output as the next layer sees it: values and how sparse they count."""

    def __init__(self, values, spiking=False, binary=False):
        self.values = values          # (batch, time, width) or (batch, width), numpy
        self.spiking = spiking
        self.binary = binary

    @property
    def width(self):
        return self.values.shape[-1]

    def active(self):
        """Inputs a consumer must read: non-zero count for spiking sources, else all."""
        if self.spiking:
            return np.count_nonzero(self.values, axis=-1).astype(np.float64)
        return np.full(self.values.shape[:-1], float(self.width))


class _Counter:
    def __init__(self, batch, time):
        self.mults = np.zeros((batch, time))
        self.adds = np.zeros((batch, time))
        self.fired = []               # per spiking layer: (batch, time) non-zero counts, units

    def add(self, ops, at=None):
        mults, adds = ops
        target = (slice(None),) if at is None else (slice(None), at)
        self.mults[target] += mults
        self.adds[target] += adds


def _cells(cell):
    return list(getattr(cell, "cells", [cell]))


def _run_cell(cell, signal, counter):
    """Runs one cell over a (batch, time, width) signal, counting every step."""
    outputs = keras.layers.RNN(cell, return_sequences=True)(
        tf.convert_to_tensor(signal.values, tf.float32))
    outputs = np.asarray(outputs)
    spiking = isinstance(cell, SpikingLIFCell)
    active_rec = None
    if spiking:
        nonzero = np.count_nonzero(outputs, axis=-1).astype(np.float64)
        # The recurrent input of step t is the output of step t - 1 (zeros at t = 0).
        active_rec = np.concatenate([np.zeros_like(nonzero[:, :1]), nonzero[:, :-1]], axis=1)
        counter.fired.append((nonzero, cell.units))
    counter.add(cell_step_ops(cell, signal.width, signal.active(), signal.binary and signal.spiking,
                              active_rec))
    return _Signal(outputs, spiking=spiking, binary=spiking and cell.output_bits == 1)


def _dense_layers(layer):
    """Flattens a head into its Dense layers (pass-through layers dropped)."""
    if isinstance(layer, keras.Sequential):
        return [d for sub in layer.layers for d in _dense_layers(sub)]
    if isinstance(layer, keras.layers.Dense):
        return [layer]
    if isinstance(layer, _PASS_THROUGH):
        return []
    raise NotImplementedError(f"no operation count for layer {type(layer).__name__}.")


def _count_dense(layer, signal, counter, at=None):
    counter.add(matvec_ops(layer.units, signal.active(), signal.spiking and signal.binary), at=at)
    # Values beyond the first Dense are never sparse sources: only their width matters.
    shape = signal.values.shape[:-1] + (layer.units,)
    return _Signal(np.ones(shape, np.float32))


def _finish(counter, counted):
    counted = counted.astype(bool)
    mults = np.where(counted, counter.mults, 0.0)
    adds = np.where(counted, counter.adds, 0.0)
    rate = None
    if counter.fired:
        fired = sum(float(np.where(counted, n, 0).sum()) for n, _ in counter.fired)
        slots = sum(float(counted.sum()) * units for _, units in counter.fired)
        rate = fired / max(slots, 1.0)
    return OpCount(mults, adds, counted.sum(axis=1).astype(np.int64), rate)


def _count_rc_model(model, x, halt, lengths, spike_time):
    batch, time = x.shape[:2]
    counter = _Counter(batch, time)
    signal = _Signal(x.reshape(batch, time, -1))
    for cell in _cells(model.cell):
        signal = _run_cell(cell, signal, counter)
    for layer in _dense_layers(model.head):
        signal = _count_dense(layer, signal, counter)
    steps = np.arange(time)[None, :]
    last = (np.full(batch, time) if lengths is None else np.asarray(lengths))[:, None]
    counted = steps < last
    if halt:
        if spike_time is None:
            inputs = x if lengths is None else {"inputs": x, "lengths": lengths}
            spike_time = model.rank_code(inputs, training=False, mode="rc").spike_time
        counted &= steps <= np.asarray(spike_time)[:, None]
    return _finish(counter, counted)


def _count_sequential(model, x):
    batch, time = x.shape[:2]
    counter = _Counter(batch, time)
    signal = _Signal(x.reshape(batch, time, -1))
    for layer in model.layers:
        if isinstance(layer, keras.layers.RNN):
            if getattr(layer, "go_backwards", False):
                raise NotImplementedError("go_backwards RNN layers are not counted.")
            if signal.values.ndim != 3:
                raise ValueError(f"{layer.name} needs a sequence input.")
            for cell in _cells(layer.cell):
                signal = _run_cell(cell, signal, counter)
            if not layer.return_sequences:
                signal = _Signal(signal.values[:, -1], signal.spiking, signal.binary)
        elif isinstance(layer, keras.layers.Dense):
            # A Dense after a final-step RNN output runs once, at the last step.
            at = None if signal.values.ndim == 3 else time - 1
            signal = _count_dense(layer, signal, counter, at=at)
        elif isinstance(layer, _PASS_THROUGH):
            continue
        else:
            raise NotImplementedError(f"no operation count for layer {type(layer).__name__}.")
    return _finish(counter, np.ones((batch, time), bool))


def count_ops(model, x, halt=True, lengths=None, spike_time=None, batch_size=2048):
    """Counts the operations ``model`` needs for each sequence of ``x``.

    Args:
        model: an `rc_keras.RCModel`, or a ``keras.Sequential`` of RNN layers (``RNN``,
            ``LSTM``, ``GRU``, ``SimpleRNN``, with any supported cells) and ``Dense``
            layers. Cells: ``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``,
            `rc_keras.cells.SpikingLIFCell`, or a stack of them.
        x: (batch, time, *features) array.
        halt: for an RCModel, count only the steps up to each example's first spike
            (``model.rank_code(..., mode="rc")``); False counts every valid step.
        lengths: optional (batch,) valid lengths (RCModel only).
        spike_time: optional (batch,) 0-based answer steps to use instead of running
            the halting unroll (RCModel, ``halt=True``).
        batch_size: examples run at once.

    Returns:
        An `OpCount`.
    """
    x = np.asarray(x, np.float32)
    if x.ndim < 3:
        raise ValueError(f"x must have shape (batch, time, *features); received {x.shape}.")
    is_rc = hasattr(model, "rank_code") and hasattr(model, "cell")
    if not is_rc and not isinstance(model, keras.Sequential):
        raise NotImplementedError(f"count_ops needs an RCModel or a keras.Sequential; "
                                  f"received {type(model).__name__}.")
    if not is_rc and lengths is not None:
        raise ValueError("`lengths` is supported for RCModel only.")
    parts = []
    for start in range(0, len(x), batch_size):
        chunk = slice(start, start + batch_size)
        if is_rc:
            parts.append(_count_rc_model(
                model, x[chunk], halt, None if lengths is None else np.asarray(lengths)[chunk],
                None if spike_time is None else np.asarray(spike_time)[chunk]))
        else:
            parts.append(_count_sequential(model, x[chunk]))
    steps = np.concatenate([p.steps_run for p in parts])
    rate = None
    if parts[0].firing_rate is not None:
        weights = np.array([p.steps_run.sum() for p in parts], np.float64)
        rate = float(np.dot([p.firing_rate for p in parts], weights) / max(weights.sum(), 1.0))
    return OpCount(np.concatenate([p.mults for p in parts]), np.concatenate([p.adds for p in parts]),
                   steps, rate)

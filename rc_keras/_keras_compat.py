"""The one place where rc_keras reaches into Keras and TensorFlow internals.

Every use of ``keras.src`` and of a private attribute of a Keras object lives here, each
with the Keras version it was written against and why no public route serves. Where
Keras has a public route, rc_keras takes it (``Model.compute_loss``, the ``metrics``
property, ``tf.distribute`` for unscaling the loss) and nothing is listed here.

setup.cfg pins the Keras range the tests cover; tests/test_keras_compat.py touches every
entry, so a Keras upgrade that moves one fails there, in one place, and not deep inside
a training run.

Written against Keras 3.15.1 on TensorFlow 2.21 (the TensorFlow backend).
"""

import tensorflow as tf
# Keras 3.0-3.15: `MetricsList` is the container that monitoring callbacks
# (ModelCheckpoint, EarlyStopping with mode="auto") search `model.metrics` for, to learn a
# metric's direction (keras/src/callbacks/monitor_callback.py). RC metrics are grouped in
# one so that those callbacks find them as they find compiled metrics. No public class.
from keras.src.trainers.compile_utils import MetricsList
# Keras 3.0-3.15: a decorator that stops a Keras object from tracking the attributes a
# method sets. RCModel.compile replaces its RC metric containers on every compile; tracked
# attributes could not be replaced. No public equivalent.
from keras.src.utils.tracking import no_automatic_dependency_tracking

__all__ = ["MetricsList", "no_automatic_dependency_tracking", "unscale_loss_for_distribution",
           "own_metrics", "set_compile_config_entry", "loss_tracker", "in_multi_worker_mode",
           "LocalReplicaSymbolicBuild", "KERAS_TESTED"]

KERAS_TESTED = ("3.15", "3.16")
"""The Keras versions the tests cover: >= the first, < the second (setup.cfg says the same)."""


def unscale_loss_for_distribution(value):
    """Undoes the 1 / replicas scaling Keras applies to a loss under ``tf.distribute``.

    Public route: the number of replicas of the current ``tf.distribute`` strategy. It
    does what Keras 3.15's private ``keras.src.losses.loss.unscale_loss_for_distribution``
    does for its own loss tracker (TensorFlow backend).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = tf.multiply(value, tf.cast(replicas, value.dtype))
    return value


def own_metrics(model):
    """The list of metric objects a Keras model owns besides its compiled ones.

    Keras 3.15: ``Trainer._metrics``, read by the ``metrics`` property and by
    ``Trainer._get_own_metrics`` (stateless training, log collection). RCModel attaches its
    RC metric containers there at compile time and removes them on re-compiling; overriding
    the public ``metrics`` property alone would miss ``_get_own_metrics``.
    """
    return model._metrics  # noqa: SLF001


def set_compile_config_entry(model, key, value):
    """Sets one entry of what ``model.get_compile_config()`` will save.

    Keras 3.15: ``Trainer._compile_config`` (a ``SerializableDict``) is what
    ``get_compile_config`` serializes. RCModel passes only the Keras metrics to
    ``keras.Model.compile`` and saves the user's full lists (RC metrics included), so that
    ``compile_from_config`` restores them after loading.
    """
    model._compile_config.config[key] = value  # noqa: SLF001


def loss_tracker(model):
    """The ``Mean`` metric behind the "loss" log entry of a compiled model.

    Keras 3.15: ``Trainer._loss_tracker``, which Keras's own ``train_step`` updates; a
    custom ``train_step`` that reports the loss as Keras does updates the same one.
    """
    return model._loss_tracker  # noqa: SLF001


def in_multi_worker_mode(strategy):
    """True under a ``MultiWorkerMirroredStrategy`` with more than one worker.

    TensorFlow 2.21: ``extended._in_multi_worker_mode()``, the test Keras 3.15's own
    TensorFlow trainer uses; TensorFlow has no public one.
    """
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())  # noqa: SLF001


class LocalReplicaSymbolicBuild:
    """Mixin for a ``keras.Model``: builds from the first local replica's batch under
    ``MultiWorkerMirroredStrategy``.

    Keras 3.15 (TensorFlow trainer): ``_maybe_symbolic_build`` reduces a first distributed
    batch across replicas only to learn its shapes; under MultiWorkerMirroredStrategy that
    eager cross-worker reduce fails (keras-team/keras#20585). The first local replica's
    batch has the same shapes. Overrides the private hook, reads ``_distribute_strategy``
    and calls ``_symbolic_build`` as Keras's own version does.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: (strategy.experimental_local_results(v)[0]
                           if isinstance(v, tf.distribute.DistributedValues) else v), next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

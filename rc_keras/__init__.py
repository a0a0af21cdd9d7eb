"""rc_keras: rank-coded recurrent networks for Keras 3 on TensorFlow.

``import rc_keras`` is light: TensorFlow loads when a name that needs it is first used
(``rc_keras.RCModel``, ``rc_keras.export``, ...), as in Keras and SciPy (PEP 562). Every
public submodule is an attribute of the package. So that ``keras.models.load_model``
finds rc_keras's classes in a saved model without ``custom_objects``, the modules that
register them are imported as soon as Keras is (`_REGISTERING`).
"""

import importlib
import os
import sys
import typing

# TensorFlow's C++ info logs (oneDNN notices, converter traces) drown the progress
# output of training and export; a value the user has set is left alone.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from rc_keras import _lazy  # noqa: E402 - after the environment default above

SUBMODULES = ("augment", "bayes_optimal", "callbacks", "cells", "cli", "convergence",
              "datasets", "export", "features", "features_fixed", "guards", "kws_training", "losses", "metrics",
              "mnist_models", "model", "models", "opcount", "quantization", "rank_coding",
              "resume", "tasks", "tradeoff", "tuning", "validation", "workflows", "streaming",
              "stream_metrics")
"""Public submodules, each reachable as ``rc_keras.<name>`` (imported on first use)."""
# Modules whose import registers the Keras classes found in saved rc_keras models.
_REGISTERING = ("rc_keras.model", "rc_keras.losses", "rc_keras.metrics", "rc_keras.cells",
                "rc_keras.quantization", "rc_keras.features", "rc_keras.callbacks",
                "rc_keras.datasets.temporal_mnist")

__all__ = ["RCModel", "ConfidencePenalty", "RCOutput", "__version__", *SUBMODULES]

if typing.TYPE_CHECKING:  # static analysers see the names; nothing is imported at run time
    from rc_keras import (augment, bayes_optimal, callbacks, cells, cli,  # noqa: F401
                          convergence, datasets, export, features, guards, kws_training,
                          losses, metrics, mnist_models, model, models, opcount, quantization,
                          rank_coding, resume, stream_metrics, streaming, tasks, tradeoff, tuning,
                          validation, workflows)
    from rc_keras.losses import ConfidencePenalty  # noqa: F401
    from rc_keras.model import RCModel  # noqa: F401
    from rc_keras.rank_coding import RCOutput  # noqa: F401


# Public names -> the submodule that defines them (None: the submodule of that name).
__getattr__, __dir__ = _lazy.attach(__name__, {
    "RCModel": "model", "ConfidencePenalty": "losses", "RCOutput": "rank_coding",
    **dict.fromkeys(SUBMODULES)})


def _register_keras_classes():
    """Imports the modules that register rc_keras's serializable Keras classes."""
    for module in _REGISTERING:
        importlib.import_module(module)


def _register_when_ready(finished):
    """Registers once Keras is loaded and no rc_keras module is half-initialized.

    Called as ``keras`` or an ``rc_keras.*`` module ``finished`` executing. A module that
    is still executing (e.g. one that imports Keras at its top) could be imported
    circularly by the registering modules: registration then waits for it to finish.
    """
    if "keras" not in sys.modules:
        return
    for name, module in list(sys.modules.items()):
        if (module is not finished and name.startswith("rc_keras.") and module is not None
                and getattr(getattr(module, "__spec__", None), "_initializing", False)):
            return
    _remove_keras_import_hook()
    _register_keras_classes()


class _KerasImportHook:
    """A `sys.meta_path` finder, until Keras loads: see `_register_when_ready`.

    It finds nothing itself; it wraps the loaders of ``keras`` and ``rc_keras.*`` so that
    `_register_when_ready` runs after each has executed.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("rc_keras."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            exec_module = loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                _register_when_ready(module)

            loader.exec_module = exec_then_register
        return spec


def _remove_keras_import_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasImportHook)]


if "keras" in sys.modules:  # Keras (and TensorFlow) already loaded: registering is cheap
    _register_keras_classes()
elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _KerasImportHook())

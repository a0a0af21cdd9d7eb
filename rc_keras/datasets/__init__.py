"""Datasets: the paper's toy tasks, temporal MNIST, Speech Commands and keyword synthesis.

Names load on first use (PEP 562): the toy generators and the keyword synthesizer do not
need TensorFlow, and ``rc-keras --help`` lists their defaults without loading it.
"""

import sys
import types

from rc_keras import _lazy

# Public name -> the module that defines it.
_NAMES = {
    "spotting": "toy", "spotting_dataset": "toy", "two_sequence": "toy",
    "two_sequence_dataset": "toy", "run_completion_step": "toy",
    "synthesize_keywords": "keyword_synthesis",
    "speech_commands": "speech_commands",
    "TemporalEncoding": "temporal_mnist", "temporal_encode": "temporal_mnist",
    "temporal_mnist": "temporal_mnist",
}

__all__ = ["spotting", "spotting_dataset", "two_sequence", "two_sequence_dataset",
           "run_completion_step", "speech_commands", "synthesize_keywords",
           "temporal_encode", "TemporalEncoding", "temporal_mnist"]


# Functions named like the submodule that defines them: the package attribute is the
# function (as it was when this package imported everything), also after the submodule
# is imported (`importlib.import_module` reaches the submodule).
_SHADOWED = ("speech_commands", "temporal_mnist")


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: the function keeps the name
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__getattr__, __dir__ = _lazy.attach(__name__, _NAMES)

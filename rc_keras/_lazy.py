"""Package attributes loaded on first use (PEP 562), as Keras and SciPy load theirs."""

import importlib
import sys


def attach(package, names):
    """``(__getattr__, __dir__)`` for a package whose public names load on first use.

    Args:
        package: the package's ``__name__``.
        names: public name -> the submodule (relative to ``package``) that defines it,
            or None for a submodule of that name itself.

    Returns:
        The two module-level functions; assign them in the package's ``__init__``.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if names[name] is None:
            return importlib.import_module(f"{package}.{name}")  # binds the attribute too
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__

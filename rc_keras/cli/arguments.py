"""Argument types and help texts shared by every ``rc-keras`` subcommand (and
``tuning/search_beta_theta.py``): one check per kind of value, one wording per error.

Each type converts the text and checks it with `rc_keras.validation`, raising
``argparse.ArgumentTypeError`` with a message that says what was expected and what was
received; argparse prefixes the flag. Nothing here loads TensorFlow.
"""

import argparse
import math
import sys

from rc_keras import tasks, validation


def plain(error):
    """A validation message without the backticks meant for Python users."""
    return str(error).replace("`", "")


def number_arg(convert, accept, expected):
    """An argparse type: ``convert`` the text, then require ``accept(number)``."""
    def parse(value):
        try:
            number = convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}; received {value!r}") from None
        if not accept(number):
            raise argparse.ArgumentTypeError(f"expected {expected}; received {number}")
        return number
    return parse


positive_int = number_arg(int, lambda n: n >= 1, "a positive integer")
non_negative_int = number_arg(int, lambda n: n >= 0, "an integer >= 0")
positive_float = number_arg(float, lambda n: math.isfinite(n) and n > 0, "a positive number")


def checked_arg(check, name):
    """An argparse type that returns ``check(text)``, its ValueError becoming the message."""
    def parse(value):
        try:
            return check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(plain(error)) from None
    parse.__name__ = name  # argparse names the type in some messages
    return parse


task_arg = checked_arg(tasks.check_task_name, "task_arg")
"""``--task``: a registered task name (not loaded: no TensorFlow)."""


def task_help():
    """Help text of ``--task``: the registered names."""
    return f"one of: {', '.join(tasks.task_names())}"


threshold_arg = checked_arg(validation.check_threshold, "threshold_arg")
"""``--threshold``: theta in (0, 1)."""


def thresholds_arg(value):
    """``--thresholds``: a comma-separated list of theta values, each in (0, 1)."""
    parts = [p for p in value.replace(" ", "").split(",") if p]
    if not parts:
        raise argparse.ArgumentTypeError("give thresholds as a comma-separated list, e.g. 0.8,0.9")
    return [threshold_arg(p) for p in parts]


beta_arg = checked_arg(validation.check_beta, "beta_arg")
"""``--beta``: the confidence-penalty weight, >= 0."""


def range_arg(value):
    """``--beta-range`` and the like: two numbers 'low,high' (checked further by the
    search space, which names the range)."""
    parts = [p for p in value.replace(" ", "").split(",") if p]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        numbers = ()
    if len(numbers) != 2:
        raise argparse.ArgumentTypeError(
            f"expected a range 'low,high' of two numbers; received {value!r}")
    return numbers


def per_task(field, unit=""):
    """Help text: a run setting's default for each task defined without TensorFlow."""
    shown = ", ".join(f"{name} {getattr(tasks.get_task(name), field)}{unit}"
                      for name in tasks.task_names() if name not in tasks._DEFERRED)
    return f"default: the task's ({shown}; speech-commands: the keyword recipe's)"


def fit_verbosity(verbose):
    """Keras ``fit`` verbosity: progress bars (1) only on a terminal, else a line per epoch."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


VERBOSE_HELP = ("Keras progress output: 0 none, 1 progress bars (per-epoch lines when "
                "output is not a terminal), 2 one line per epoch")
DATA_HELP = "dataset folder (speech-commands: Speech Commands layout)"

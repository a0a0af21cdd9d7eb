"""A command's stderr holds the tool's own text: TensorFlow's C++ logs and library
warnings are dropped while it runs (``RC_KERAS_DEBUG=1`` keeps them)."""

import contextlib
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def quiet_libraries():
    """Keeps a command's stderr to the tool's own text.

    TensorFlow, the TFLite converter and LiteRT write log lines from C++ straight to file
    descriptor 2 (absl and oneDNN notices, converter traces, "Created TensorFlow Lite
    XNNPACK delegate"), which no Python setting silences in TF 2.21. While the command
    runs, descriptor 2 goes to /dev/null and ``sys.stderr`` writes to a duplicate of the
    original, so Python's messages and tracebacks still reach the terminal. Python-level
    warnings and log records of Keras and TensorFlow are dropped. Only when ``sys.stderr``
    is the process's own (not under pytest's capsys) and ``RC_KERAS_DEBUG`` is unset.
    """
    if os.environ.get("RC_KERAS_DEBUG") or sys.stderr is not sys.__stderr__:
        yield
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no real descriptor 2
        yield
        return
    python_stderr = os.fdopen(terminal, "w", buffering=1, encoding=sys.stderr.encoding,
                              errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    saved_stderr, sys.stderr = sys.stderr, python_stderr
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl", "keras")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", module=r"rc_keras\b")
            yield
    finally:
        sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(terminal, 2)
        python_stderr.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

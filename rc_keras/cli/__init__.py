"""The ``rc-keras`` command: a thin shell over the library's jobs.

```bash
rc-keras train --task two-sequence --beta 0.1 --out runs/two_seq
rc-keras evaluate --model runs/two_seq/model.keras --task two-sequence
rc-keras sweep --model runs/two_seq/model.keras --task two-sequence \\
    --thresholds 0.6,0.7,0.8,0.9,0.95,0.99 --out runs/two_seq/sweep
rc-keras demo                     # train, evaluate and export the spotting demo
```

`main` only parses arguments and reports errors. Each subcommand is a module of
`rc_keras.cli.commands` (``add_arguments(parser)``, ``run(args)``) registered in
`SUBCOMMANDS`; its ``run`` calls a library function with plain parameters
(`rc_keras.workflows.train`, ``evaluate``, ``sweep``, ``export_command``, ``run_demo``...)
and prints the result. Argument types shared by every subcommand are in
`rc_keras.cli.arguments`. Bad arguments print one line to stderr and exit with status 2.

Keras, TensorFlow and KerasTuner are imported inside the functions that need them:
``--help`` and argument errors answer without loading them. On a terminal run the
command's output is its own: TensorFlow's C++ log lines and library warnings are dropped
(`rc_keras.cli.quiet`); ``RC_KERAS_DEBUG=1`` shows them, and tracebacks.

To add a subcommand: a module with ``HELP``, ``add_arguments(parser)`` and ``run(args)``
(returning None or an exit status), and one line in `SUBCOMMANDS`.
"""

import argparse
import importlib
import os
import sys
import traceback

from rc_keras import __version__
from rc_keras.cli.flag_wording import speak_in_flags
from rc_keras.cli.quiet import quiet_libraries
# The library functions the command runs, importable from here as before the split.
from rc_keras.workflows import (DEFAULT_DEMO_DIR, DEFAULT_THRESHOLDS, DEMO_SIZES,  # noqa: F401
                                INTEGER_TARGETS, MODEL_RECORD, REFERENCE_DEMO_DIR, CLIError,
                                agreement_hint, check_feature_shape, check_model_file,
                                check_output_dir, check_task, early_answer_note, evaluate,
                                evaluate_model, export_command, export_model, format_qat,
                                format_summary, format_sweep, format_verify, load_model,
                                record_task, recorded_task, run_demo, sweep, train)

EXIT_USAGE = 2

SUBCOMMANDS = {
    # name -> module holding HELP, add_arguments(parser) and run(args); in --help order.
    "train": "rc_keras.cli.commands.train",
    "evaluate": "rc_keras.cli.commands.evaluate",
    "sweep": "rc_keras.cli.commands.sweep",
    "export": "rc_keras.cli.commands.export",
    "demo": "rc_keras.cli.commands.demo",
    "make-keywords": "rc_keras.cli.commands.make_keywords",
    "tune": "rc_keras.cli.commands.tune",
    "firmware": "rc_keras.cli.commands.firmware",
}


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2, and whose
    help shows every option's default."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def add_argument(self, *args, **kwargs):
        default, text = kwargs.get("default"), kwargs.get("help") or ""
        if (not any(default is v for v in (None, False, argparse.SUPPRESS))
                and "default" not in text
                and kwargs.get("action") not in ("help", "version")):
            kwargs["help"] = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return super().add_argument(*args, **kwargs)


def build_parser():
    """The ``rc-keras`` argument parser."""
    parser = _Parser(prog="rc-keras",
                     description="Rank-coded recurrent networks: train, evaluate, sweep the "
                                 "threshold, run the demo.")
    parser.add_argument("--version", action="version", version=f"rc_keras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        module = importlib.import_module(module)
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv=None):
    """Entry point of ``rc-keras``; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    with quiet_libraries():
        return _run_command(args)


def _run_command(args):
    try:
        status = importlib.import_module(SUBCOMMANDS[args.command]).run(args)
    except (CLIError, ValueError) as error:
        if os.environ.get("RC_KERAS_DEBUG"):
            traceback.print_exc()
        print(f"rc-keras {args.command}: error: {speak_in_flags(error, args.command)}",
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        guards = sys.modules.get("rc_keras.guards")  # loaded if training ran
        if guards is None or not isinstance(error, guards.NonFiniteLossError):
            raise
        # Training diverged: not a usage error.
        print(f"rc-keras {args.command}: {error}", file=sys.stderr)
        return 1
    return status or 0

"""Library errors in the words of the command line: Python parameters become flags.

The library's messages name Python parameters (`` `data_root` ``); ``rc-keras`` prints
them with the flag a user types (``--data``). A subcommand whose flag for a parameter
differs from the others adds it to `COMMAND_FLAG_WORDING`.
"""

import re

from rc_keras.cli.arguments import plain

# Library errors name Python parameters; on the command line they name the flags.
FLAG_WORDING = (
    ("(pass download=True to fetch the official archive)",
     "(make one with 'rc-keras make-keywords --out DIR', or unpack Speech Commands v0.02 "
     "there)"),
    ("pass `data_root` (rc-keras --data ROOT)", "pass --data ROOT"),
    (" (rc-keras --data ROOT)", " (--data ROOT)"),
    (" (rc-keras train --data ROOT)", " (--data ROOT)"),
    ("`data_root`", "--data"),
    ("`max_spike_time` is required for objective='budget'; received None.",
     "--max-spike-time is required for --objective budget (e.g. --max-spike-time 12, in "
     "steps, or 150ms with --step-ms)."),
    ("`max_spike_time`", "--max-spike-time"),
    ("objective='budget'", "--objective budget"),
    ("`directory`", "--directory"),
    ("another directory or overwrite=True", "another --directory, or --overwrite"),
    ("pass overwrite=True", "pass --overwrite"),
    ("overwrite=True", "--overwrite"),
    ("`step_ms`", "--step-ms"),
    ("`calibration`", "--calibration"),
    ("`verify_sequences`", "--verify-sequences"),
    ("`train_data`", "--train-data"),
)
# Parameters whose flag depends on the command.
COMMAND_FLAG_WORDING = {
    "make-keywords": (("`root`", "--out"), ("`words`", "--words"), ("`voices`", "--voices"),
                      ("`engines`", "--engines")),
    "train": (("`root`", "--data"),),
    "evaluate": (("`root`", "--data"),),
    "sweep": (("`root`", "--data"),),
}


def speak_in_flags(error, command):
    """The message of a library error, with Python parameters replaced by ``command``'s flags."""
    message = str(error)
    for python, flag in FLAG_WORDING + COMMAND_FLAG_WORDING.get(command, ()):
        # A message that already names both ("data_root (--data)") keeps the flag once.
        message = message.replace(python, flag)
    # A message that names a parameter and its flag ("`data_root` (--data)") keeps the flag.
    message = re.sub(r"(?:`\w+`|--[\w-]+) \((--[\w-]+)\)", r"\1", message)
    return plain(message)

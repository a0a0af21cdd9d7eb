"""The Speech Commands folder layout and its official split rule, without TensorFlow.

`rc_keras.datasets.speech_commands` (the loader) and `rc_keras.datasets.keyword_synthesis`
(which writes the layout) share these; ``rc-keras make-keywords --help`` reads them without
loading TensorFlow.
"""

import hashlib
import os
import re

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = "unknown"
SILENCE = "silence"
LABEL_SETS = {
    "paper11": KEYWORDS + (UNKNOWN,),
    "standard12": KEYWORDS + (UNKNOWN, SILENCE),
}
BACKGROUND_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
DEFAULT_ORIGIN = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
SPLITS = ("train", "validation", "test")
_SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation",
                  "val": "validation", "test": "test", "testing": "test"}
# The official split rule (tensorflow/examples/speech_commands/input_data.py).
MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1


def which_set(filename, validation_percentage=10.0, testing_percentage=10.0):
    """The official Speech Commands split of a file: "training", "validation" or "testing".

    The speaker part of the name (everything before ``_nohash_``) is hashed with SHA-1,
    so all clips of one speaker land in the same split, and the assignment never changes
    when files are added. Ported from TensorFlow's ``speech_commands/input_data.py``.

    Args:
        filename: a file name or path, e.g. "yes/0a7c2a8d_nohash_0.wav".
        validation_percentage: share of speakers for validation, in percent.
        testing_percentage: share of speakers for testing, in percent.

    Returns:
        "training", "validation" or "testing".
    """
    for name, value in (("validation_percentage", validation_percentage),
                        ("testing_percentage", testing_percentage)):
        if not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ValueError(f"`{name}` must be a number in [0, 100]; received {value!r}.")
    if validation_percentage + testing_percentage > 100:
        raise ValueError("`validation_percentage` + `testing_percentage` must be at most 100; "
                         f"received {validation_percentage} + {testing_percentage}.")
    percentage = speaker_percentage(filename)
    if percentage < validation_percentage:
        return "validation"
    if percentage < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def speaker_percentage(filename):
    """The official hash of a file's speaker id, as a percentage in [0, 100]."""
    base_name = os.path.basename(str(filename))
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    return (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)

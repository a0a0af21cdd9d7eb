"""Datasets: the paper's toy tasks (and, later, MNIST and keyword spotting)."""

from rc_keras.datasets.toy import (run_completion_step, spotting, spotting_dataset, two_sequence,
                                   two_sequence_dataset)
from rc_keras.datasets.keyword_synthesis import synthesize_keywords
from rc_keras.datasets.speech_commands import speech_commands
from rc_keras.datasets.temporal_mnist import TemporalEncoding, temporal_encode, temporal_mnist

__all__ = ["spotting", "spotting_dataset", "two_sequence", "two_sequence_dataset",
           "run_completion_step", "speech_commands", "synthesize_keywords",
           "temporal_encode", "TemporalEncoding", "temporal_mnist"]

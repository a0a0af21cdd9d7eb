"""End-to-end jobs of rc_keras, as importable functions: what ``rc-keras`` runs.

| job | function | module |
| --- | --- | --- |
| train a task's model (guards, backups, resume) | `train` | `rc_keras.workflows.training` |
| evaluate a saved model | `evaluate`, `evaluate_model` | `rc_keras.workflows.evaluation` |
| sweep theta (and schedules), frontier | `sweep` | `rc_keras.workflows.evaluation` |
| deployment bundle of a saved model | `export_command`, `export_model` | `rc_keras.workflows.deployment` |
| quick-start demo | `run_demo` | `rc_keras.workflows.demo` |
| output folders, model files, the task recorded in them | `check_output_dir`, ... | `rc_keras.workflows.files` |

Each takes plain parameters and returns plain dicts; none prints. Every task goes through
the same path: a task's own data source and recipe enter through `rc_keras.tasks.Task`
hooks. Importing this package loads neither TensorFlow nor Keras; a job loads them when
it runs.
"""

from rc_keras.workflows.deployment import (INTEGER_TARGETS, agreement_hint, export_command,
                                           export_model, format_qat, format_verify)
from rc_keras.workflows.demo import DEFAULT_DEMO_DIR, DEMO_SIZES, REFERENCE_DEMO_DIR, run_demo
from rc_keras.workflows.evaluation import (DEFAULT_THRESHOLDS, early_answer_note, evaluate,
                                           evaluate_model, format_summary, format_sweep,
                                           model_test_data, sweep)
from rc_keras.workflows.files import (MODEL_RECORD, CLIError, check_feature_shape,
                                      check_model_file, check_output_dir, check_task,
                                      load_model, record_task, recorded_task, write_json)
from rc_keras.workflows.training import history_dict, train

__all__ = ["CLIError", "DEFAULT_DEMO_DIR", "DEFAULT_THRESHOLDS", "DEMO_SIZES",
           "INTEGER_TARGETS", "MODEL_RECORD", "REFERENCE_DEMO_DIR", "agreement_hint",
           "check_feature_shape", "check_model_file", "check_output_dir", "check_task",
           "early_answer_note", "evaluate", "evaluate_model", "export_command", "export_model",
           "format_qat", "format_summary", "format_sweep", "format_verify", "history_dict",
           "load_model", "model_test_data", "record_task", "recorded_task", "run_demo",
           "sweep", "train", "write_json"]

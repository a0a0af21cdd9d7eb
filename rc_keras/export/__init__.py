"""Deployment: SavedModel, per-frame streaming TFLite (float32 / int8), host loops, C arrays.

```python
from rc_keras import export
export.export_saved_model(model, "saved_model")
export.export_tflite_step(model, "step_int8.tflite", quantization="int8", calibration=x_cal)
export.run_tflite_stream("step_int8.tflite", frames, runtime="tflm")
report = export.export_bundle(model, "out", int8=True, calibration=x_cal, verify=True,
                              verify_sequences=(x_test, y_test))
print(export.format_agreement_table(report))
```
"""

from rc_keras.export.bundle import (export_bundle, format_agreement_table, load_sequences,
                                  print_agreement_table, verify_agreement)
from rc_keras.export.c_array import write_c_array
from rc_keras.export.interpreters import StepRunner, run_tflite_stream, tflm_arena, tflm_interpreter
from rc_keras.export.saved_model import export_saved_model
from rc_keras.export.step_model import FORMAT_VERSION, build_step_model, state_layout
from rc_keras.export.tflite_step import (export_tflite_step, load_sidecar, quantized_threshold)
from rc_keras.export.versioning import IncompatibleExportError, load_saved_model

__all__ = ["FORMAT_VERSION", "StepRunner", "build_step_model", "export_bundle",
           "format_agreement_table", "load_sequences", "print_agreement_table", "verify_agreement",
           "write_c_array", "export_saved_model",
           "export_tflite_step", "load_sidecar", "quantized_threshold", "run_tflite_stream",
           "state_layout", "tflm_arena", "tflm_interpreter", "IncompatibleExportError",
           "load_saved_model"]

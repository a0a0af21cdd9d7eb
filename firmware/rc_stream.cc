// The rank-coded streaming loop over TFLM (see rc_stream.h).
#include "rc_stream.h"

#include <new>

#include "rc_feedback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#ifndef RC_MODEL_STATE_ELEMENTS
#error "rc_model_data.h lacks RC_MODEL_STATE_ELEMENTS: re-export the bundle with this rc_keras"
#endif
#ifndef RC_PER_STATE_COPY
#define RC_PER_STATE_COPY 0  // 1 only to demonstrate the state-aliasing bug (tests)
#endif

namespace {

alignas(16) uint8_t tensor_arena[RC_MODEL_ARENA_BYTES];
alignas(tflite::MicroInterpreter) uint8_t interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter* interpreter = nullptr;

// State tensors' data, and the staging area every output is copied to before any input is
// written (rc_feedback.h says why).
rc_model_q_t* state_in[RC_MODEL_NUM_STATES];
const rc_model_q_t* state_out[RC_MODEL_NUM_STATES];
rc_model_q_t staging[RC_MODEL_STATE_ELEMENTS > 0 ? RC_MODEL_STATE_ELEMENTS : 1];
rc_model_q_t* frame = nullptr;
int step = 0;  // frames since the last reset: indexes a per-step threshold schedule
const rc_model_q_t* probs = nullptr;
// The answer's outputs, copied before the states are fed back: like a state output, the output
// tensor may lie in the arena bytes of a state input (the keyword network with its identity
// clips dropped has its probabilities over h's input), so writing the inputs would overwrite it.
rc_model_q_t answer_probs[RC_MODEL_NUM_OUTPUTS];

template <typename T>
T* Data(TfLiteTensor* tensor) {
  return reinterpret_cast<T*>(tensor->data.raw);
}

}  // namespace

int RcStreamInit(tflite::MicroProfilerInterface* profiler) {
  const tflite::Model* model = tflite::GetModel(rc_model_tflite);
  if (model->version() != TFLITE_SCHEMA_VERSION) return 1;
  static tflite::MicroMutableOpResolver<RC_MODEL_NUM_OPS> resolver;
  RC_MODEL_REGISTER_OPS(resolver);
  interpreter = new (interpreter_storage)
      tflite::MicroInterpreter(model, resolver, tensor_arena, RC_MODEL_ARENA_BYTES, nullptr, profiler);
  if (interpreter->AllocateTensors() != kTfLiteOk) return 2;
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    state_in[k] = Data<rc_model_q_t>(interpreter->input(rc_model_states[k].input_position));
    state_out[k] = Data<rc_model_q_t>(interpreter->output(rc_model_states[k].output_position));
  }
  frame = Data<rc_model_q_t>(interpreter->input(RC_MODEL_FRAME_INPUT));
  probs = Data<rc_model_q_t>(interpreter->output(RC_MODEL_PROBS_OUTPUT));
  RcStreamReset();
  return 0;
}

void RcStreamReset() {
  step = 0;
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    for (int i = 0; i < rc_model_states[k].size; ++i) {
      state_in[k][i] = static_cast<rc_model_q_t>(rc_model_states[k].initial_value_q);
    }
  }
}

rc_model_q_t* RcStreamFrame() { return frame; }

void RcStreamSetFeatures(const float* features) {
  for (int i = 0; i < RC_MODEL_FRAME_SIZE; ++i) frame[i] = rc_quantize_feature(features[i]);
}

int RcStreamStep(RcAnswer* answer) {
  if (interpreter->Invoke() != kTfLiteOk) return 1;
  for (int c = 0; c < RC_MODEL_NUM_OUTPUTS; ++c) answer_probs[c] = probs[c];
#if RC_PER_STATE_COPY
  rc_feed_states_back_per_state(state_in, state_out);
#else
  rc_feed_states_back(state_in, state_out, staging);
#endif
  // The spike test in integers, as StepRunner.crossed does on the host; a threshold
  // schedule's last value holds for longer inputs.
  const int at = step < RC_MODEL_THRESHOLD_STEPS - 1 ? step : RC_MODEL_THRESHOLD_STEPS - 1;
  ++step;
  const int high = rc_model_threshold_q_steps[at];
  const rc_model_q_t* p = answer_probs;
  int label = 0;
  for (int c = 1; c < RC_MODEL_NUM_OUTPUTS; ++c) {
    if (p[c] > p[label]) label = c;
  }
  bool spiked = p[label] >= high;
#if RC_MODEL_READOUT_SIGMOID
  spiked = p[0] >= high || p[0] <= rc_model_threshold_q_low_steps[at];
  label = static_cast<float>(p[0] - RC_MODEL_PROBS_ZERO_POINT) * RC_MODEL_PROBS_SCALE >= 0.5f;
#endif
  answer->label = label;
  answer->spiked = spiked;
  answer->probs = p;
  return 0;
}

size_t RcStreamArenaUsedBytes() { return interpreter->arena_used_bytes(); }

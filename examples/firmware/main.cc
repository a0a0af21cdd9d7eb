// Rank-coded keyword spotting on a microcontroller: the TFLM main loop.
//
// Template for a board. It uses the files `rc-keras export --int8` writes:
// rc_model_data.h / rc_model_data.c (the int8 step model as an aligned byte array and
// the sidecar constants), or with `--int16x8 --c-array int16x8` the 16x8 model (int16
// frames, outputs and states): the loop is written once for rc_model_q_t, the header's
// integer type. Per frame: quantize the features, feed them with the current states,
// Invoke, copy the new states back, and compare the largest integer output with
// RC_MODEL_THRESHOLD_Q. At the first crossing report the class and reset the states for
// the next clip: the rest of the clip is never computed.
//
// Board-specific parts are the three functions marked BOARD below.

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "rc_model_data.h"
#if !RC_MODEL_QUANTIZED
#error "main.cc expects an integer export (rc-keras export --int8, or --int16x8 --c-array int16x8)"
#endif
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

using q_t = rc_model_q_t;  // int8_t, or int16_t for the 16x8 model

alignas(16) uint8_t tensor_arena[RC_MODEL_ARENA_BYTES];

q_t* InputData(tflite::MicroInterpreter& interpreter, int position) {
  return reinterpret_cast<q_t*>(interpreter.input(position)->data.raw);
}

const q_t* OutputData(tflite::MicroInterpreter& interpreter, int position) {
  return reinterpret_cast<const q_t*>(interpreter.output(position)->data.raw);
}

q_t Saturate(int value) {
  return static_cast<q_t>(value < RC_MODEL_Q_MIN ? RC_MODEL_Q_MIN
                          : value > RC_MODEL_Q_MAX ? RC_MODEL_Q_MAX : value);
}

// BOARD: fill `features` with the next frame (RC_MODEL_FRAME_SIZE floats, the same
// front end as in training, e.g. log-mel from CMSIS-DSP). Return false at end of clip.
bool GetNextFrame(float* features) {
  static int frame = 0;
  for (int i = 0; i < RC_MODEL_FRAME_SIZE; ++i) features[i] = 0.0f;
  return ++frame % 50 != 0;
}

// BOARD: act on an answer (LED, UART, wake the application processor...).
void ReportAnswer(int label, int frames_run, bool spiked) {
  MicroPrintf("class %s after %d frames%s", rc_model_class_names[label], frames_run,
              spiked ? "" : " (no spike: answered at the end of the clip)");
}

// BOARD: the clip boundary (voice activity, a button, a fixed window...).
bool ClipFinished(bool spiked, bool more_frames) { return spiked || !more_frames; }

void ResetStates(tflite::MicroInterpreter& interpreter) {
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    q_t* state = InputData(interpreter, rc_model_states[k].input_position);
    for (int i = 0; i < rc_model_states[k].size; ++i) {
      state[i] = static_cast<q_t>(rc_model_states[k].initial_value_q);
    }
  }
}

q_t Requantize(q_t q, const rc_model_state_t& s) {
  const float real = (q - s.output_zero_point) * s.output_scale;
  return Saturate(static_cast<int>(real / s.scale + (real >= 0 ? 0.5f : -0.5f)) + s.zero_point);
}

void FeedStatesBack(tflite::MicroInterpreter& interpreter) {
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    const rc_model_state_t& s = rc_model_states[k];
    q_t* in = InputData(interpreter, s.input_position);
    const q_t* out = OutputData(interpreter, s.output_position);
    if (s.feedback_direct) {
      memcpy(in, out, s.size * sizeof(q_t));  // export ties the scales: states go straight back
    } else {
      for (int i = 0; i < s.size; ++i) in[i] = Requantize(out[i], s);
    }
  }
}

}  // namespace

int main() {
  const tflite::Model* model = tflite::GetModel(rc_model_tflite);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    MicroPrintf("model schema %d, runtime %d", model->version(), TFLITE_SCHEMA_VERSION);
    return 1;
  }
  static tflite::MicroMutableOpResolver<RC_MODEL_NUM_OPS> resolver;
  RC_MODEL_REGISTER_OPS(resolver);
  static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena,
                                              RC_MODEL_ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("AllocateTensors failed: raise RC_MODEL_ARENA_BYTES");
    return 1;
  }
  MicroPrintf("arena used: %d of %d bytes", static_cast<int>(interpreter.arena_used_bytes()),
              RC_MODEL_ARENA_BYTES);

  q_t* frame_q = InputData(interpreter, RC_MODEL_FRAME_INPUT);
  const q_t* probs_q = OutputData(interpreter, RC_MODEL_PROBS_OUTPUT);
  float features[RC_MODEL_FRAME_SIZE];
  ResetStates(interpreter);
  int frames_run = 0;
  for (;;) {
    const bool more = GetNextFrame(features);
    for (int i = 0; i < RC_MODEL_FRAME_SIZE; ++i) {
      const float scaled = features[i] / RC_MODEL_FRAME_SCALE;
      frame_q[i] = Saturate(static_cast<int>(scaled + (scaled >= 0 ? 0.5f : -0.5f)) +
                            RC_MODEL_FRAME_ZERO_POINT);
    }
    if (interpreter.Invoke() != kTfLiteOk) return 1;
    ++frames_run;
    FeedStatesBack(interpreter);

    // The spike test in integers: no dequantization on the board.
    int label = 0;
    for (int c = 1; c < RC_MODEL_NUM_OUTPUTS; ++c) {
      if (probs_q[c] > probs_q[label]) label = c;
    }
    bool spiked = probs_q[label] >= RC_MODEL_THRESHOLD_Q;
#if RC_MODEL_READOUT_SIGMOID
    spiked = spiked || probs_q[0] <= RC_MODEL_THRESHOLD_Q_LOW;
    label = probs_q[0] >= RC_MODEL_PROBS_ZERO_POINT + static_cast<int>(0.5f / RC_MODEL_PROBS_SCALE);
#endif
    if (ClipFinished(spiked, more)) {
      ReportAnswer(label, frames_run, spiked);
      ResetStates(interpreter);  // a new clip starts from the initial state
      frames_run = 0;
    }
  }
}

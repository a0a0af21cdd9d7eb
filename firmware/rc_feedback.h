/* Feeding a step model's recurrent states back, and the rounding the host loop uses.
 *
 * The step model returns each new state as an output tensor; the next frame reads it from the
 * matching input tensor. TFLM's memory planner is free to put a state OUTPUT in the same arena
 * bytes as ANOTHER state's INPUT (the states are inputs and outputs of one graph, and an input
 * is dead once read). Copying the states one by one then overwrites a state output before it is
 * copied: on the demo's int8 LSTM the c state received h's values. So: copy EVERY state output
 * (requantized where the export could not tie the scales) into a staging buffer first, then
 * write the inputs. Plain C, no TFLM: the host tests compile this file with gcc. */
#ifndef RC_FIRMWARE_RC_FEEDBACK_H_
#define RC_FIRMWARE_RC_FEEDBACK_H_

#include <math.h>
#include <string.h>

#include "rc_model_data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Round half to even, as numpy's np.round (the host loop) does. */
static inline int rc_round(float x) {
  const float f = floorf(x);
  int r = (int)f;
  const float frac = x - f; /* exact for |x| < 2^23 */
  if (frac > 0.5f || (frac == 0.5f && (r & 1))) ++r;
  return r;
}

static inline rc_model_q_t rc_saturate(int v) {
  return (rc_model_q_t)(v < RC_MODEL_Q_MIN ? RC_MODEL_Q_MIN : v > RC_MODEL_Q_MAX ? RC_MODEL_Q_MAX : v);
}

/* A float feature -> the frame input's integer, in float32 exactly as StepRunner.quantize_frames. */
static inline rc_model_q_t rc_quantize_feature(float x) {
  return rc_saturate(rc_round(x / RC_MODEL_FRAME_SCALE) + RC_MODEL_FRAME_ZERO_POINT);
}

/* A state output value -> the state input's scale (feedback_direct == 0). */
static inline rc_model_q_t rc_requantize_state(rc_model_q_t q, const rc_model_state_t* s) {
  const float real = (float)(q - s->output_zero_point) * s->output_scale;
  return rc_saturate(rc_round(real / s->scale) + s->zero_point);
}

/* Total elements of all states: the staging buffer's size. */
static inline int rc_state_elements(void) {
  int n = 0;
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) n += rc_model_states[k].size;
  return n;
}

/* inputs[k] / outputs[k]: the data of state k's input and output tensors (positions from
 * rc_model_states). staging: rc_state_elements() values. */
static inline void rc_feed_states_back(rc_model_q_t* const inputs[], const rc_model_q_t* const outputs[],
                                       rc_model_q_t* staging) {
  rc_model_q_t* p = staging;
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) { /* 1. read every output before writing any input */
    const rc_model_state_t* s = &rc_model_states[k];
    if (s->feedback_direct) {
      memcpy(p, outputs[k], (size_t)s->size * sizeof(rc_model_q_t)); /* export tied the scales */
    } else {
      for (int i = 0; i < s->size; ++i) p[i] = rc_requantize_state(outputs[k][i], s);
    }
    p += s->size;
  }
  p = staging;
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) { /* 2. then write the inputs */
    memcpy(inputs[k], p, (size_t)rc_model_states[k].size * sizeof(rc_model_q_t));
    p += rc_model_states[k].size;
  }
}

/* The old loop, state by state: wrong when the planner aliases a state output with another
 * state's input. Kept only so a test can show the difference (RC_PER_STATE_COPY=1). */
static inline void rc_feed_states_back_per_state(rc_model_q_t* const inputs[],
                                                 const rc_model_q_t* const outputs[]) {
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    const rc_model_state_t* s = &rc_model_states[k];
    for (int i = 0; i < s->size; ++i) {
      inputs[k][i] = s->feedback_direct ? outputs[k][i] : rc_requantize_state(outputs[k][i], s);
    }
  }
}

#ifdef __cplusplus
}
#endif

#endif /* RC_FIRMWARE_RC_FEEDBACK_H_ */

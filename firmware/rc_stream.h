/* The rank-coded streaming loop over TFLM: the part to copy into a product.
 *
 *   RcStreamInit();                 // once: allocate the arena, reset the states
 *   for each frame as it arrives:
 *     RcStreamFrame()[i] = ...;     // the frame's integers (or RcStreamSetFeatures(floats))
 *     RcStreamStep(&answer);        // Invoke, feed the states back, spike test
 *     if (answer.spiked || end of clip) { act on answer.label; RcStreamReset(); }
 *
 * At the first spike the rest of the clip is never computed: that is RC's saving. */
#ifndef RC_FIRMWARE_RC_STREAM_H_
#define RC_FIRMWARE_RC_STREAM_H_

#include <stddef.h>

#include "rc_model_data.h"

#if !RC_MODEL_QUANTIZED
#error "the firmware expects an integer step model (rc-keras export --int8, or --int16x8 --c-array int16x8)"
#endif

struct RcAnswer {
  int label;                  // class at this frame (argmax; sigmoid: p >= 0.5)
  bool spiked;                // an output crossed the threshold at this frame
  const rc_model_q_t* probs;  // the integer outputs (RC_MODEL_NUM_OUTPUTS), copied out of the
                              // arena before the states were fed back; valid until the next step
};

namespace tflite {
class MicroProfilerInterface;
}

// 0 on success; 1: the model's schema; 2: AllocateTensors failed (a kernel's Prepare refused
// the model, or the arena is too small: raise RC_MODEL_ARENA_BYTES).
// `profiler` (optional) gets a begin/end event around every op of every Invoke.
int RcStreamInit(tflite::MicroProfilerInterface* profiler = nullptr);
void RcStreamReset();
rc_model_q_t* RcStreamFrame();
void RcStreamSetFeatures(const float* features);  // quantizes RC_MODEL_FRAME_SIZE floats
// 0 on success, 1 if Invoke failed.
int RcStreamStep(RcAnswer* answer);
size_t RcStreamArenaUsedBytes();

#endif  // RC_FIRMWARE_RC_STREAM_H_

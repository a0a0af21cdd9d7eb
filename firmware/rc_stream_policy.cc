// The onset stream policy over the RC loop (see rc_stream_policy.h). Each step mirrors
// rc_keras.streaming.Listener (onset mode) and OnsetDetector line for line.
#include "rc_stream_policy.h"

#include <limits.h>
#include <string.h>

#include "rc_feedback.h"
#include "rc_stream.h"

#if RC_POLICY_NUM_CLASSES < RC_MODEL_NUM_OUTPUTS
#error "rc_policy_data.h was written for another model (fewer classes than outputs)"
#endif

namespace {

// Frames a new instance may need from the past: the pre-roll and the onset's own frames (the
// onset is recognized onset_frames - 1 frames after it began).
constexpr int kRing = RC_POLICY_PRE_ROLL_FRAMES + RC_POLICY_ONSET_FRAMES;
rc_model_q_t ring[kRing][RC_MODEL_FRAME_SIZE];  // quantized frames; frame t at t % kRing
int t = -1;                                      // stream frame (since RcPolicyReset)

// Onset detector (rc_keras.streaming.OnsetDetector), in 1/256 dB.
bool have_floor = false;
int32_t floor_q = 0;
int run = 0;                              // consecutive frames above the threshold
int quiet = RC_POLICY_RELEASE_FRAMES;     // consecutive frames below (armed at the start)
bool armed = true;

// The instance (one at a time: one set of recurrent states in rc_stream.cc).
bool running = false;
int read = 0;  // frames it has read: RcStreamStep's step index, for a threshold schedule
int onset = 0, start = 0;
int refractory_until = -1;
uint32_t invocations = 0;

// Returns the onset frame when frame t completes one, else -1.
int DetectOnset(int32_t energy) {
  if (!have_floor) {
    floor_q = energy;
    have_floor = true;
  }
  // The threshold uses the floor before this frame, so a loud frame cannot raise it.
  const bool above = energy >= floor_q + RC_POLICY_ONSET_Q8;
  const int32_t risen = floor_q + RC_POLICY_FLOOR_RISE_Q8;  // the floor rises slowly ...
  floor_q = energy < risen ? energy : risen;                 // ... and falls at once
  if (above) {
    ++run;
    quiet = 0;
  } else {
    run = 0;
    if (++quiet >= RC_POLICY_RELEASE_FRAMES) armed = true;
  }
  if (armed && run >= RC_POLICY_ONSET_FRAMES) {
    armed = false;
    return t - RC_POLICY_ONSET_FRAMES + 1;
  }
  return -1;
}

// The running instance reads stream frame f from the ring. Returns 0 (reads on), 1 (it
// ended: a spike or max_frames; *found set if the spike is a detection), -1 (Invoke failed).
int Advance(int f, RcDetection* out, int* found) {
  memcpy(RcStreamFrame(), ring[f % kRing], sizeof(ring[0]));
  RcAnswer answer;
  if (RcStreamStep(&answer) != 0) return -1;
  ++invocations;
  ++read;
  if (answer.spiked) {
    running = false;
    if (!rc_policy_ignored[answer.label] && f > refractory_until) {
      out->label = answer.label;
      out->spike_frame = f;
      out->onset_frame = onset;
      out->start_frame = start;
#if RC_MODEL_READOUT_SIGMOID
      out->confidence_q = answer.probs[0];
#else
      out->confidence_q = answer.probs[answer.label];
#endif
      refractory_until = f + RC_POLICY_REFRACTORY_FRAMES;
      *found = 1;
    }
    return 1;
  }
  if (read >= RC_POLICY_MAX_FRAMES) {
    running = false;
    return 1;
  }
  return 0;
}

}  // namespace

extern "C" int32_t RcLog2Q8(uint64_t x) {
  const int k = 63 - __builtin_clzll(x);                 // integer part
  uint64_t m = k >= 30 ? x >> (k - 30) : x << (30 - k);  // mantissa in [2^30, 2^31), Q30
  int32_t frac = 0;
  for (int i = 0; i < 8; ++i) {  // squaring doubles the log: its integer part is the next bit
    m = (m * m) >> 30;
    frac <<= 1;
    if (m >= (1ull << 31)) {
      m >>= 1;
      frac |= 1;
    }
  }
  return (k << 8) | frac;
}

extern "C" void RcPolicyReset(void) {
  t = -1;
  have_floor = false;
  run = 0;
  quiet = RC_POLICY_RELEASE_FRAMES;
  armed = true;
  running = false;
  read = 0;
  refractory_until = -1;
  invocations = 0;
}

extern "C" int32_t RcPolicyEnergy(const float* log_mel) {
  // Each channel's log back to the front end's integer log2 (Q16): exact for its features.
  int32_t level[RC_POLICY_CHANNELS];
  int32_t top = INT32_MIN;
  for (int c = 0; c < RC_POLICY_CHANNELS; ++c) {
    level[c] = rc_round(log_mel[c] / RC_POLICY_LN2_Q16);
    if (level[c] > top) top = level[c];
  }
  // Mean power = 2^(2 top) * sum_c 2^(-2 (top - level_c)) / C: the sum in Q30 by table.
  uint64_t sum = 0;
  for (int c = 0; c < RC_POLICY_CHANNELS; ++c) {
    const uint32_t e = 2u * static_cast<uint32_t>(top - level[c]);  // log2 of 1 / ratio, Q16
    const uint32_t whole = e >> 16, j = (e & 0xFFFF) >> 8, low = e & 0xFF;
    if (whole >= 31) continue;  // under 2^-31 of the loudest channel
    const uint32_t value = rc_policy_exp2[j] - (((rc_policy_exp2[j] - rc_policy_exp2[j + 1]) * low) >> 8);
    sum += value >> whole;
  }
  // (GCC's >> of a negative int is arithmetic: a floor, as numpy's on the host.)
  const int32_t log2_q8 = RcLog2Q8(sum) - (30 << 8) - RC_POLICY_LOG2_CHANNELS_Q8 + ((2 * top) >> 8);
  return static_cast<int32_t>((static_cast<int64_t>(log2_q8) * RC_POLICY_DB_PER_LOG2_Q16) >> 16);
}

extern "C" int RcPolicyPush(const float* features, int32_t energy_q8, RcDetection* out) {
  ++t;
  rc_model_q_t* slot = ring[t % kRing];
  for (int i = 0; i < RC_MODEL_FRAME_SIZE; ++i) slot[i] = rc_quantize_feature(features[i]);
  const int onset_frame = DetectOnset(energy_q8);  // every frame, even while an instance runs
  int found = 0;
  // 1. The running instance reads this frame.
  if (running && Advance(t, out, &found) < 0) return -1;
  if (t <= refractory_until) return found;
  // 2. An onset with no instance running starts one: zero state, the pre-roll from the ring
  //    (the oldest frame it can hold), then frames up to this one.
  if (onset_frame >= 0 && !running) {
    start = onset_frame - RC_POLICY_PRE_ROLL_FRAMES;
    if (start < t - kRing + 1) start = t - kRing + 1;
    if (start < 0) start = 0;
    onset = onset_frame;
    running = true;
    read = 0;
    RcStreamReset();
    for (int f = start; f <= t && running; ++f) {
      if (Advance(f, out, &found) < 0) return -1;
    }
  }
  return found;
}

extern "C" uint32_t RcPolicyInvocations(void) { return invocations; }

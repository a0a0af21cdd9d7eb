/* Always listening: when the RC instance starts and stops on a microphone stream.
 *
 * The onset policy of rc_keras.streaming (StreamPolicy(mode="onset"), Listener), frame by
 * frame, over the loop of rc_stream.h: a causal energy detector tracks the noise floor;
 * `onset_frames` frames in a row at least `onset_db` above it make an onset; the network's
 * state is reset (RcStreamReset) and it first reads the `pre_roll_frames` frames before the
 * onset from a ring buffer, then one frame as each arrives, until it spikes or has read
 * `max_frames`. A spike of a keyword class is a detection; a spike of an ignored class
 * ("silence", "unknown") only ends the instance. After a detection nothing starts and nothing
 * is detected for `refractory_frames`. Between words only the energy detector runs: no
 * network invocation.
 *
 * The parameters come from rc_policy_data.h, which rc_keras.export.firmware.write_policy_source
 * writes from the same StreamPolicy the host uses. The energies and the detector are integers
 * (1/256 dB), so the host (rc_keras.streaming.log_mel_energy_q8, OnsetDetector) computes exactly
 * the same numbers; with the fixed-point front end the features are equal too, hence the
 * detections.
 *
 *   RcStreamInit(); RcPolicyReset();
 *   for each hop of samples:
 *     if (RcFrontendPush(hop, n, features)) {
 *       RcDetection d;
 *       if (RcPolicyPush(features, RcPolicyEnergy(features), &d) == 1) act_on(d.label);
 *     }
 *
 * RAM: the ring of (pre_roll + onset) quantized frames and a few counters. */
#ifndef RC_FIRMWARE_RC_STREAM_POLICY_H_
#define RC_FIRMWARE_RC_STREAM_POLICY_H_

#include <stdint.h>

#include "rc_policy_data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int label;         /* class index (sigmoid readout: 1 if p >= 0.5) */
  int spike_frame;   /* stream frame of the spike (0-based, counted since RcPolicyReset) */
  int onset_frame;   /* the onset the instance was started for */
  int start_frame;   /* first frame it read (onset minus the pre-roll) */
  int confidence_q;  /* the integer output at the spike: probs[label] (sigmoid: probs[0]) */
} RcDetection;

/* A new stream: the detector, the energy sums, the ring buffer; no instance running. */
void RcPolicyReset(void);

/* A frame's energy in 1/256 dB: 10 log10 of its mean mel power, from its RC_POLICY_CHANNELS
 * log-mel values (before any normalization), in integers (rc_keras.streaming.log_mel_energy_q8). */
int32_t RcPolicyEnergy(const float* log_mel);

/* One frame (its RC_MODEL_FRAME_SIZE features and energy): the running instance reads it, or an
 * onset starts one. Returns 1 with *out filled on a detection, 0 otherwise, -1 if Invoke failed. */
int RcPolicyPush(const float* features, int32_t energy_q8, RcDetection* out);

/* Network invocations since RcPolicyReset (the policy's cost; the host's Listener.invocations). */
uint32_t RcPolicyInvocations(void);

/* floor-ish log2(x) * 256 of x >= 1 (8 fraction bits by squaring): the energy's logarithm. */
int32_t RcLog2Q8(uint64_t x);

#ifdef __cplusplus
}
#endif

#endif /* RC_FIRMWARE_RC_STREAM_POLICY_H_ */

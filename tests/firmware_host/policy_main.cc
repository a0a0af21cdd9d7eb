// Host harness for firmware/rc_stream_policy.cc (compiled with g++ by tests/test_firmware.py):
// the policy over a scripted stand-in for the network (no TFLM), so its decisions can be
// compared with rc_keras.streaming.Listener on the same script.
//
//   policy_main frames < "n  q_0 energy_0  q_1 energy_1 ..."   ->  D lines, then "L <invocations>"
//   policy_main energy < "n  bits of frame 0's log-mel floats ..."  ->  one energy per frame
//
// The stand-in network: acc += frame[0] each step (acc = 0 at RcStreamReset); label =
// (acc >> 4) mod outputs; spike when the top 4 bits of (uint32) acc * 2654435761 are 5;
// probs[label] = step (the confidence). tests/test_firmware.py mirrors it in Python.
#include <stdio.h>
#include <string.h>

#include "rc_stream.h"
#include "rc_stream_policy.h"

namespace {
rc_model_q_t frame[RC_MODEL_FRAME_SIZE];
rc_model_q_t probs[RC_MODEL_NUM_OUTPUTS];
int acc = 0, step = 0;
}  // namespace

void RcStreamReset() { acc = step = 0; }
rc_model_q_t* RcStreamFrame() { return frame; }
int RcStreamStep(RcAnswer* answer) {
  acc += frame[0];
  ++step;
  const unsigned hash = static_cast<unsigned>(acc) * 2654435761u;
  const int label = static_cast<int>(static_cast<unsigned>(acc >> 4) % RC_MODEL_NUM_OUTPUTS);
  memset(probs, 0, sizeof(probs));
  probs[label] = static_cast<rc_model_q_t>(step);
  answer->label = label;
  answer->spiked = (hash >> 28) == 5;
  answer->probs = probs;
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "energy") == 0) {
    int n;
    if (scanf("%d", &n) != 1) return 2;
    for (int t = 0; t < n; ++t) {
      float log_mel[RC_POLICY_CHANNELS];
      for (int c = 0; c < RC_POLICY_CHANNELS; ++c) {
        unsigned bits;  // the float32's bits, for exact input
        if (scanf("%u", &bits) != 1) return 2;
        memcpy(&log_mel[c], &bits, sizeof(bits));
      }
      printf("%ld\n", static_cast<long>(RcPolicyEnergy(log_mel)));
    }
    return 0;
  }
  int n;
  if (scanf("%d", &n) != 1) return 2;
  RcPolicyReset();
  float features[RC_MODEL_FRAME_SIZE] = {0};
  for (int t = 0; t < n; ++t) {
    int q;
    long energy;
    if (scanf("%d %ld", &q, &energy) != 2) return 2;
    // A float the frame quantization maps back to q exactly.
    features[0] = (static_cast<float>(q) - RC_MODEL_FRAME_ZERO_POINT) * RC_MODEL_FRAME_SCALE;
    RcDetection d;
    if (RcPolicyPush(features, static_cast<int32_t>(energy), &d) == 1) {
      printf("D %d %d %d %d %d\n", d.label, d.spike_frame, d.onset_frame, d.start_frame,
             d.confidence_q);
    }
  }
  printf("L %lu\n", static_cast<unsigned long>(RcPolicyInvocations()));
  return 0;
}

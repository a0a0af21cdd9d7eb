/* Host harness for firmware/rc_feedback.h: lays the state tensors out in one "arena" as the
 * test says (offsets in elements, so a state output may overlap another state's input, as
 * TFLM's planner does), runs one feedback and prints the state inputs.
 * stdin: mode (0 staged, 1 per-state), then per state: input offset, output offset; then the
 * arena length and its values. stdout: every state input's values, in state order. */
#include <stdio.h>
#include <stdlib.h>

#include "rc_feedback.h"

int main(void) {
  int mode, n;
  if (scanf("%d", &mode) != 1) return 2;
  int in_off[RC_MODEL_NUM_STATES], out_off[RC_MODEL_NUM_STATES];
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    if (scanf("%d %d", &in_off[k], &out_off[k]) != 2) return 2;
  }
  if (scanf("%d", &n) != 1) return 2;
  rc_model_q_t* arena = calloc((size_t)n, sizeof(rc_model_q_t));
  for (int i = 0; i < n; ++i) {
    int v;
    if (scanf("%d", &v) != 1) return 2;
    arena[i] = (rc_model_q_t)v;
  }
  rc_model_q_t* inputs[RC_MODEL_NUM_STATES];
  const rc_model_q_t* outputs[RC_MODEL_NUM_STATES];
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    inputs[k] = arena + in_off[k];
    outputs[k] = arena + out_off[k];
  }
  rc_model_q_t staging[RC_MODEL_STATE_ELEMENTS];
  if (mode == 0) {
    rc_feed_states_back(inputs, outputs, staging);
  } else {
    rc_feed_states_back_per_state(inputs, outputs);
  }
  for (int k = 0; k < RC_MODEL_NUM_STATES; ++k) {
    for (int i = 0; i < rc_model_states[k].size; ++i) printf("%d ", (int)inputs[k][i]);
  }
  printf("\n");
  free(arena);
  return 0;
}

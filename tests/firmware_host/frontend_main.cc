// Host harness for firmware/rc_frontend.cc: int16 PCM from a file in, every feature frame's
// float32 bits out (one line per frame), for tests/test_features_fixed.py.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rc_frontend.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (f == NULL) return 2;
  int16_t hop[RC_FRONTEND_HOP];
  float features[RC_FE_CHANNELS];
  if (RcFrontendReset() != 0) return 1;
  int n;
  while ((n = static_cast<int>(fread(hop, sizeof(int16_t), RC_FRONTEND_HOP, f))) > 0) {
    if (!RcFrontendPush(hop, n, features)) continue;
    for (int c = 0; c < RC_FE_CHANNELS; ++c) {
      uint32_t bits;
      memcpy(&bits, &features[c], sizeof(bits));
      printf("%08lx%c", static_cast<unsigned long>(bits), c + 1 < RC_FE_CHANNELS ? ' ' : '\n');
    }
  }
  fclose(f);
  return 0;
}

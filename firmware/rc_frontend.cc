// Audio front end (see rc_frontend.h).
#include "rc_frontend.h"

#include <math.h>
#include <string.h>

#include "signal/src/complex.h"
#include "signal/src/rfft.h"
#if RC_PROFILE
#include "board.h"
#endif

namespace {

int16_t audio[RC_FE_WINDOW + RC_FE_STRIDE];  // samples not yet consumed by a frame
int filled = 0;
int32_t fft_in[RC_FE_FFT];
Complex<int32_t> spectrum[RC_FE_FFT / 2 + 1];
alignas(8) uint8_t fft_state[10 * RC_FE_FFT + 512];  // kissfft plan + scratch: 5.4 KB at 512 (checked)
void* fft = nullptr;
uint64_t magnitude[RC_FE_FFT / 2 + 1];  // |X| * 2^8: quiet bins are a few units of |X|

// Square root and log2 by table and linear interpolation: the M4 has no FPU, and a bit-serial
// square root per FFT bin (the signal library's Sqrt64) or logf per channel cost more than the
// FFT itself. Relative error below 3e-5 (sqrt) and 2e-5 (log2): far under the int8 input step.
uint32_t sqrt_table[193];  // sqrt(i * 2^24) * 2^8, i = 64 ... 256
int32_t log2_table[257];   // log2(1 + i / 256) * 2^16, i = 0 ... 256

void InitTables() {
  for (int i = 0; i <= 192; ++i) sqrt_table[i] = static_cast<uint32_t>(sqrt((i + 64.0) * 16777216.0) * 256.0 + 0.5);
  for (int i = 0; i <= 256; ++i) log2_table[i] = static_cast<int32_t>(log2(1.0 + i / 256.0) * 65536.0 + 0.5);
}

// sqrt(x) * 2^8, rounded.
uint64_t Sqrt(uint64_t x) {
  if (x == 0) return 0;
  const int shift = __builtin_clzll(x) & ~1;                      // even, so it halves exactly
  const uint32_t t = static_cast<uint32_t>((x << shift) >> 32);  // in [2^30, 2^32)
  const uint32_t i = (t >> 24) - 64, frac = (t >> 8) & 0xFFFF;
  const uint32_t r = sqrt_table[i] + static_cast<uint32_t>(
      (static_cast<uint64_t>(sqrt_table[i + 1] - sqrt_table[i]) * frac) >> 16);  // sqrt(t) * 2^8
  const int s = shift / 2 - 16;  // sqrt(x) * 2^8 = sqrt(t) * 2^24 / 2^(shift / 2)
  return s > 0 ? (r + (1u << (s - 1))) >> s : static_cast<uint64_t>(r) << -s;
}

int32_t Log2Q16(uint64_t x) {  // x > 0
  const int lz = __builtin_clzll(x);
  const uint32_t top = static_cast<uint32_t>((x << lz) >> 32);  // in [2^31, 2^32)
  const uint32_t i = (top >> 23) & 0xFF, frac = (top >> 7) & 0xFFFF;
  const int32_t l = log2_table[i] + static_cast<int32_t>(
      (static_cast<uint64_t>(log2_table[i + 1] - log2_table[i]) * frac) >> 16);
  return ((63 - lz) << 16) + l;
}

#if RC_PROFILE
uint64_t stage_ticks[4];  // window, FFT, magnitudes, mel + log (PROFILE=1 builds)
#define RC_FE_STAGE(k)                \
  do {                                \
    const uint64_t now = board_ticks(); \
    stage_ticks[k] += now - mark;     \
    mark = now;                       \
  } while (0)
#else
#define RC_FE_STAGE(k) \
  do {                 \
  } while (0)
#endif

// One frame of log-mel features from audio[0 : RC_FE_WINDOW].
void Frame(float* features) {
#if RC_PROFILE
  uint64_t mark = board_ticks();
#endif
  // Hamming window (Q15) into 32-bit samples, zero padding to the FFT length. The int32 FFT
  // (kissfft, Q31 twiddles, the DFT / RC_FE_FFT) keeps quiet bins that an int16 FFT rounds
  // away: measured against log_mel, int16 with auto-scaling was off by up to 1.5 in quiet bands.
  for (int i = 0; i < RC_FE_WINDOW; ++i) fft_in[i] = static_cast<int32_t>(audio[i]) * rc_fe_window[i];
  memset(fft_in + RC_FE_WINDOW, 0, (RC_FE_FFT - RC_FE_WINDOW) * sizeof(int32_t));
  RC_FE_STAGE(0);
  tflm_signal::RfftInt32Apply(fft, fft_in, spectrum);
  RC_FE_STAGE(1);
  for (int k = RC_FE_FIRST_BIN; k < RC_FE_LAST_BIN; ++k) {
    const int64_t re = spectrum[k].real, im = spectrum[k].imag;
    magnitude[k] = Sqrt(static_cast<uint64_t>(re * re) + static_cast<uint64_t>(im * im));
  }
  RC_FE_STAGE(2);
  // Mel channels: triangular weights (Q15) over a run of bins each.
  const uint16_t* weight = rc_fe_weights;
  // The mel energy of the float waveform (pcm / 32768) is mel * 2^-RC_FE_MEL_EXPONENT, so
  // log(mel_real + log_offset) = (log2(mel + RC_FE_LOG_OFFSET_Q) - RC_FE_MEL_EXPONENT) * ln 2.
  const float ln2_q16 = 0.69314718056f / 65536.0f;
  for (int c = 0; c < RC_FE_CHANNELS; ++c) {
    uint64_t mel = 0;
    const uint64_t* mag = magnitude + rc_fe_channel_start[c];
    for (int i = 0; i < rc_fe_channel_length[c]; ++i) mel += mag[i] * weight[i];
    weight += rc_fe_channel_length[c];
    const int32_t log2 = Log2Q16(mel + RC_FE_LOG_OFFSET_Q) - (RC_FE_MEL_EXPONENT << 16);
    features[c] = static_cast<float>(log2) * ln2_q16;
  }
  // A normalization stage (RC_FE_NORMALIZATION, see rc_frontend.h) runs here on features[].
  RC_FE_STAGE(3);
}

#if RC_FE_NORMALIZATION != 0
#error "rc_frontend_data.h asks for a normalization this firmware does not have"
#endif

}  // namespace

#if RC_PROFILE
extern "C" void RcFrontendStageTicks(uint64_t ticks[4]) { memcpy(ticks, stage_ticks, sizeof(stage_ticks)); }
#endif

extern "C" int RcFrontendReset(void) {
  if (fft == nullptr) {
    if (tflm_signal::RfftInt32GetNeededMemory(RC_FE_FFT) > sizeof(fft_state)) return 1;
    fft = tflm_signal::RfftInt32Init(RC_FE_FFT, fft_state, sizeof(fft_state));
    InitTables();
  }
  filled = 0;
  return fft == nullptr;
}

extern "C" int RcFrontendPush(const int16_t* samples, int n, float* features) {
  if (n > RC_FE_STRIDE) n = RC_FE_STRIDE;
  memcpy(audio + filled, samples, n * sizeof(int16_t));
  filled += n;
  if (filled < RC_FE_WINDOW) return 0;
  Frame(features);
  // Frames start every RC_FE_STRIDE samples: drop the oldest hop.
  filled -= RC_FE_STRIDE;
  memmove(audio, audio + RC_FE_STRIDE, filled * sizeof(int16_t));
  return 1;
}

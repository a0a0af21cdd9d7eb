// Audio front end (see rc_frontend.h).
#include "rc_frontend.h"

#include <math.h>
#include <string.h>

#include "signal/src/complex.h"
#include "signal/src/rfft.h"
#include "signal/src/square_root.h"

namespace {

int16_t audio[RC_FE_WINDOW + RC_FE_STRIDE];  // samples not yet consumed by a frame
int filled = 0;
int32_t fft_in[RC_FE_FFT];
Complex<int32_t> spectrum[RC_FE_FFT / 2 + 1];
alignas(8) uint8_t fft_state[16 * RC_FE_FFT + 512];  // kissfft's plan and scratch (checked)
void* fft = nullptr;
uint32_t magnitude[RC_FE_FFT / 2 + 1];

// One frame of log-mel features from audio[0 : RC_FE_WINDOW].
void Frame(float* features) {
  // Hamming window (Q15) into 32-bit samples, zero padding to the FFT length. The int32 FFT
  // (kissfft, Q31 twiddles, the DFT / RC_FE_FFT) keeps quiet bins that an int16 FFT rounds
  // away: measured against log_mel, int16 with auto-scaling was off by up to 1.5 in quiet bands.
  for (int i = 0; i < RC_FE_WINDOW; ++i) fft_in[i] = static_cast<int32_t>(audio[i]) * rc_fe_window[i];
  memset(fft_in + RC_FE_WINDOW, 0, (RC_FE_FFT - RC_FE_WINDOW) * sizeof(int32_t));
  tflm_signal::RfftInt32Apply(fft, fft_in, spectrum);
  for (int k = RC_FE_FIRST_BIN; k < RC_FE_LAST_BIN; ++k) {
    const int64_t re = spectrum[k].real, im = spectrum[k].imag;
    magnitude[k] = tflite::tflm_signal::Sqrt64(static_cast<uint64_t>(re * re) +
                                               static_cast<uint64_t>(im * im));
  }
  // Mel channels: triangular weights (Q15) over a run of bins each.
  const uint16_t* weight = rc_fe_weights;
  // The mel energy of the float waveform (pcm / 32768) is mel * 2^-RC_FE_MEL_EXPONENT.
  const float unit = ldexpf(1.0f, -RC_FE_MEL_EXPONENT);
  for (int c = 0; c < RC_FE_CHANNELS; ++c) {
    uint64_t mel = 0;
    const uint32_t* mag = magnitude + rc_fe_channel_start[c];
    for (int i = 0; i < rc_fe_channel_length[c]; ++i) mel += static_cast<uint64_t>(mag[i]) * weight[i];
    weight += rc_fe_channel_length[c];
    features[c] = logf(static_cast<float>(mel) * unit + RC_FE_LOG_OFFSET);
  }
}

#if RC_FE_NORMALIZATION != 0
#error "rc_frontend_data.h asks for a normalization this firmware does not have"
#endif

}  // namespace

extern "C" int RcFrontendReset(void) {
  if (fft == nullptr) {
    if (tflm_signal::RfftInt32GetNeededMemory(RC_FE_FFT) > sizeof(fft_state)) return 1;
    fft = tflm_signal::RfftInt32Init(RC_FE_FFT, fft_state, sizeof(fft_state));
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

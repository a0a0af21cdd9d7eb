/* Audio front end on the device: 16 kHz int16 PCM -> the model's log-mel frames, hop by hop.
 *
 * Integer arithmetic up to the log (Hamming window in Q15, a 512-point real FFT computed as a
 * 256-point complex radix-2 FFT plus a split, with Q15 twiddles multiplied by SMULWB; |X| and
 * log2 by table) and one float multiply per channel for the natural log. rc_keras.features_fixed
 * (FrontEndParams(fixed_point=True)) mirrors it bit for bit, so host and device features are
 * equal; against the float rc_keras.features.log_mel they differ by under 0.02. The window,
 * twiddles, mel weights and tables come from rc_frontend_data.h, which rc_keras.export.firmware
 * writes from the bundle's feature_params (rc_keras.features_fixed.tables).
 *
 * Normalization: RC_FE_NORMALIZATION (rc_frontend_data.h) selects a stage run on the log-mel
 * frame before it is quantized (0: none; the build refuses other values until one exists). A
 * causal normalization of rc_keras.features (a running mean, PCEN) plugs in at the marked point
 * at the end of Frame() in rc_frontend.cc, its parameters written into rc_frontend_data.h by
 * write_frontend_source from feature_params, its running state kept beside `filled` and reset
 * in RcFrontendReset (per clip). */
#ifndef RC_FIRMWARE_RC_FRONTEND_H_
#define RC_FIRMWARE_RC_FRONTEND_H_

#include <stdint.h>

#include "rc_frontend_data.h"

#define RC_FRONTEND_HOP RC_FE_STRIDE

#ifdef __cplusplus
extern "C" {
#endif

/* Forgets the audio so far (a new clip starts); 0 on success, 1 if the FFT plan does not fit. */
int RcFrontendReset(void);
/* Takes up to RC_FRONTEND_HOP new samples; when a whole window has arrived, writes the frame's
 * RC_FE_CHANNELS features and returns 1 (at most one frame per call), else 0. */
int RcFrontendPush(const int16_t* samples, int n, float* features);

#if RC_PROFILE
/* Ticks spent so far in: window, FFT, magnitudes, mel + log (PROFILE=1 builds). */
void RcFrontendStageTicks(uint64_t ticks[4]);
#endif

#ifdef __cplusplus
}
#endif

#endif /* RC_FIRMWARE_RC_FRONTEND_H_ */

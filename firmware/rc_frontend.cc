// Audio front end (see rc_frontend.h): integer arithmetic mirrored bit for bit by
// rc_keras.features_fixed (the host computes the same float32 features from the same PCM).
#include "rc_frontend.h"

#include <string.h>

#if RC_PROFILE
#include "board.h"
#endif
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

namespace {

// A twiddle packs cos (low half) and -sin (high half) in Q15. Multiplying an int32 by either
// half and keeping the top 32 bits of the 48-bit product is one SMULWB / SMULWT on the
// Cortex-M4 and M55: (x * w) >> 16, floor, so x * w / 2 (a halving comes with every product).
#if defined(__ARM_FEATURE_DSP)
// SMULWB / SMULWT by inline assembly: GCC 12's arm_acle.h has only the accumulating forms, and
// __smlawb(x, w, 0) spends a register on the zero, which made the butterfly loop spill.
inline int32_t MulRe(int32_t x, int32_t w) {
  int32_t r;
  __asm__("smulwb %0, %1, %2" : "=r"(r) : "r"(x), "r"(w));
  return r;
}
inline int32_t MulIm(int32_t x, int32_t w) {
  int32_t r;
  __asm__("smulwt %0, %1, %2" : "=r"(r) : "r"(x), "r"(w));
  return r;
}
#else
inline int32_t MulRe(int32_t x, int32_t w) {
  return static_cast<int32_t>((static_cast<int64_t>(x) * static_cast<int16_t>(w & 0xFFFF)) >> 16);
}
inline int32_t MulIm(int32_t x, int32_t w) {
  return static_cast<int32_t>((static_cast<int64_t>(x) * (w >> 16)) >> 16);
}
#endif

constexpr int kHalf = RC_FE_FFT / 2;  // the real FFT is a complex FFT of half the length

int16_t audio[RC_FE_WINDOW + RC_FE_STRIDE];  // samples not yet consumed by a frame
int filled = 0;
// The complex FFT in place (re, im interleaved), then each bin's |X| * 2^8 (uint64) in the
// bin's own 8 bytes; one spare slot for the Nyquist bin. 2 KB at FFT 512.
alignas(8) int32_t spectrum[2 * (kHalf + 1)];

// sqrt(x) * 2^8, rounded (table and linear interpolation: the M4 has no FPU). The 64-bit
// value is handled as two words: the normalizing shift and the table step are 32-bit
// operations (GCC's generic 64-bit shifts cost twice as many instructions).
inline __attribute__((always_inline)) uint64_t Sqrt(uint64_t x) {
  const uint32_t hi = static_cast<uint32_t>(x >> 32), lo = static_cast<uint32_t>(x);
  int shift;   // an even left shift that brings x's top bit to bit 63 or 62
  uint32_t t;  // the top word of x << shift, in [2^30, 2^32)
  if (hi != 0) {
    shift = __builtin_clz(hi) & ~1;
    t = shift == 0 ? hi : (hi << shift) | (lo >> (32 - shift));
  } else if (lo != 0) {
    shift = 32 + (__builtin_clz(lo) & ~1);
    t = lo << (shift - 32);
  } else {
    return 0;
  }
  const uint32_t i = (t >> 24) - 64, frac = (t >> 8) & 0xFFFF;
  // Adjacent entries differ by under 2^16 and frac < 2^16: the product fits 32 bits.
  const uint32_t r = rc_fe_sqrt_table[i] +
                     (((rc_fe_sqrt_table[i + 1] - rc_fe_sqrt_table[i]) * frac) >> 16);
  const int s = shift / 2 - 16;  // sqrt(x) * 2^8 = sqrt(t) * 2^24 / 2^(shift / 2)
  return s > 0 ? (r + (1u << (s - 1))) >> s : static_cast<uint64_t>(r) << -s;
}

// log2(x) * 2^16 for x > 0.
int32_t Log2Q16(uint64_t x) {
  const int lz = __builtin_clzll(x);
  const uint32_t top = static_cast<uint32_t>((x << lz) >> 32);  // in [2^31, 2^32)
  const uint32_t i = (top >> 23) & 0xFF, frac = (top >> 7) & 0xFFFF;
  const int32_t l = rc_fe_log2_table[i] + static_cast<int32_t>(
      (static_cast<int64_t>(rc_fe_log2_table[i + 1] - rc_fe_log2_table[i]) * frac) >> 16);
  return ((63 - lz) << 16) + l;
}

// Radix-2 decimation in time over bit-reversed input; every stage halves, so the result is
// DFT / kHalf and no value can exceed the input's magnitude (int32 never overflows).
// Loops walk pointers group by group with the twiddle pointer stepping inside a group, so a
// butterfly is two LDRD, four SMULW, eight ALU operations and two STRD (the per-twiddle
// outer loop of the textbook form made GCC spill to the stack: 50 instructions a butterfly).
void ComplexFft() {
  int32_t* const end = spectrum + 2 * kHalf;
  // Span 1: w = 1 everywhere, an exact halving.
  for (int32_t* a = spectrum; a < end; a += 4) {
    const int32_t ar = a[0] >> 1, ai = a[1] >> 1, br = a[2] >> 1, bi = a[3] >> 1;
    a[0] = ar + br;
    a[1] = ai + bi;
    a[2] = ar - br;
    a[3] = ai - bi;
  }
  for (int span = 2, step = RC_FE_FFT / 4; span < kHalf; span <<= 1, step >>= 1) {
    for (int32_t* group = spectrum; group < end; group += 4 * span) {
      int32_t* a = group;
      int32_t* b = group + 2 * span;
      {  // j = 0: w = 1, an exact halving
        const int32_t ar = a[0] >> 1, ai = a[1] >> 1, tr = b[0] >> 1, ti = b[1] >> 1;
        a[0] = ar + tr;
        a[1] = ai + ti;
        b[0] = ar - tr;
        b[1] = ai - ti;
      }
      const int32_t* w = rc_fe_twiddle + step;
      for (int32_t* const stop = b; (a += 2) < stop; w += step) {
        b += 2;
        const int32_t br = b[0], bi = b[1], wj = *w;
        const int32_t tr = MulRe(br, wj) - MulIm(bi, wj);
        const int32_t ti = MulIm(br, wj) + MulRe(bi, wj);
        const int32_t ar = a[0] >> 1, ai = a[1] >> 1;
        a[0] = ar + tr;
        a[1] = ai + ti;
        b[0] = ar - tr;
        b[1] = ai - ti;
      }
    }
  }
}

// |X[k]|^2 of the real input's bin k from Z[k] and Z[kHalf - k] (the split of a real FFT
// computed as a complex one of half the length), with one more halving: X = DFT / FFT.
inline __attribute__((always_inline)) uint64_t BinPower(const int32_t* zk, const int32_t* zm, int32_t w) {
  const int32_t kr = zk[0] >> 1, ki = zk[1] >> 1, mr = zm[0] >> 1, mi = zm[1] >> 1;
  const int32_t er = kr + mr, ei = ki - mi;  // the even samples' DFT
  const int32_t orr = ki + mi, oi = mr - kr;  // the odd samples' DFT
  const int32_t xr = (er >> 1) + (MulRe(orr, w) - MulIm(oi, w));
  const int32_t xi = (ei >> 1) + (MulIm(orr, w) + MulRe(oi, w));
  return static_cast<uint64_t>(static_cast<int64_t>(xr) * xr) +
         static_cast<uint64_t>(static_cast<int64_t>(xi) * xi);
}

inline bool Needed(int k) { return k >= RC_FE_FIRST_BIN && k < RC_FE_LAST_BIN; }

#if RC_PROFILE
uint64_t stage_ticks[4];  // window, FFT, magnitudes, mel + log (PROFILE=1 builds)
#define RC_FE_STAGE(k)                  \
  do {                                  \
    const uint64_t now = board_ticks(); \
    stage_ticks[k] += now - mark;       \
    mark = now;                         \
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
  // Hamming window (Q15), zero padding; sample pairs (x[2n], x[2n+1]) are the complex input,
  // stored at the bit-reversed position the butterflies read them from.
  for (int n = 0; n < kHalf; ++n) {
    int32_t* z = spectrum + 2 * rc_fe_bit_reverse[n];
    z[0] = 2 * n < RC_FE_WINDOW ? static_cast<int32_t>(audio[2 * n]) * rc_fe_window[2 * n] : 0;
    z[1] = 2 * n + 1 < RC_FE_WINDOW ? static_cast<int32_t>(audio[2 * n + 1]) * rc_fe_window[2 * n + 1] : 0;
  }
  RC_FE_STAGE(0);
  ComplexFft();
  spectrum[2 * kHalf] = spectrum[0];  // Z[kHalf] = Z[0]
  spectrum[2 * kHalf + 1] = spectrum[1];
  RC_FE_STAGE(1);
  // Bins k and kHalf - k need the same two values: read both, then store both magnitudes
  // over them (uint64 in the bin's slot).
  uint64_t* magnitude = reinterpret_cast<uint64_t*>(spectrum);
  for (int k = 0; k <= kHalf / 2; ++k) {
    const int m = kHalf - k;
    const int32_t* zk = spectrum + 2 * k;
    const int32_t* zm = spectrum + 2 * m;
    const uint64_t pk = Needed(k) ? BinPower(zk, zm, rc_fe_twiddle[k]) : 0;
    const uint64_t pm = Needed(m) && m != k ? BinPower(zm, zk, rc_fe_twiddle[m]) : 0;
    if (Needed(k)) magnitude[k] = Sqrt(pk);
    if (Needed(m) && m != k) magnitude[m] = Sqrt(pm);
  }
  RC_FE_STAGE(2);
  // Mel channels: triangular weights (Q15) over a run of bins each. The mel energy of the
  // float waveform (pcm / 32768) is mel * 2^-RC_FE_MEL_EXPONENT, so
  // log(mel_real + log_offset) = (log2(mel + RC_FE_LOG_OFFSET_Q) - RC_FE_MEL_EXPONENT) * ln 2.
  const uint16_t* weight = rc_fe_weights;
  const float ln2_q16 = 0.69314718056f / 65536.0f;
  for (int c = 0; c < RC_FE_CHANNELS; ++c) {
    // sum(mag * weight) with 32-bit halves of each magnitude: one UMLAL and one MLA per
    // weight. The high sum cannot wrap: mag < 2^38, weight < 2^16, a channel < 2^8 bins.
    uint64_t low = 0;
    uint32_t high = 0;
    const uint32_t* mag = reinterpret_cast<const uint32_t*>(magnitude + rc_fe_channel_start[c]);
    for (int i = 0; i < rc_fe_channel_length[c]; ++i, mag += 2) {
      low += static_cast<uint64_t>(mag[0]) * weight[i];
      high += mag[1] * weight[i];
    }
    const uint64_t mel = low + (static_cast<uint64_t>(high) << 32);
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
  filled = 0;
  return 0;
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

// Test and measurement harness around the RC loop (rc_stream.h): reads clips through
// semihosting from the file rc_input.bin in QEMU's working directory, runs each clip with
// early exit and prints, one line each (parsed by rc_keras.export.firmware):
//   A <arena used> <arena size>                         after AllocateTensors
//   K <ticks> <instructions>                             SysTick calibration
//   F <clip> <frame> <net ticks> <front-end ticks> <out_0> ... <out_n-1>   every frame run
//   P <clip> <frame> <feature_0 * 1000> ...               every frame (audio input only)
//   C <clip> <label> <spike frame> <spiked> <frames run> <net ticks> <front-end ticks>
//   O <op> <ticks> <invokes>                             per op type, at the end (RC_PROFILE=1)
//   S <stack used> <stack size>                          at the end
// With STREAM=1 (rc_stream_policy.h), input kind 2 is one long PCM stream through the front end
// and the stream policy, instead of clips:
//   D <label> <spike frame> <onset frame> <start frame> <confidence (integer output)>   a detection
//   E <frame> <energy, 1/256 dB>                         every frame when flags bit 1 is set
//   L <frames> <network invocations> <energy + policy + net ticks> <front-end ticks>   at its end
// Exit status 0; 1 model/arena/Invoke error; 2 bad input file.
//
// rc_input.bin (little-endian int32 words): magic "RCIN", version 1, kind (0: quantized frames,
// 1: 16 kHz int16 PCM through the front end, 2: one PCM stream through the stream policy), clips,
// frame size, bytes per value, flags (bit 0: run whole clips, reporting the first spike but not
// stopping there; bit 1: kind 2 prints every frame's energy), 0; then per clip its length
// (frames, or samples) and the values.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>
#include <stddef.h>

#include "board.h"
#include "rc_stream.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#if RC_STREAM_POLICY
#include "rc_stream_policy.h"
#endif
#if RC_FRONTEND
#include "rc_frontend.h"
static_assert(RC_MODEL_FRAME_SIZE == RC_FE_CHANNELS,
              "the front end's channels must be the model's features (context_frames = 0)");
#endif

extern "C" char end, __heap_limit;  // the heap reserve (qemu_mps.ld)
extern "C" void* sbrk(ptrdiff_t increment);  // newlib (not declared under -std=c++17)

namespace {

constexpr int32_t kMagic = 0x4E494352;  // "RCIN"

void LogToStdout(const char* s) { fputs(s, stdout); }

bool ReadWords(FILE* f, int32_t* words, int n) {
  return fread(words, sizeof(int32_t), n, f) == static_cast<size_t>(n);
}

uint32_t Elapsed(uint64_t since) { return static_cast<uint32_t>(board_ticks() - since); }

// Ticks per op type over the whole run (TFLM tags events with the op's name).
class OpProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    int k = 0;
    while (k < count_ && strcmp(tags_[k], tag) != 0) ++k;
    if (k == count_ && count_ < kMax) tags_[count_++] = tag;
    start_ = board_ticks();
    return static_cast<uint32_t>(k);
  }
  void EndEvent(uint32_t k) override {
    const uint64_t now = board_ticks();
    if (k < static_cast<uint32_t>(kMax)) {
      ticks_[k] += now - start_;
      ++calls_[k];
    }
  }
  void Print() const {
    for (int k = 0; k < count_; ++k) {
      printf("O %s %lu %lu\n", tags_[k], static_cast<unsigned long>(ticks_[k]),
             static_cast<unsigned long>(calls_[k]));
    }
  }

 private:
  static constexpr int kMax = 32;
  const char* tags_[kMax] = {};
  uint64_t ticks_[kMax] = {};
  uint32_t calls_[kMax] = {};
  int count_ = 0;
  uint64_t start_ = 0;
};

struct ClipRecord {
  int label = 0, spike = -1, frames = 0;
  bool spiked = false;
  uint64_t net_ticks = 0, fe_ticks = 0;
};

// One frame through the network; prints its F line and updates the clip's record.
// Returns false when the clip should stop here (early exit).
bool RunFrame(int clip, int t, uint32_t fe_ticks, bool whole_clip, ClipRecord* rec, int* status) {
  RcAnswer answer;
  const uint64_t start = board_ticks();
  if (RcStreamStep(&answer) != 0) {
    *status = 1;
    return false;
  }
  const uint32_t net = Elapsed(start);
  printf("F %d %d %lu %lu", clip, t, static_cast<unsigned long>(net),
         static_cast<unsigned long>(fe_ticks));
  for (int c = 0; c < RC_MODEL_NUM_OUTPUTS; ++c) printf(" %d", static_cast<int>(answer.probs[c]));
  printf("\n");
  rec->frames = t + 1;
  rec->net_ticks += net;
  rec->fe_ticks += fe_ticks;
  if (!rec->spiked) rec->label = answer.label;  // the answer is the class at the first spike
  if (answer.spiked && !rec->spiked) {
    rec->spiked = true;
    rec->spike = t;
    if (!whole_clip) return false;
  }
  return true;
}

#if RC_STREAM_POLICY && RC_FRONTEND
// Input kind 2: one stream of PCM, hop by hop through the front end, the frame energy and the
// stream policy; one D line per detection (the log-mel frames are the model's features:
// context_frames = 0, no normalization).
int RunStream(FILE* f, bool print_energy) {
  int32_t length;
  if (!ReadWords(f, &length, 1) || length < 1) return 2;
  if (RcFrontendReset() != 0) return 1;
  RcPolicyReset();
  int16_t hop[RC_FRONTEND_HOP];
  float features[RC_MODEL_FRAME_SIZE];
  int frames = 0;
  uint64_t fe_ticks = 0, net_ticks = 0;
  for (int done = 0; done < length; done += RC_FRONTEND_HOP) {
    const int n = length - done < RC_FRONTEND_HOP ? length - done : RC_FRONTEND_HOP;
    if (fread(hop, sizeof(int16_t), n, f) != static_cast<size_t>(n)) return 2;
    const uint64_t fe_start = board_ticks();
    const int ready = RcFrontendPush(hop, n, features);
    fe_ticks += Elapsed(fe_start);
    if (!ready) continue;
    RcDetection d;
    const uint64_t net_start = board_ticks();
    const int32_t energy = RcPolicyEnergy(features);
    const int found = RcPolicyPush(features, energy, &d);
    net_ticks += Elapsed(net_start);
    if (print_energy) printf("E %d %ld\n", frames, static_cast<long>(energy));
    if (found < 0) return 1;
    if (found) {
      printf("D %d %d %d %d %d\n", d.label, d.spike_frame, d.onset_frame, d.start_frame,
             d.confidence_q);
    }
    ++frames;
  }
  printf("L %d %lu %lu %lu\n", frames, static_cast<unsigned long>(RcPolicyInvocations()),
         static_cast<unsigned long>(net_ticks), static_cast<unsigned long>(fe_ticks));
  return 0;
}
#endif

}  // namespace

int main() {
  RegisterDebugLogCallback(LogToStdout);
  const uint64_t calib = board_calibrate(500000);
  printf("K %lu %d\n", static_cast<unsigned long>(calib), 1000000);
#if RC_PROFILE
  static OpProfiler profiler;
  const int init = RcStreamInit(&profiler);
#else
  const int init = RcStreamInit();
#endif
  if (init != 0) {
    printf("RC error %s\n", init == 1 ? "model schema version"
                                      : "AllocateTensors failed: a kernel refused the model or the "
                                        "arena is too small (TFLM's message above)");
    return 1;
  }
  printf("A %lu %d\n", static_cast<unsigned long>(RcStreamArenaUsedBytes()), RC_MODEL_ARENA_BYTES);

  FILE* f = fopen("rc_input.bin", "rb");
  int32_t head[8];
  if (f == nullptr || !ReadWords(f, head, 8) || head[0] != kMagic || head[1] != 1) {
    printf("RC error rc_input.bin missing or not an RCIN v1 file\n");
    return 2;
  }
  const int kind = head[2], clips = head[3];
  const bool whole_clip = head[6] & 1;
#if RC_FRONTEND && RC_STREAM_POLICY
  const bool ok_kind = kind == 0 || kind == 1 || kind == 2;
#elif RC_FRONTEND
  const bool ok_kind = kind == 0 || kind == 1;
#else
  const bool ok_kind = kind == 0;
#endif
  if (!ok_kind || (kind == 0 && (head[4] != RC_MODEL_FRAME_SIZE ||
                                 head[5] != static_cast<int32_t>(sizeof(rc_model_q_t))))) {
    printf("RC error input kind %d, frame size %d x %d bytes does not fit this firmware\n", kind,
           static_cast<int>(head[4]), static_cast<int>(head[5]));
    return 2;
  }
  int status = 0;
#if RC_STREAM_POLICY && RC_FRONTEND
  if (kind == 2) status = RunStream(f, (head[6] & 2) != 0);
#endif
  for (int clip = 0; kind != 2 && clip < clips && status == 0; ++clip) {
    int32_t length;
    if (!ReadWords(f, &length, 1) || length < 1) return 2;
    RcStreamReset();
    ClipRecord rec;
    if (kind == 0) {
      bool go = true;
      for (int t = 0; t < length; ++t) {
        // Frames are read even after an early exit, to reach the next clip in the file.
        if (fread(RcStreamFrame(), sizeof(rc_model_q_t), RC_MODEL_FRAME_SIZE, f) != RC_MODEL_FRAME_SIZE) return 2;
        if (go) go = RunFrame(clip, t, 0, whole_clip, &rec, &status);
      }
#if RC_FRONTEND
    } else {
      // Audio arrives hop by hop; the front end emits a feature frame once a window is full.
      if (RcFrontendReset() != 0) return 1;
      int16_t hop[RC_FRONTEND_HOP];
      float features[RC_MODEL_FRAME_SIZE];
      bool go = true;
      int t = 0;
      for (int read = 0; read < length; read += RC_FRONTEND_HOP) {
        const int n = length - read < RC_FRONTEND_HOP ? length - read : RC_FRONTEND_HOP;
        if (fread(hop, sizeof(int16_t), n, f) != static_cast<size_t>(n)) return 2;
        if (!go) continue;
        const uint64_t start = board_ticks();
        const bool ready = RcFrontendPush(hop, n, features);
        if (!ready) continue;
        RcStreamSetFeatures(features);
        const uint32_t fe = Elapsed(start);
        printf("P %d %d", clip, t);  // the features' float32 bits, for an exact comparison
        for (int i = 0; i < RC_MODEL_FRAME_SIZE; ++i) {
          uint32_t bits;
          memcpy(&bits, &features[i], sizeof(bits));
          printf(" %08lx", static_cast<unsigned long>(bits));
        }
        printf("\n");
        go = RunFrame(clip, t++, fe, whole_clip, &rec, &status);
      }
#endif
    }
    printf("C %d %d %d %d %d %lu %lu\n", clip, rec.label, rec.spiked ? rec.spike : rec.frames - 1,
           rec.spiked ? 1 : 0, rec.frames,
           static_cast<unsigned long>(rec.net_ticks), static_cast<unsigned long>(rec.fe_ticks));
  }
  fclose(f);
#if RC_PROFILE
  profiler.Print();
#if RC_FRONTEND
  uint64_t stages[4];
  RcFrontendStageTicks(stages);
  const char* names[4] = {"fe_window", "fe_fft", "fe_magnitude", "fe_mel_log"};
  for (int k = 0; k < 4; ++k) printf("O %s %lu 0\n", names[k], static_cast<unsigned long>(stages[k]));
#endif
#endif
  printf("S %lu %lu\n", static_cast<unsigned long>(board_stack_used()),
         static_cast<unsigned long>(board_stack_size()));
  // Heap newlib took (stdio buffers, the input FILE): sbrk's top over the reserve's start.
  printf("H %lu %lu\n", static_cast<unsigned long>(static_cast<char*>(sbrk(0)) - &end),
         static_cast<unsigned long>(&__heap_limit - &end));
  return status;
}

// Energy-based voice-activity detection (see transcribe_vad.h for its behaviour).
#include "runtime/speech/transcribe_vad.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/tensor.h"

namespace eight::whisper {

std::vector<SpeechRegion> detect_speech(std::span<const float> samples, int rate,
                                        const VadOptions& o) {
  check(rate > 0, "[vad] sample rate must be positive, got ", rate);
  check(o.frame_s > 0 && o.min_silence_s >= 0 && o.pad_s >= 0, "[vad] bad options: frame ",
        o.frame_s, " s, min silence ", o.min_silence_s, " s, pad ", o.pad_s, " s");
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t frame = std::max<int64_t>(1, std::llround(o.frame_s * rate));
  const int64_t n_frames = (n + frame - 1) / frame;
  if (n_frames == 0) return {};
  // Frame levels (dB) and a copy for the percentile: tracked, they grow with the file.
  Tensor db_buf = Tensor::empty({n_frames}, DType::F64);
  Tensor sorted_buf = Tensor::empty({n_frames}, DType::F64);
  double* db = db_buf.data<double>();
  for (int64_t f = 0; f < n_frames; ++f) {
    const int64_t b = f * frame, e = std::min(n, b + frame);
    double energy = 0;
    for (int64_t i = b; i < e; ++i) energy += static_cast<double>(samples[i]) * samples[i];
    db[f] = 10.0 * std::log10(energy / static_cast<double>(e - b) + 1e-12);
  }
  double* sorted = sorted_buf.data<double>();
  std::copy(db, db + n_frames, sorted);
  const int64_t p95 = static_cast<int64_t>(0.95 * static_cast<double>(n_frames - 1));
  std::nth_element(sorted, sorted + p95, sorted + n_frames);
  const double threshold = std::max(sorted[p95] - o.range_db, o.floor_db);

  const int64_t gap_frames = std::llround(o.min_silence_s / o.frame_s);
  const int64_t pad = std::llround(o.pad_s * rate);
  std::vector<SpeechRegion> regions;
  int64_t run_begin = -1, last_speech = -1;
  auto close = [&] {
    SpeechRegion r{std::max<int64_t>(0, run_begin * frame - pad),
                   std::min(n, (last_speech + 1) * frame + pad)};
    if (!regions.empty() && r.begin <= regions.back().end)
      regions.back().end = std::max(regions.back().end, r.end);
    else
      regions.push_back(r);
  };
  for (int64_t f = 0; f < n_frames; ++f) {
    if (db[f] <= threshold) continue;
    if (run_begin >= 0 && f - last_speech - 1 >= gap_frames) {
      close();
      run_begin = -1;
    }
    if (run_begin < 0) run_begin = f;
    last_speech = f;
  }
  if (run_begin >= 0) close();
  return regions;
}

}  // namespace eight::whisper

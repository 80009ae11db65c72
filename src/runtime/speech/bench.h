#pragma once
// `eight bench -m WHISPER.bin`: the encoder's time for one 30 s window (median of `reps` runs
// after a warm-up) and the decoder's speed, one sequence token by token and a batch of beams
// stepping together, on synthetic input (the cost does not depend on the values).
#include <cstdint>
#include <string>

namespace eight {

struct WhisperBenchParams {
  std::string model;
  int reps = 5;
  int64_t n_gen = 64;  // decoded tokens per sequence
  int beams = 5;       // sequences of the batched measurement
  int n_threads = 0;   // 0: default_thread_count()
};

struct WhisperBenchResult {
  std::string model;
  int n_threads = 0, reps = 0, beams = 0;
  int64_t n_gen = 0;
  int n_audio_state = 0, n_audio_layer = 0, n_audio_head = 0, n_text_layer = 0;
  std::string weight_type;
  double encode_median_s = 0, encode_min_s = 0;
  double encode_cpu_median_s = 0;  // process CPU time per encode (all threads, spinning included)
  double decode_tokens_per_s = 0;  // one sequence, one token per step
  // Process CPU time per token of that loop (all threads, spinning included): steadier than the
  // rate on a loaded machine, where the rate measures the scheduler as much as the code.
  double decode_cpu_ms_per_token = 0;
  double batch_decode_tokens_per_s = 0;  // `beams` sequences per step, all tokens counted
  double load_average = 0;               // 1-minute load average before the runs (/proc/loadavg)
  int64_t weight_bytes = 0, state_bytes = 0;
};

WhisperBenchResult bench_whisper(const WhisperBenchParams& p);
std::string format_whisper_bench(const WhisperBenchResult& r, bool json);

}  // namespace eight

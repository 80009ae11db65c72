#include "runtime/speech/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "models/whisper/whisper.h"

namespace eight {

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double load_average() {
  std::ifstream f("/proc/loadavg");
  double v = 0;
  f >> v;
  return v;
}

}  // namespace

WhisperBenchResult bench_whisper(const WhisperBenchParams& p) {
  check(p.reps >= 1 && p.n_gen >= 1 && p.beams >= 1, "[bench] reps, tokens and beams must be >= 1");
  const auto model = whisper::Model::load(p.model);
  const whisper::HParams& hp = model->hparams();
  WhisperBenchResult r;
  r.model = p.model;
  r.n_threads = p.n_threads > 0 ? p.n_threads : default_thread_count();
  r.reps = p.reps;
  r.beams = p.beams;
  r.n_audio_state = hp.n_audio_state;
  r.n_audio_layer = hp.n_audio_layer;
  r.n_audio_head = hp.n_audio_head;
  r.n_text_layer = hp.n_text_layer;
  r.weight_type = dtype_name(model->file().weight_type);
  r.weight_bytes = model->weight_bytes();
  r.load_average = load_average();
  ThreadPool pool(r.n_threads);
  const whisper::SpecialTokens& sp = model->special();
  const std::vector<int32_t> prompt = {sp.sot, sp.multilingual ? sp.language(0) : sp.sot,
                                       sp.transcribe, sp.notimestamps};
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  r.n_gen = std::min<int64_t>(p.n_gen, hp.n_text_ctx - n_prompt);
  check(r.n_gen >= 1, "[bench] the decoder context ", hp.n_text_ctx, " holds no generated token");
  whisper::WhisperState state(model, p.beams, static_cast<int>(n_prompt + r.n_gen), pool);
  r.state_bytes = state.state_bytes();

  // A log-mel-like input: values in the range the front end produces.
  Tensor mel = Tensor::empty({hp.n_mels, 2 * hp.n_audio_ctx}, DType::F32);
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> dist(-0.8f, 1.2f);
  for (int64_t i = 0; i < mel.numel(); ++i) mel.data<float>()[i] = dist(gen);
  state.encode(mel);  // warm-up: page in the weights, size per-thread buffers
  std::vector<double> times, cpu;
  for (int i = 0; i < p.reps; ++i) {
    const double t0 = now_s(), c0 = cpu_s();
    state.encode(mel);
    times.push_back(now_s() - t0);
    cpu.push_back(cpu_s() - c0);
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu.begin(), cpu.end());
  r.encode_cpu_median_s = cpu[cpu.size() / 2];
  r.encode_median_s = times[times.size() / 2];
  r.encode_min_s = times[0];

  // Greedy decoding of one sequence after the usual 4-token prompt.
  const int64_t V = hp.n_vocab;
  std::vector<float> logits(static_cast<size_t>(std::max<int64_t>(n_prompt, p.beams) * V));
  state.decode(0, prompt, logits.data());
  int32_t tok = 0;
  const double t0 = now_s(), c0 = cpu_s();
  for (int64_t i = 0; i < r.n_gen; ++i) {
    const float* row = logits.data() + (i == 0 ? (n_prompt - 1) * V : 0);
    tok = static_cast<int32_t>(std::max_element(row, row + sp.eot) - row);  // text tokens only
    state.decode(0, std::span(&tok, 1), logits.data());
  }
  r.decode_tokens_per_s = static_cast<double>(r.n_gen) / (now_s() - t0);
  r.decode_cpu_ms_per_token = 1e3 * (cpu_s() - c0) / static_cast<double>(r.n_gen);

  // Beams: every sequence starts from the prompt's cache, then steps together.
  std::vector<int> seqs(static_cast<size_t>(p.beams));
  std::vector<int32_t> toks(seqs.size());
  for (int b = 0; b < p.beams; ++b) {
    seqs[b] = b;
    if (b > 0) state.copy_sequence(0, b);
    state.truncate(b, static_cast<int>(n_prompt));
    toks[b] = static_cast<int32_t>(220 + b);
  }
  const double t1 = now_s();
  for (int64_t i = 0; i < r.n_gen; ++i) state.decode_batch(seqs, toks, logits.data());
  r.batch_decode_tokens_per_s = static_cast<double>(r.n_gen * p.beams) / (now_s() - t1);
  return r;
}

std::string format_whisper_bench(const WhisperBenchResult& r, bool json) {
  if (json) {
    const nlohmann::json j = {{"model", r.model},
                              {"threads", r.n_threads},
                              {"weight_type", r.weight_type},
                              {"n_audio_state", r.n_audio_state},
                              {"n_audio_layer", r.n_audio_layer},
                              {"n_audio_head", r.n_audio_head},
                              {"n_text_layer", r.n_text_layer},
                              {"reps", r.reps},
                              {"encode_median_s", r.encode_median_s},
                              {"encode_min_s", r.encode_min_s},
                              {"encode_cpu_median_s", r.encode_cpu_median_s},
                              {"n_gen", r.n_gen},
                              {"decode_tokens_per_s", r.decode_tokens_per_s},
                              {"decode_cpu_ms_per_token", r.decode_cpu_ms_per_token},
                              {"beams", r.beams},
                              {"batch_decode_tokens_per_s", r.batch_decode_tokens_per_s},
                              {"weight_bytes", r.weight_bytes},
                              {"state_bytes", r.state_bytes},
                              {"load_average", r.load_average}};
    return j.dump() + "\n";
  }
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "model: %s (%s, audio state %d, %d encoder layers, %d heads, %d decoder layers)\n"
      "threads: %d, load average before: %.2f\n"
      "encode (one 30 s window): median %.3f s, best %.3f s over %d runs (CPU time %.3f s)\n"
      "decode: %.1f tokens/s (1 sequence, CPU time %.2f ms/token), %.1f tokens/s (%d sequences "
      "batched), %lld tokens each\n"
      "memory: weights %.1f MiB, state %.1f MiB\n",
      r.model.c_str(), r.weight_type.c_str(), r.n_audio_state, r.n_audio_layer, r.n_audio_head,
      r.n_text_layer, r.n_threads, r.load_average, r.encode_median_s, r.encode_min_s, r.reps,
      r.encode_cpu_median_s, r.decode_tokens_per_s, r.decode_cpu_ms_per_token,
      r.batch_decode_tokens_per_s, r.beams, static_cast<long long>(r.n_gen),
      r.weight_bytes / 1048576.0, r.state_bytes / 1048576.0);
  return buf;
}

}  // namespace eight

#include "runtime/llm/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "backend/vulkan/bench.h"
#include "backend/vulkan/vulkan.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "ops/read_probe.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/session.h"

namespace eight {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Total tokens/s of n_streams sequences decoding p.n_gen tokens each, one forward pass per step
// (llm::forward_segments, as the server's scheduler batches them); median of p.reps runs.
double bench_streams(const LLMSession& session, int n_streams, const LLMBenchParams& p,
                     std::mt19937& gen) {
  check(n_streams >= 1 && n_streams <= 64, "[bench] streams must be in 1..64, got ", n_streams);
  const auto& c = session.config();
  const int64_t n_gen = std::max<int64_t>(p.n_gen, 1);
  KVCache cache(kv_cache_config(session.model(), n_gen + 1, p.kv_type, n_streams));
  llm::LLMScratch scratch(session.model(), n_streams);
  HostBuffer logits(static_cast<size_t>(n_streams * c.n_vocab) * sizeof(float));
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.n_vocab - 1));
  std::vector<int32_t> next(static_cast<size_t>(n_streams));
  std::vector<llm::Segment> segs(static_cast<size_t>(n_streams));
  std::vector<double> rates;
  for (int rep = 0; rep < p.reps; ++rep) {
    for (auto& t : next) t = tok(gen);
    const auto t0 = Clock::now();
    for (int64_t pos = 0; pos < n_gen; ++pos) {
      for (int s = 0; s < n_streams; ++s)
        segs[static_cast<size_t>(s)] = {.kv = cache.layers(s), .pos0 = pos, .n = 1, .logits = true};
      llm::forward_segments(session.model(), next.data(), segs, scratch, logits.as<float>(),
                            llm::ForwardOptions{.n_ctx = n_gen + 1}, session.pool());
      for (int s = 0; s < n_streams; ++s) {
        const float* l = logits.as<float>() + s * c.n_vocab;
        next[static_cast<size_t>(s)] = static_cast<int32_t>(std::max_element(l, l + c.n_vocab) - l);
      }
    }
    rates.push_back(static_cast<double>(n_streams * n_gen) /
                    std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(rates);
}

}  // namespace

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

double measure_memory_read_gbps(int n_threads) {
  // 512 MiB, well beyond the last-level cache; the best of several read loops (ops/read_probe.h)
  // over 2 rounds (about 10 GiB read in all: a third of a second at 30 GB/s).
  const ops::ReadProbeResult r =
      ops::measure_read_bandwidth(int64_t{512} << 20, 2, global_thread_pool(n_threads));
  log_info("[bench] memory read bandwidth ", r.gbs, " GB/s (best read loop: ", r.variant, ")");
  return r.gbs;
}

LLMBenchResult bench_llm(const LLMBenchParams& p) {
  check(p.n_prompt >= 0 && p.n_gen >= 0 && p.n_prompt + p.n_gen > 0 && p.reps > 0,
        "[bench] need n_prompt ≥ 0, n_gen ≥ 0 (not both 0) and reps > 0");
  const int64_t n_ctx = std::max<int64_t>(std::max(p.n_prompt, p.n_gen), 1);
  auto session = LLMSession::open(p.model, {.n_ctx = n_ctx,
                                            .kv_type = p.kv_type,
                                            .ubatch = 512,
                                            .n_threads = p.n_threads,
                                            .device = p.device,
                                            .n_gpu_layers = p.n_gpu_layers});
  const llm::LLMPlacement placement = session->model().placement();
  const auto& c = session->config();
  LLMBenchResult r;
  r.model = p.model;
  r.arch = c.arch;
  r.n_threads = session->pool().size();
  r.n_prompt = p.n_prompt;
  r.n_gen = p.n_gen;
  r.weight_bytes = session->model().weight_bytes();
  r.file_bytes = static_cast<int64_t>(session->model().file().file_size());
  r.kv_bytes = session->cache().bytes();
  if (placement.any_gpu())
    r.device = cat(placement.device.name(), " ",
                   vulkan::devices()[static_cast<size_t>(placement.device.index)].name, ", ",
                   placement.n_gpu_layers, " of ", c.n_layer, " layers",
                   placement.output_on_gpu ? " + output" : "");

  std::mt19937 gen(1234);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(c.n_vocab - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(p.n_prompt));
  for (auto& t : prompt) t = tok(gen);

  // One untimed warm-up token pages the weights in.
  const int32_t first[1] = {tok(gen)};
  session->eval(first);
  std::vector<double> pp, tg;
  for (int rep = 0; rep < p.reps; ++rep) {
    if (p.n_prompt > 0) {
      session->reset();
      const auto t0 = Clock::now();
      session->eval(prompt);
      pp.push_back(p.n_prompt / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    if (p.n_gen > 0) {
      session->reset();
      int32_t next[1] = {tok(gen)};
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < p.n_gen; ++i) {
        const float* logits = session->eval(next);
        next[0] = static_cast<int32_t>(std::max_element(logits, logits + c.n_vocab) - logits);
      }
      tg.push_back(p.n_gen / std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  r.pp_tokens_per_s = median(pp);
  r.tg_tokens_per_s = median(tg);
  r.tg_gbps = static_cast<double>(r.weight_bytes) * r.tg_tokens_per_s / 1e9;
  // One session's peak: before the streams' caches and the bandwidth probe's buffer.
  r.peak_rss_bytes = peak_rss_bytes();
  for (int n_streams : p.streams)
    r.streams.push_back({n_streams, bench_streams(*session, n_streams, p, gen)});
  if (placement.any_gpu()) r.device_peak_bytes = memory_tracker(placement.device).stats().peak;
  session.reset();
  r.memory_read_gbps = placement.any_gpu() ? vulkan::copy_bandwidth_gbs(placement.device.index,
                                                                        int64_t{256} << 20, 0.4)
                                           : measure_memory_read_gbps(p.n_threads);
  return r;
}

std::string format_llm_bench(const LLMBenchResult& r, bool json) {
  if (json) {
    nlohmann::ordered_json j = {
        {"model", r.model},
        {"arch", r.arch},
        {"threads", r.n_threads},
        {"n_prompt", r.n_prompt},
        {"n_gen", r.n_gen},
        {"pp_tokens_per_s", r.pp_tokens_per_s},
        {"tg_tokens_per_s", r.tg_tokens_per_s},
        {"weight_bytes", r.weight_bytes},
        {"tg_gbps", r.tg_gbps},
        {"memory_read_gbps", r.memory_read_gbps},
        {"tg_bandwidth_fraction", r.memory_read_gbps > 0 ? r.tg_gbps / r.memory_read_gbps : 0.0},
        {"file_bytes", r.file_bytes},
        {"kv_bytes", r.kv_bytes},
        {"peak_rss_bytes", r.peak_rss_bytes},
        {"device", r.device},
        {"device_peak_bytes", r.device_peak_bytes}};
    for (const StreamsResult& s : r.streams)
      j["streams"].push_back({{"streams", s.streams}, {"tokens_per_s", s.tokens_per_s}});
    return j.dump() + "\n";
  }
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "model %s (%s), %d threads\n"
      "  pp%-5lld %8.1f tokens/s\n"
      "  tg%-5lld %8.1f tokens/s  (%.1f GB/s of weights = %.0f%% of the measured %.1f GB/s)\n"
      "  peak RSS %s (file %s + KV cache %s)\n",
      r.model.c_str(), r.arch.c_str(), r.n_threads, static_cast<long long>(r.n_prompt),
      r.pp_tokens_per_s, static_cast<long long>(r.n_gen), r.tg_tokens_per_s, r.tg_gbps,
      r.memory_read_gbps > 0 ? 100.0 * r.tg_gbps / r.memory_read_gbps : 0.0, r.memory_read_gbps,
      format_bytes(r.peak_rss_bytes).c_str(), format_bytes(r.file_bytes).c_str(),
      format_bytes(r.kv_bytes).c_str());
  std::string out = buf;
  if (r.device != "cpu") {
    std::snprintf(buf, sizeof buf, "  on %s: peak device memory %s (bandwidth: device copy)\n",
                  r.device.c_str(), format_bytes(r.device_peak_bytes).c_str());
    out += buf;
  }
  for (const StreamsResult& s : r.streams) {
    std::snprintf(buf, sizeof buf, "  tg%-5lld x %2d streams %8.1f tokens/s  (%.2fx tg)\n",
                  static_cast<long long>(r.n_gen), s.streams, s.tokens_per_s,
                  r.tg_tokens_per_s > 0 ? s.tokens_per_s / r.tg_tokens_per_s : 0.0);
    out += buf;
  }
  return out;
}

}  // namespace eight

#pragma once
// `eight bench -m MODEL`: prompt processing (pp) and generation (tg) speed of an LLM, like
// llama-bench: pp = n_prompt random tokens run as one prompt from an empty context, tg = n_gen
// tokens decoded one at a time from an empty context; each the median of `reps` runs. Generation
// is reported also as achieved weight-read bandwidth (weight bytes × tokens/s) against the
// machine's measured memory read bandwidth, and peak resident memory against file + KV cache.
// With streams, also batched decoding as the server's continuous batching does it: S sequences
// each decoding n_gen tokens, one forward pass per step for all S (total tokens/s).
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace eight {

struct LLMBenchParams {
  std::string model;
  int64_t n_prompt = 512;
  int64_t n_gen = 128;
  int reps = 3;
  int n_threads = 0;  // 0: default_thread_count()
  DType kv_type = DType::F16;
  std::vector<int> streams;    // batched-decode stream counts to measure (empty: none)
  std::string device = "cpu";  // as SessionOptions::device; a GPU is measured against its own
                               // copy bandwidth
  int64_t n_gpu_layers = -1;   // as SessionOptions::n_gpu_layers
};

struct StreamsResult {
  int streams = 0;
  double tokens_per_s = 0;  // all streams together
};

struct LLMBenchResult {
  std::string model, arch;
  int n_threads = 0;
  int64_t n_prompt = 0, n_gen = 0;
  double pp_tokens_per_s = 0, tg_tokens_per_s = 0;
  int64_t weight_bytes = 0;       // read per generated token
  double tg_gbps = 0;             // weight_bytes × tg tokens/s
  double memory_read_gbps = 0;    // measured on this machine (the GPU's copy bandwidth on a GPU)
  std::string device = "cpu";     // where the layers ran ("vulkan:0 NAME, 22 of 22 layers")
  int64_t device_peak_bytes = 0;  // peak tracked device memory (weights, caches, scratch)
  int64_t file_bytes = 0, kv_bytes = 0;
  int64_t peak_rss_bytes = 0;  // VmHWM after the runs
  std::vector<StreamsResult> streams;
};

LLMBenchResult bench_llm(const LLMBenchParams& p);
// A human-readable table; json: one JSON object.
std::string format_llm_bench(const LLMBenchResult& r, bool json);
// Streams a large buffer with every thread of the pool; GB/s (best of a few passes).
double measure_memory_read_gbps(int n_threads);
// The process's peak resident set (VmHWM) in bytes, 0 where /proc is absent.
int64_t peak_rss_bytes();

}  // namespace eight

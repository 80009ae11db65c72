// Brute-force image search (image_index::search): queries per second over 100k and 1M random
// normalized 768-d embeddings (CLIP ViT-L/14's width), one query per scan and 16 queries sharing
// a scan. The scan reads n × 768 × 4 bytes per pass, so it is bound by memory bandwidth.
//   build/bin/bench_image_index [--benchmark_filter=1000000]
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "runtime/vision/image_index.h"

namespace {

using eight::DType;
using eight::Tensor;

Tensor unit_rows(int64_t n, int64_t d, uint64_t seed) {
  Tensor t = Tensor::empty({n, d}, DType::F32);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> g;
  float* p = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) {
      p[i * d + j] = g(gen);
      ss += double(p[i * d + j]) * p[i * d + j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(ss));
    for (int64_t j = 0; j < d; ++j) p[i * d + j] *= inv;
  }
  return t;
}

const Tensor& corpus(int64_t n) {
  static Tensor small, large;
  Tensor& t = n <= 100000 ? small : large;
  if (!t.defined() || t.size(0) != n) t = unit_rows(n, 768, static_cast<uint64_t>(n));
  return t;
}

void BM_search(benchmark::State& state) {
  const int64_t n = state.range(0), q = state.range(1);
  const Tensor& e = corpus(n);
  const Tensor queries = unit_rows(q, 768, 7);
  eight::ThreadPool& pool = eight::global_thread_pool();
  for (auto _ : state) {
    auto hits = eight::image_index::search(e, queries, 10, pool);
    benchmark::DoNotOptimize(hits.data());
  }
  state.SetItemsProcessed(state.iterations() * q);  // items/s = queries/s
  state.SetBytesProcessed(state.iterations() * n * 768 * 4);
  state.counters["threads"] = pool.size();
}

BENCHMARK(BM_search)
    ->ArgNames({"n", "queries"})
    ->Args({100000, 1})
    ->Args({100000, 16})
    ->Args({1000000, 1})
    ->Args({1000000, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

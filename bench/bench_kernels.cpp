// Google Benchmark programs for the CPU kernels: matmul per weight type at batch 1 (decode, a
// weight matrix larger than the last-level cache), 2/4/8 (batched decode of parallel streams, the
// same large matrix) and 32/128/512 (prompt processing), plus the
// row kernels. `eight bench --kernels` prints the summary table; this gives per-kernel detail.
//
//   build/bin/bench_kernels --benchmark_filter='matmul/q4_K'
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant.h"
#include "core/thread_pool.h"
#include "ops/attention.h"
#include "ops/matmul.h"

namespace eight {
namespace {

ThreadPool& pool() {
  static ThreadPool p(default_thread_count());
  return p;
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

Tensor weights(DType t, int64_t n, int64_t k) {
  Tensor w = Tensor::empty({n, k}, t);
  // Quantize one block of rows and repeat it: the speed does not depend on the values.
  const int64_t rows = std::min<int64_t>(n, 64);
  const auto src = randn(static_cast<size_t>(rows * k), 1);
  const size_t rb = dtype_row_bytes(t, k);
  quantize_rows(t, src.data(), w.raw(), rows, k);
  for (int64_t r = rows; r < n; ++r)
    std::memcpy(static_cast<char*>(w.raw()) + r * rb, static_cast<char*>(w.raw()) + (r % rows) * rb,
                rb);
  return w;
}

// Times y[m, n] = x[m, k] · wᵀ (random x, weights of type t) and reports weight GB/s.
void time_matmul(benchmark::State& st, DType t, int64_t m, int64_t n, int64_t k) {
  const Tensor w = weights(t, n, k);
  Tensor x = Tensor::empty({m, k}, DType::F32);
  const auto xv = randn(static_cast<size_t>(m * k), 2);
  std::memcpy(x.raw(), xv.data(), xv.size() * 4);
  Tensor y = Tensor::empty({m, n}, DType::F32);
  for (auto _ : st) ops::matmul(x, w, y, pool());
  const double bytes = static_cast<double>(dtype_row_bytes(t, k)) * static_cast<double>(n);
  st.counters["weight_GB/s"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_matmul(benchmark::State& st, DType t) {
  const int64_t m = st.range(0), k = 4096;
  // Decode (up to 8 rows): ~256 MiB of weights (beyond any cache); batches: a 4096 x 4096 layer.
  const int64_t n = m <= 8
                        ? std::max<int64_t>(4096, (int64_t{256} << 20) /
                                                      static_cast<int64_t>(dtype_row_bytes(t, k)))
                        : 4096;
  time_matmul(st, t, m, n, k);
  st.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Decode (m x rows) over a small matrix that stays in cache: the kernel's compute ceiling, to
// compare with the memory-bound figure of matmul/TYPE/m. Arguments: m, n rows of k = 2048.
void bm_matvec_cached(benchmark::State& st, DType t) {
  const int64_t m = st.range(0), n = st.range(1), k = 2048;
  time_matmul(st, t, m, n, k);
}

void bm_rms_norm(benchmark::State& st) {
  const int64_t n = st.range(0);
  const auto x = randn(n, 3), w = randn(n, 4);
  std::vector<float> y(n);
  for (auto _ : st) cpu::nn_kernels().rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
  st.SetBytesProcessed(st.iterations() * n * 4);
}

void bm_softmax(benchmark::State& st) {
  const int64_t n = st.range(0);
  const auto x = randn(n, 5);
  std::vector<float> y(n);
  for (auto _ : st) cpu::nn_kernels().softmax(x.data(), nullptr, y.data(), n, 1.f);
  st.SetItemsProcessed(st.iterations() * n);
}

void bm_attention_decode(benchmark::State& st) {
  const int64_t tk = st.range(0), heads = 32, kv = 8, d = 128;
  const auto qv = randn(heads * d, 6), kvv = randn(tk * kv * d, 7);
  Tensor q = Tensor::empty({1, heads, d}, DType::F32),
         out = Tensor::empty({1, heads, d}, DType::F32);
  std::memcpy(q.raw(), qv.data(), qv.size() * 4);
  Tensor k = Tensor::empty({tk, kv, d}, DType::F16);
  quantize_rows(DType::F16, kvv.data(), k.raw(), tk * kv, d);
  for (auto _ : st) ops::attention(q, k, k, out, pool(), {.pos0 = tk - 1});
  st.counters["KV_GB/s"] = benchmark::Counter(2.0 * tk * kv * d * 2 * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

const int registered = [] {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                  DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                  DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS}) {
    if (!can_quantize(t)) continue;  // the IQ types have no encoder to build inputs with
    benchmark::RegisterBenchmark(("matmul/" + std::string(dtype_name(t))).c_str(), bm_matmul, t)
        ->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->Arg(8)
        ->Arg(12)
        ->Arg(16)
        ->Arg(32)
        ->Arg(128)
        ->Arg(512)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    benchmark::RegisterBenchmark(("matvec_cached/" + std::string(dtype_name(t))).c_str(),
                                 bm_matvec_cached, t)
        ->Args({1, 256})
        ->Args({1, 1024})
        ->Args({4, 1024})
        ->UseRealTime();
  benchmark::RegisterBenchmark("rms_norm", bm_rms_norm)->Arg(4096);
  benchmark::RegisterBenchmark("softmax", bm_softmax)->Arg(32000);
  benchmark::RegisterBenchmark("attention_decode_f16", bm_attention_decode)
      ->Arg(512)
      ->Arg(4096)
      ->UseRealTime();
  return 0;
}();

}  // namespace
}  // namespace eight

BENCHMARK_MAIN();

#include "ops/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/cpu_features.h"
#include "core/half.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/quant_blocks.h"
#include "core/tensor.h"
#include "ops/matmul.h"
#include "ops/read_probe.h"

namespace eight::ops {

namespace {

using Clock = std::chrono::steady_clock;

// Best time of fn over repetitions lasting at least min_seconds (after one warm-up call, which
// also grows the kernels' scratch buffers).
template <class Fn>
double best_seconds(double min_seconds, Fn&& fn) {
  fn();
  double best = 1e30, total = 0;
  int reps = 0;
  while (total < min_seconds || reps < 3) {
    const auto t0 = Clock::now();
    fn();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
    ++reps;
  }
  return best;
}

uint64_t next_random(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// Byte offsets of the fp16 scale fields in one block of a quantized type (SIZE_MAX: none).
struct Fp16Fields {
  size_t a = SIZE_MAX, b = SIZE_MAX;
};
Fp16Fields fp16_fields(DType t) {
  using namespace quant;
  switch (t) {
    case DType::Q4_0:
      return {offsetof(BlockQ4_0, d)};
    case DType::Q4_1:
      return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case DType::Q5_0:
      return {offsetof(BlockQ5_0, d)};
    case DType::Q5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case DType::Q8_0:
      return {offsetof(BlockQ8_0, d)};
    case DType::Q2_K:
      return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case DType::Q3_K:
      return {offsetof(BlockQ3_K, d)};
    case DType::Q4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::Q5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::Q6_K:
      return {offsetof(BlockQ6_K, d)};
    case DType::IQ4_NL:
      return {offsetof(BlockIQ4_NL, d)};
    case DType::IQ4_XS:
      return {offsetof(BlockIQ4_XS, d)};
    default:
      return {};
  }
}

// Random codes with finite scales: the speed of the kernels does not depend on the values, and
// quantizing hundreds of MiB with the real quantizer would take longer than the benchmark.
Tensor random_weight_tensor(DType t, int64_t n, int64_t k, uint64_t seed) {
  Tensor w = Tensor::empty({n, k}, t);
  const size_t bytes = dtype_row_bytes(t, k) * static_cast<size_t>(n);
  auto* p = static_cast<uint8_t*>(w.raw());
  uint64_t s = seed | 1;
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    const size_t count = static_cast<size_t>(n * k);
    for (size_t i = 0; i < count; ++i) {
      const float v =
          static_cast<float>(static_cast<int64_t>(next_random(s) % 2001) - 1000) * 1e-3f;
      if (t == DType::F32)
        std::memcpy(p + 4 * i, &v, 4);
      else {
        const uint16_t h = t == DType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
        std::memcpy(p + 2 * i, &h, 2);
      }
    }
    return w;
  }
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t r = next_random(s);
    std::memcpy(p + i, &r, 8);
  }
  const uint16_t scale = fp32_to_fp16(0.01f);
  const size_t bb = dtype_block_bytes(t);
  const Fp16Fields f = fp16_fields(t);
  for (size_t off = 0; off < bytes; off += bb) {
    if (f.a != SIZE_MAX) std::memcpy(p + off + f.a, &scale, 2);
    if (f.b != SIZE_MAX) std::memcpy(p + off + f.b, &scale, 2);
  }
  return w;
}

Tensor random_activations(int64_t m, int64_t k, uint64_t seed) {
  Tensor x = Tensor::empty({m, k}, DType::F32);
  uint64_t s = seed | 1;
  float* p = x.data<float>();
  for (int64_t i = 0; i < m * k; ++i)
    p[i] = static_cast<float>(static_cast<int64_t>(next_random(s) % 2001) - 1000) * 1e-3f;
  return x;
}

}  // namespace

KernelBenchReport run_kernel_bench(const KernelBenchOptions& o, ThreadPool& pool) {
  KernelBenchReport r;
  r.cpu = cpu_features().brand;
  r.isa = isa_name(active_isa());
  r.threads = pool.size();
  r.batches = o.batches;
  std::vector<DType> types = o.types;
  if (types.empty())
    types = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,   DType::Q4_1,
             DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,   DType::Q3_K,
             DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};
  log_info("[bench] read bandwidth over ", format_bytes(o.bandwidth_bytes), " with ", r.threads,
           " threads");
  const ReadProbeResult probe = measure_read_bandwidth(o.bandwidth_bytes, o.probe_rounds, pool);
  r.read_gbs = probe.gbs;
  r.read_variant = probe.variant;
  r.read_variants = probe.variants;
  const Tensor x1 = random_activations(1, o.k, 7);
  for (DType t : types) {
    check(cpu::matmul_weight_type_supported(t), "[bench] no matmul kernel for ", dtype_name(t));
    KernelBenchRow row;
    row.type = t;
    {
      const size_t row_bytes = dtype_row_bytes(t, o.k);
      const int64_t n = std::max<int64_t>(1, o.matvec_bytes / static_cast<int64_t>(row_bytes));
      const Tensor w = random_weight_tensor(t, n, o.k, 11);
      Tensor y = Tensor::empty({1, n}, DType::F32);
      const double s = best_seconds(o.min_seconds, [&] { matmul(x1, w, y, pool); });
      row.matvec_gbs = static_cast<double>(row_bytes) * static_cast<double>(n) / s / 1e9;
    }
    const Tensor w = random_weight_tensor(t, o.matmul_n, o.k, 13);
    for (int64_t b : o.batches) {
      const Tensor x = random_activations(b, o.k, 17);
      Tensor y = Tensor::empty({b, o.matmul_n}, DType::F32);
      const double s = best_seconds(o.min_seconds, [&] { matmul(x, w, y, pool); });
      row.matmul_gflops.push_back(2.0 * static_cast<double>(b) * static_cast<double>(o.matmul_n) *
                                  static_cast<double>(o.k) / s / 1e9);
    }
    log_info("[bench] ", dtype_name(t), " done");
    r.rows.push_back(row);
  }
  return r;
}

std::string format_kernel_bench(const KernelBenchReport& r) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "cpu: %s, kernels: %s, threads: %d\n", r.cpu.c_str(),
                r.isa.c_str(), r.threads);
  out += line;
  std::snprintf(line, sizeof line,
                "memory read bandwidth: %.1f GB/s (best read loop: %s; all:", r.read_gbs,
                r.read_variant.c_str());
  out += line;
  for (size_t i = 0; i < r.read_variants.size(); ++i) {
    std::snprintf(line, sizeof line, "%s %s %.1f", i ? "," : "", r.read_variants[i].first.c_str(),
                  r.read_variants[i].second);
    out += line;
  }
  out += ")\n\n";
  out += "| weight | matvec GB/s | % of read BW |";
  for (int64_t b : r.batches) out += cat(" matmul b=", b, " GFLOP/s |");
  out += "\n|---|---:|---:|";
  for (size_t i = 0; i < r.batches.size(); ++i) out += "---:|";
  out += "\n";
  for (const auto& row : r.rows) {
    std::snprintf(line, sizeof line, "| %-6s | %6.1f | %5.1f%% |",
                  std::string(dtype_name(row.type)).c_str(), row.matvec_gbs,
                  100.0 * row.matvec_gbs / r.read_gbs);
    out += line;
    for (double g : row.matmul_gflops) {
      std::snprintf(line, sizeof line, " %6.1f |", g);
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace eight::ops

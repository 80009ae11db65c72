// The device roofline benchmark (bench.h), written against the public API only.
#include "backend/vulkan/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "backend/vulkan/vulkan.h"
#include "core/error.h"
#include "core/log.h"

namespace eight::vulkan {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0,   DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q2_K,   DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};

// Seconds per call of `record` (which records one unit of work): repeats batches of calls, each
// batch one submission and wait, until min_seconds have passed; keeps the best batch.
template <class Record>
double seconds_per_call(int device, double min_seconds, Record record) {
  using clock = std::chrono::steady_clock;
  record();  // first use: pipeline creation, page-in
  synchronize(device);
  double best = 1e30, total = 0;
  int calls = 1;
  while (total < min_seconds) {
    const auto t0 = clock::now();
    for (int i = 0; i < calls; ++i) record();
    synchronize(device);
    const double s = std::chrono::duration<double>(clock::now() - t0).count();
    best = std::min(best, s / calls);
    total += s;
    if (s < min_seconds / 8) calls *= 2;  // longer batches hide the submission overhead
  }
  return best;
}

// A buffer filled with 0x11 bytes: small, normal numbers in every float and scale field.
std::unique_ptr<Buffer> filled(int device, size_t bytes) {
  auto b = std::make_unique<Buffer>(device, bytes);
  const std::vector<uint8_t> chunk(std::min<size_t>(bytes, size_t{8} << 20), 0x11);
  for (size_t at = 0; at < bytes; at += chunk.size())
    upload(*b, at, chunk.data(), std::min(chunk.size(), bytes - at));
  return b;
}

}  // namespace

double copy_bandwidth_gbs(int device, int64_t bytes, double min_seconds) {
  auto a = filled(device, static_cast<size_t>(bytes));
  Buffer b(device, static_cast<size_t>(bytes));
  const double s = seconds_per_call(device, min_seconds, [&] {
    copy({a.get(), 0}, {&b, 0}, a->size());
  });
  return 2.0 * static_cast<double>(bytes) / s / 1e9;
}

BenchReport benchmark(int device, const BenchOptions& o) {
  const auto list = devices();
  check(device >= 0 && device < static_cast<int>(list.size()), "[bench] no device vulkan:", device,
        " (", describe_devices(), ")");
  BenchReport r;
  r.device = cat("vulkan:", device, " ", list[static_cast<size_t>(device)].name, " (",
                 list[static_cast<size_t>(device)].type, ")");
  r.batches = o.batches;
  r.copy_gbs = copy_bandwidth_gbs(device, o.copy_bytes, o.min_seconds);
  log_info("[bench] vulkan:", device, " copy ", r.copy_gbs, " GB/s");
  const std::vector<DType> types =
      o.types.empty() ? std::vector<DType>(std::begin(kAllTypes), std::end(kAllTypes)) : o.types;
  const int64_t max_m = std::max<int64_t>(1, *std::max_element(o.batches.begin(), o.batches.end()));
  auto x = filled(device, static_cast<size_t>(max_m * o.k) * sizeof(float));
  for (DType type : types) {
    check(matmul_weight_type_supported(type), "[bench] no Vulkan matmul for ", dtype_name(type));
    BenchRow row{.type = type};
    const size_t ldw = dtype_row_bytes(type, o.k);
    const int64_t n = std::max<int64_t>(1, o.matvec_bytes / static_cast<int64_t>(ldw));
    {
      auto w = filled(device, ldw * static_cast<size_t>(n));
      Buffer y(device, static_cast<size_t>(n) * sizeof(float));
      const MatmulArgs a{.m = 1,
                         .n = n,
                         .k = o.k,
                         .x = {x.get(), 0},
                         .ldx = o.k,
                         .w_type = type,
                         .w = {w.get(), 0},
                         .ldw = ldw,
                         .y = {&y, 0},
                         .ldy = n};
      const double s = seconds_per_call(device, o.min_seconds, [&] { matmul(a); });
      row.matvec_gbs = static_cast<double>(ldw) * static_cast<double>(n) / s / 1e9;
    }
    auto w = filled(device, ldw * static_cast<size_t>(o.matmul_n));
    for (int64_t m : o.batches) {
      Buffer y(device, static_cast<size_t>(m * o.matmul_n) * sizeof(float));
      const MatmulArgs a{.m = m,
                         .n = o.matmul_n,
                         .k = o.k,
                         .x = {x.get(), 0},
                         .ldx = o.k,
                         .w_type = type,
                         .w = {w.get(), 0},
                         .ldw = ldw,
                         .y = {&y, 0},
                         .ldy = o.matmul_n};
      const double s = seconds_per_call(device, o.min_seconds, [&] { matmul(a); });
      row.matmul_gflops.push_back(2.0 * static_cast<double>(m) * static_cast<double>(o.matmul_n) *
                                  static_cast<double>(o.k) / s / 1e9);
    }
    log_info("[bench] vulkan:", device, " ", dtype_name(type), " matvec ", row.matvec_gbs, " GB/s");
    r.rows.push_back(std::move(row));
  }
  return r;
}

std::string format_bench(const BenchReport& r) {
  std::string out = cat("device: ", r.device, "\ncopy bandwidth: ");
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g GB/s (read + write)\n\n", r.copy_gbs);
  out += buf;
  out += "| type | matvec GB/s | of copy |";
  for (int64_t m : r.batches) out += cat(" matmul m=", m, " GFLOP/s |");
  out += "\n|---|---|---|";
  for (size_t i = 0; i < r.batches.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : r.rows) {
    std::snprintf(buf, sizeof buf, "| %s | %.3g | %.0f %% |",
                  std::string(dtype_name(row.type)).c_str(), row.matvec_gbs,
                  r.copy_gbs > 0 ? 100.0 * row.matvec_gbs / r.copy_gbs : 0.0);
    out += buf;
    for (double g : row.matmul_gflops) {
      std::snprintf(buf, sizeof buf, " %.3g |", g);
      out += buf;
    }
    out += "\n";
  }
  return out;
}

}  // namespace eight::vulkan

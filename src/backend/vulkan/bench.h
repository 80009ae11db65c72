#pragma once
// The device roofline benchmark behind `eight bench --kernels --device vulkan:N`: the device's
// copy bandwidth, then per weight type the matrix-vector throughput (GB/s of weights streamed,
// and its share of the copy bandwidth) and the matrix-matrix GFLOP/s at a few batch sizes. Timed
// on the host around whole submissions, the best of several repetitions. It measures, it does
// not assert.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace eight::vulkan {

struct BenchOptions {
  std::vector<DType> types;  // empty: every matmul weight type
  std::vector<int64_t> batches{32, 128, 512};
  int64_t copy_bytes = int64_t{256} << 20;    // buffer copied by the bandwidth probe
  int64_t matvec_bytes = int64_t{256} << 20;  // weight bytes of the matrix-vector test
  int64_t k = 4096;                           // columns (all types)
  int64_t matmul_n = 4096;                    // weight rows of the matrix-matrix test
  double min_seconds = 0.4;                   // per measurement
};

struct BenchRow {
  DType type = DType::F32;
  double matvec_gbs = 0;              // weight bytes / second, 1 x row
  std::vector<double> matmul_gflops;  // per batch in options.batches
};

struct BenchReport {
  std::string device;   // "vulkan:0 NVIDIA GeForce RTX 3070 (discrete)"
  double copy_gbs = 0;  // (read + write) bytes / second of a device-to-device copy
  std::vector<int64_t> batches;
  std::vector<BenchRow> rows;
};

BenchReport benchmark(int device, const BenchOptions& options);
// (read + write) GB/s of a device-to-device copy of `bytes`, best over at least min_seconds: the
// device's memory bandwidth (the roofline of decoding).
double copy_bandwidth_gbs(int device, int64_t bytes, double min_seconds);
// The report as a Markdown table (also readable in a terminal).
std::string format_bench(const BenchReport& report);

}  // namespace eight::vulkan

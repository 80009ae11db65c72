#pragma once
// The kernel roofline benchmark behind `eight bench --kernels`: the machine's memory read
// bandwidth (ops/read_probe.h), then per weight type the matrix-vector throughput on a weight
// matrix much larger than the last-level cache (GB/s of weights streamed, and its share of the read
// bandwidth) and the matrix-matrix GFLOP/s at a few batch sizes. It measures, it does not assert.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace eight::ops {

struct KernelBenchOptions {
  std::vector<DType> types;  // empty: every matmul weight type
  std::vector<int64_t> batches{32, 128, 512};
  int64_t bandwidth_bytes = int64_t{1} << 30;  // buffer of the read-bandwidth probe
  int probe_rounds = 4;                        // interleaved rounds of its read loops
  int64_t matvec_bytes = int64_t{256} << 20;   // weight bytes of the matrix-vector test
  int64_t k = 4096;                            // columns (all types)
  int64_t matmul_n = 4096;                     // weight rows of the matrix-matrix test
  double min_seconds = 0.4;                    // per measurement (best repetition is kept)
};

struct KernelBenchRow {
  DType type = DType::F32;
  double matvec_gbs = 0;              // weight bytes / second, 1 x row
  std::vector<double> matmul_gflops;  // per batch in options.batches
};

struct KernelBenchReport {
  std::string cpu, isa;
  int threads = 0;
  double read_gbs = 0;
  std::string read_variant;                                   // the probe loop that reached it
  std::vector<std::pair<std::string, double>> read_variants;  // every probe loop's best GB/s
  std::vector<int64_t> batches;
  std::vector<KernelBenchRow> rows;
};

// Runs the benchmark with the active kernels on `pool`; progress goes to the log (info).
KernelBenchReport run_kernel_bench(const KernelBenchOptions& options, ThreadPool& pool);
// The report as a Markdown table (also readable in a terminal).
std::string format_kernel_bench(const KernelBenchReport& report);

}  // namespace eight::ops

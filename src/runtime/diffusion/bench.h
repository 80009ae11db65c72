#pragma once
// `eight bench -m SDXL_MODEL` and `eight bench --sdxl-random`: seconds per SDXL UNet step (one
// call with the CFG batch of 2: the conditional and unconditional halves together) at given
// image sizes, the VAE decode time (with a model), and the step's GFLOP/s against the machine's
// measured matmul peak.
//
// The random mode builds SDXL base's real architecture (unet::sdxl_base_config()) without a
// download: every weight is a view into a shared pool of random values (uniform, std 0.02; norm
// weights 1), one pool of 64 M values per weight type (128 MB in f16: more than any L2, though a
// large L3 may hold it, where a real 5 GB file would stream from memory). Random rather than zero
// data, so quantized kernels see realistic scales; shared, so a 2.6 G-parameter UNet costs
// ~200 MB. Weight reads are a small part of a step (every product has 128 to 8192 rows), so the
// sharing flatters the numbers little. Convolutions stay f16 in every mode; with q4_K, linear
// weights whose row is not a multiple of 256 (SDXL's 640-channel level) fall back to q4_0.
//
// The peak is the f16 matmul kernel's (the convolutions' kernel, and the linear layers' in f16
// mode); with quantized linear weights the int8 kernels can run above it.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace eight::diffusion {

struct DiffusionBenchParams {
  std::string model;                      // SDXL file or directory; empty: the random UNet
  DType random_type = DType::F16;         // linear weights of the random UNet: f16, q8_0, q4_K
  std::vector<int64_t> sizes{512, 1024};  // square image sides in pixels (multiples of 8)
  int steps = 1;                          // UNet calls timed per size (the median is reported)
  int n_threads = 0;                      // 0: default_thread_count()
  bool vae = true;                        // with a model: time one VAE decode per size
  bool peak = true;                       // measure the matmul peak (a few seconds)
};

struct DiffusionSizeResult {
  int64_t width = 0, height = 0;
  std::vector<double> step_s;  // every timed UNet call
  double median_step_s = 0;
  std::vector<double> step_cpu_s;  // CPU seconds of all threads per call (steadier when shared)
  double median_step_cpu_s = 0;
  double gflop = 0;         // multiply-adds x 2 of one call (convs, linears, attention)
  double gflops = 0;        // gflop / median_step_s
  double vae_decode_s = 0;  // 0: not measured
};

struct DiffusionBenchResult {
  std::string model;  // path, or "random SDXL-shaped UNet (f16)"
  int n_threads = 0;
  int64_t batch = 2;
  int64_t weight_bytes = 0;  // UNet weights as the model holds them (shared pool: as if real)
  double peak_gflops = 0;    // the f16 matmul kernel at 512 rows (ops/kernel_bench.h)
  std::vector<DiffusionSizeResult> sizes;
};

DiffusionBenchResult bench_sdxl(const DiffusionBenchParams& p);
// A human-readable table; json: one JSON object.
std::string format_sdxl_bench(const DiffusionBenchResult& r, bool json);

}  // namespace eight::diffusion

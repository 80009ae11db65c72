#pragma once
// The memory read-bandwidth probe behind `eight bench` (the roofline its decode figures are a
// share of) and `eight bench --kernels`: every thread of the pool streams its own contiguous part
// of a buffer much larger than the last-level cache, with several read loops (scalar, AVX2 with 4
// or 8 loads per iteration, two streams per thread, software prefetch, non-temporal loads, and
// AVX-512 where the CPU has it), interleaved over a few rounds; the best pass of the best loop is
// the machine's read bandwidth. One loop alone underestimates it: the old probe (a float sum)
// read 30-31 GB/s on the machine where llama.cpp streams 31.5 GB/s of weights.
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"

namespace eight::ops {

struct ReadProbeResult {
  double gbs = 0;       // best pass of the best variant (1e9 bytes / s)
  std::string variant;  // the loop that reached it
  std::vector<std::pair<std::string, double>> variants;  // every loop's best, in probe order
};

// Streams `bytes` (rounded down to 4 KiB per thread) with every variant on all threads of pool:
// `rounds` interleaved rounds after one warm-up pass each.
ReadProbeResult measure_read_bandwidth(int64_t bytes, int rounds, ThreadPool& pool);

}  // namespace eight::ops

#include "ops/read_probe.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/memory.h"

#if defined(__x86_64__)
#include "backend/cpu/isa/intrin.h"  // immintrin.h, GCC 12 warnings off
#define EIGHT_TARGET(isa) __attribute__((target(isa)))
#endif

namespace eight::ops {

namespace {

using Clock = std::chrono::steady_clock;
// Reads [p, p + bytes) (bytes a multiple of 4 KiB, p 64-byte aligned) and returns a value that
// depends on every byte, so the loads cannot be dropped.
using ReadFn = uint64_t (*)(const uint8_t* p, size_t bytes);

uint64_t read_scalar(const uint8_t* p, size_t bytes) {
  const auto* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i < bytes / 8; i += 4) {
    a += q[i];
    b ^= q[i + 1];
    c += q[i + 2];
    d ^= q[i + 3];
  }
  return a + b + c + d;
}

#if defined(__x86_64__)
EIGHT_TARGET("avx2") uint64_t fold(__m256i v) {
  const __m128i h = _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(h) ^ _mm_extract_epi64(h, 1));
}

// kLoads 32-byte loads per iteration into as many accumulators (xor: one cheap uop per load);
// kPrefetch: prefetcht0 2 KiB ahead; kStream: vmovntdqa loads (non-temporal hint; on ordinary
// write-back memory most CPUs treat them as plain loads, which the probe then shows).
template <int kLoads, bool kPrefetch, bool kStream>
EIGHT_TARGET("avx2")
uint64_t read_avx2(const uint8_t* p, size_t bytes) {
  __m256i acc[kLoads];
  for (auto& a : acc) a = _mm256_setzero_si256();
  for (size_t i = 0; i < bytes; i += 32 * kLoads) {
    if constexpr (kPrefetch)
      for (int l = 0; l < kLoads; l += 2)
        _mm_prefetch(reinterpret_cast<const char*>(p + i + 2048 + 32 * l), _MM_HINT_T0);
    for (int l = 0; l < kLoads; ++l) {
      const auto* src = reinterpret_cast<const __m256i*>(p + i + 32 * l);
      const __m256i v = kStream ? _mm256_stream_load_si256(src) : _mm256_load_si256(src);
      acc[l] = _mm256_xor_si256(acc[l], v);
    }
  }
  for (int l = 1; l < kLoads; ++l) acc[0] = _mm256_xor_si256(acc[0], acc[l]);
  return fold(acc[0]);
}

// Two streams per thread: the two halves of the thread's part, 4 loads from each per iteration
// (more pages open at once for the hardware prefetchers).
EIGHT_TARGET("avx2") uint64_t read_avx2_two_streams(const uint8_t* p, size_t bytes) {
  const size_t half = bytes / 2;
  __m256i acc[8];
  for (auto& a : acc) a = _mm256_setzero_si256();
  for (size_t i = 0; i < half; i += 128)
    for (int l = 0; l < 4; ++l) {
      acc[l] = _mm256_xor_si256(
          acc[l], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32 * l)));
      acc[4 + l] = _mm256_xor_si256(
          acc[4 + l], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + half + i + 32 * l)));
    }
  for (int l = 1; l < 8; ++l) acc[0] = _mm256_xor_si256(acc[0], acc[l]);
  return fold(acc[0]);
}

EIGHT_TARGET("avx512f") uint64_t read_avx512(const uint8_t* p, size_t bytes) {
  __m512i acc[8];
  for (auto& a : acc) a = _mm512_setzero_si512();
  for (size_t i = 0; i < bytes; i += 512)
    for (int l = 0; l < 8; ++l)
      acc[l] = _mm512_xor_si512(acc[l], _mm512_load_si512(p + i + 64 * l));
  for (int l = 1; l < 8; ++l) acc[0] = _mm512_xor_si512(acc[0], acc[l]);
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(acc[0]));
}
#endif

volatile uint64_t g_sink = 0;

struct Variant {
  const char* name;
  ReadFn fn;
};

std::vector<Variant> variants() {
  std::vector<Variant> v{{"scalar", read_scalar}};
#if defined(__x86_64__)
  const CPUFeatures& f = cpu_features();
  if (f.avx2) {
    v.push_back({"avx2 x4", read_avx2<4, false, false>});
    v.push_back({"avx2 x8", read_avx2<8, false, false>});
    v.push_back({"avx2 2 streams", read_avx2_two_streams});
    v.push_back({"avx2 x8 prefetch", read_avx2<8, true, false>});
    v.push_back({"avx2 x8 nt", read_avx2<8, false, true>});
  }
  if (f.avx512f) v.push_back({"avx512 x8", read_avx512});
#endif
  return v;
}

}  // namespace

ReadProbeResult measure_read_bandwidth(int64_t bytes, int rounds, ThreadPool& pool) {
  const int64_t threads = pool.size();
  const size_t per_thread = static_cast<size_t>(bytes / threads) / 4096 * 4096;
  check(per_thread > 0 && rounds > 0, "[bench] read probe of ", bytes, " bytes on ", threads,
        " threads is too small");
  // Each thread's part is contiguous and one task: a thread streams one region, as the decode
  // kernels stream their rows.
  HostBuffer buf(per_thread * static_cast<size_t>(threads));
  std::memset(buf.data(), 1, buf.size());  // touch every page before timing
  const auto* base = static_cast<const uint8_t*>(buf.data());
  HostBuffer sink_buf(static_cast<size_t>(threads) * sizeof(uint64_t), /*zero=*/true);
  auto* sink = sink_buf.as<uint64_t>();
  const std::vector<Variant> vs = variants();
  ReadProbeResult r;
  std::vector<double> best(vs.size(), 0.0);
  for (int round = 0; round <= rounds; ++round)  // round 0 warms up (not counted)
    for (size_t v = 0; v < vs.size(); ++v) {
      const auto t0 = Clock::now();
      pool.parallel_for(threads, [&](int64_t t, int) {
        sink[t] += vs[v].fn(base + static_cast<size_t>(t) * per_thread, per_thread);
      });
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (round > 0) best[v] = std::max(best[v], static_cast<double>(buf.size()) / s / 1e9);
    }
  uint64_t all = 0;
  for (int64_t t = 0; t < threads; ++t) all ^= sink[t];
  g_sink = all;  // keeps the sums (and so the loads) alive
  for (size_t v = 0; v < vs.size(); ++v) {
    r.variants.emplace_back(vs[v].name, best[v]);
    if (best[v] > r.gbs) {
      r.gbs = best[v];
      r.variant = vs[v].name;
    }
  }
  return r;
}

}  // namespace eight::ops

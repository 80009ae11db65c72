// Row functions for the encoder's two transcendental-heavy steps: the attention softmax
// (1500 x 1500 exponentials per head and layer) and the exact GELU of the MLPs. The backend's row
// kernels call libm's scalar expf / erff per element, which profiled at a quarter of the encoder's
// time; these are plain loops over branch-free polynomials that the compiler vectorizes, built
// for AVX-512, AVX2 and baseline x86-64 (target_clones picks one at load time).
//
// exp: Cody-Waite range reduction x = n·ln2 + r, |r| <= ln2/2, and Cephes' degree-6 expf
// polynomial for e^r (relative error ~1e-7), scaled by 2^n through the exponent bits.
// erf: Abramowitz & Stegun 7.1.26, erf(x) = 1 - t·P(t)·e^(-x²), t = 1 / (1 + p·x) for x >= 0,
// absolute error <= 1.5e-7.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "models/whisper/whisper_internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EIGHT_WHISPER_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define EIGHT_WHISPER_CLONES
#endif

namespace eight::whisper {

namespace {

inline float exp_poly(float x) {
  x = std::min(88.3f, std::max(-87.3f, x));
  // n = round(x / ln 2) by the 1.5·2^23 trick (exact for |x / ln 2| < 2^22).
  const float shifter = 12582912.0f;
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

}  // namespace

// Reductions keep 16 partial results so the loops vectorize without reassociating float math.
EIGHT_WHISPER_CLONES float exp_shifted_row(float* s, int64_t n, float scale) {
  constexpr int64_t L = 16;
  float m[L], acc[L] = {};
  std::fill_n(m, L, s[0]);
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int64_t l = 0; l < L; ++l) m[l] = std::max(m[l], s[j + l]);
  float mx = s[0];
  for (; j < n; ++j) mx = std::max(mx, s[j]);
  for (int64_t l = 0; l < L; ++l) mx = std::max(mx, m[l]);
  const float shift = mx * scale;
  for (j = 0; j + L <= n; j += L)
    for (int64_t l = 0; l < L; ++l) {
      s[j + l] = exp_poly(s[j + l] * scale - shift);
      acc[l] += s[j + l];
    }
  float sum = 0;
  for (; j < n; ++j) {
    s[j] = exp_poly(s[j] * scale - shift);
    sum += s[j];
  }
  for (int64_t l = 0; l < L; ++l) sum += acc[l];
  return sum;
}

EIGHT_WHISPER_CLONES void gelu_row(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float z = std::fabs(v) * 0.70710678118654752f;  // |v| / √2
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float erf_abs = 1.0f - p * t * exp_poly(-z * z);
    x[i] = 0.5f * v * (1.0f + std::copysign(erf_abs, v));
  }
}

}  // namespace eight::whisper

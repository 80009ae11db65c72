#pragma once
// Helpers for the kernel tests: random weights of any type, the ISAs this machine can run, and
// the normalized mean squared error used for tolerances.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/quant.h"
#include "core/half.h"
#include "core/tensor.h"
#include "test_util.h"

namespace eight::testing {

// A new f32 tensor of `shape` holding `v`.
inline Tensor filled(const Dims& shape, const std::vector<float>& v) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

inline std::vector<ISA> available_isas() {
  std::vector<ISA> out;
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_supported(static_cast<ISA>(i))) out.push_back(static_cast<ISA>(i));
  return out;
}

// sum (a - b)^2 / sum b^2 (0 when both are zero).
inline double nmse(const float* a, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

// n_rows x k random weights of `type` (contiguous rows). Quantizable types are quantized from
// random floats (with per-row magnitudes varying over 100x); the IQ types get random codes and
// scales, which exercises every table entry.
inline Tensor random_weights(DType type, int64_t n_rows, int64_t k) {
  Tensor w = Tensor::empty({n_rows, k}, type);
  std::vector<float> src = random_floats(static_cast<size_t>(n_rows * k));
  std::uniform_real_distribution<float> mag(0.05f, 5.f);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float s = mag(rng());
    for (int64_t t = 0; t < k; ++t) src[r * k + t] *= s;
  }
  if (type == DType::F32) {
    std::memcpy(w.raw(), src.data(), src.size() * 4);
  } else if (type == DType::F16 || type == DType::BF16) {
    auto* h = w.data<uint16_t>();
    for (size_t i = 0; i < src.size(); ++i)
      h[i] = type == DType::F16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
  } else if (type == DType::F8_E4M3 || type == DType::F8_E5M2) {
    // Random finite codes (every exponent, subnormals and zeros included); no NaN or infinity.
    auto* b = w.data<uint8_t>();
    std::uniform_int_distribution<int> byte(0, 255);
    for (size_t i = 0; i < src.size(); ++i) {
      int c;
      do c = byte(rng());
      while (type == DType::F8_E4M3 ? (c & 0x7f) == 0x7f : (c & 0x7c) == 0x7c);
      b[i] = static_cast<uint8_t>(c);
    }
  } else if (can_quantize(type)) {
    quantize_rows(type, src.data(), w.raw(), n_rows, k);
  } else {
    // IQ4_NL / IQ4_XS: random bytes, then a sane fp16 scale d (the first field of both blocks).
    auto* p = static_cast<uint8_t*>(w.raw());
    const size_t bytes = dtype_row_bytes(type, k) * static_cast<size_t>(n_rows);
    std::uniform_int_distribution<int> byte(0, 255);
    for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(byte(rng()));
    std::uniform_real_distribution<float> d(0.001f, 0.02f);
    const size_t bb = dtype_block_bytes(type);
    for (size_t off = 0; off < bytes; off += bb) {
      const uint16_t h = fp32_to_fp16(d(rng()));
      std::memcpy(p + off, &h, 2);
    }
  }
  return w;
}

inline std::vector<DType> matmul_weight_types() {
  return {DType::F32,  DType::F16,  DType::BF16, DType::F8_E4M3, DType::F8_E5M2, DType::Q4_0,
          DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,    DType::Q2_K,    DType::Q3_K,
          DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL,  DType::IQ4_XS};
}

// Weight types the CPU expands to f32 (no int8 path): exact up to float rounding.
inline bool float_weight_type(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F8_E4M3 ||
         t == DType::F8_E5M2;
}

}  // namespace eight::testing

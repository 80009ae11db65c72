#pragma once
// The CPU kernel table. Every kernel exists once per ISA (isa/*.cpp is compiled four times, see
// cmake/layers.cmake); each copy fills a CpuKernels with its own functions, and dispatch.cpp picks
// the table for active_isa() once. Tests call kernels_for(ISA) to run every set on one machine.
//
// Kernels take raw pointers and sizes that the ops layer has already checked; they do not
// validate shapes again.
#include <cstddef>
#include <cstdint>

#include "core/cpu_features.h"
#include "core/dtype.h"

namespace eight {
class ThreadPool;
}

namespace eight::cpu {

// y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]).
// x: f32 rows of k, row i at x + i * ldx (elements). w: n rows of k elements of w_type, row j at
// (const char*)w + j * ldw (bytes). y: f32, row i at y + i * ldy. bias: f32 [n] or nullptr.
struct MatmulProblem {
  int64_t m = 0, n = 0, k = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  DType w_type = DType::F32;
  const void* w = nullptr;
  size_t ldw = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  const float* bias = nullptr;
};

struct CpuKernels {
  ISA isa = ISA::Generic;
  // Any weight type in matmul_weight_types(). Results do not depend on the pool's thread count.
  void (*matmul)(const MatmulProblem& p, ThreadPool& pool) = nullptr;
  // out[0..n) = the values of one weight row (the decoders the kernels use, exposed for tests and
  // for get_rows).
  void (*dequantize_row)(DType type, const void* src, float* out, int64_t n) = nullptr;
  // sum of x[0..n): a streaming read at full vector width (the bandwidth probe of the benchmark).
  float (*sum)(const float* x, int64_t n) = nullptr;
};

// Weight types matmul accepts: F32, F16, BF16, F8_E4M3, F8_E5M2, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
bool matmul_weight_type_supported(DType type);

// The table for an ISA (Error when the CPU cannot run it), and the one for active_isa().
const CpuKernels& kernels_for(ISA isa);
const CpuKernels& kernels();

// Plain scalar twin of CpuKernels::matmul: dequantizes each weight row with the reference decoder
// (backend/cpu/quant.h) and accumulates in double. Single-threaded; for tests.
void matmul_reference(const MatmulProblem& p);

}  // namespace eight::cpu

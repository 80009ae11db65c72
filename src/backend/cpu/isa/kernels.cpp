// This ISA's kernel table (compiled once per ISA; see kernels.h).
#include "backend/cpu/kernels.h"
#include "backend/cpu/isa/matmul_float.h"
#include "backend/cpu/isa/matmul_q8.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

namespace {

#if defined(EIGHT_ISA_avx512)
constexpr ISA kIsa = ISA::AVX512;
#elif defined(EIGHT_ISA_avx2vnni)
constexpr ISA kIsa = ISA::AVX2VNNI;
#elif defined(EIGHT_ISA_avx2)
constexpr ISA kIsa = ISA::AVX2;
#else
constexpr ISA kIsa = ISA::Generic;
#endif

void matmul(const MatmulProblem& p, ThreadPool& pool) {
  if (matmul_q8_supports(p)) {
    matmul_q8(p, pool);
    return;
  }
  matmul_float(p, pool);
}

}  // namespace

const CpuKernels& table() {
  static const CpuKernels k{
      .isa = kIsa,
      .matmul = matmul,
      .dequantize_row = dequantize_row_f32,
      .sum = sum_f32,
  };
  return k;
}

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

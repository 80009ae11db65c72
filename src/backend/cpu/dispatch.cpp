#include "backend/cpu/kernels.h"

#include "backend/cpu/nn_kernels.h"

#include "core/error.h"

namespace eight::cpu {

// Each ISA copy of isa/kernels.cpp defines its table in its own namespace.
namespace isa_generic {
const CpuKernels& table();
const NNKernels& nn_table();
}  // namespace isa_generic
namespace isa_avx2 {
const CpuKernels& table();
const NNKernels& nn_table();
}  // namespace isa_avx2
namespace isa_avx2vnni {
const CpuKernels& table();
const NNKernels& nn_table();
}  // namespace isa_avx2vnni
namespace isa_avx512 {
const CpuKernels& table();
const NNKernels& nn_table();
}  // namespace isa_avx512

bool matmul_weight_type_supported(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::F8_E5M2:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_NL:
    case DType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

const CpuKernels& kernels_for(ISA isa) {
  check(isa_supported(isa), "[cpu] kernels for ", isa_name(isa),
        " requested but this CPU cannot run them (best: ", isa_name(best_isa()), ")");
  switch (isa) {
    case ISA::AVX512:
      return isa_avx512::table();
    case ISA::AVX2:
      return isa_avx2::table();
    case ISA::AVX2VNNI:
      return isa_avx2vnni::table();
    case ISA::Generic:
      break;
  }
  return isa_generic::table();
}

const NNKernels& nn_kernels_for(ISA isa) {
  kernels_for(isa);  // the same check
  switch (isa) {
    case ISA::AVX512:
      return isa_avx512::nn_table();
    case ISA::AVX2:
      return isa_avx2::nn_table();
    case ISA::AVX2VNNI:
      return isa_avx2vnni::nn_table();
    case ISA::Generic:
      break;
  }
  return isa_generic::nn_table();
}

const NNKernels& nn_kernels() {
  static const NNKernels& k = nn_kernels_for(active_isa());
  return k;
}

const CpuKernels& kernels() {
  static const CpuKernels& k = kernels_for(active_isa());
  return k;
}

}  // namespace eight::cpu

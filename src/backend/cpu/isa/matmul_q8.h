#pragma once
// Integer matmul path: activations are quantized on the fly to int8 and multiplied with the
// weights' int8 codes for every batch size: vpdpbusd on AVX-512 VNNI and AVX-VNNI, vpmaddubsw on
// AVX2. The generic build takes the float path (matmul_float.h).
#include "backend/cpu/kernels.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

// Whether matmul_q8 handles this problem (weight type and ISA).
bool matmul_q8_supports(const MatmulProblem& p);
void matmul_q8(const MatmulProblem& p, ThreadPool& pool);

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#pragma once
// Decode-path kernels (AVX-512 VNNI in matvec_q8.cpp, AVX2 in matvec_avx2.cpp; the generic build
// has none): a few x rows times every weight row, streaming the weights once. Each supported type
// has a fused kernel that decodes a block in registers and multiplies it with x quantized to
// int8 (blocks of 32 for the 32-element types, of 256 for the K-quants).
#include "backend/cpu/kernels.h"

namespace eight::cpu::EIGHT_ISA_NAMESPACE {

// Up to this many x rows take the decode path (each weight row is then reused from L1).
inline constexpr int64_t kMatvecMaxRows = 8;

bool matvec_q8_supports(DType w_type);
void matvec_q8(const MatmulProblem& p, ThreadPool& pool);

// unpack_row (isa/unpack.h) with SIMD decoders for the types that have one (AVX2 and AVX-512
// builds: the batched int8 path is its only user).
void unpack_row_fast(DType t, const void* src, int64_t k, int8_t* q, float* scale, float* bias);

}  // namespace eight::cpu::EIGHT_ISA_NAMESPACE

#pragma once
// Reference (scalar, portable, exact) conversion of rows between float32 and the ggml block types
// laid out in core/quant_blocks.h. These are the `*_reference` twins the SIMD dot products
// are tested against, the activation quantizer (Q8_0 / Q8_K) and the model quantizer's engine.
//
// A row is n contiguous elements; n must be a multiple of the type's block size (Error otherwise).
// Rows are independent, so quantize_rows splits them over a thread pool with identical results
// for any thread count.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace eight {

class ThreadPool;

// Types dequantize_row accepts: F32, F16, BF16, F8_E4M3, F8_E5M2, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS.
bool can_dequantize(DType type);
// Types quantize_row accepts: the above minus the IQ types.
bool can_quantize(DType type);

// dst[0..n) = the values src encodes. Bit-exact with the GGUF reference decoder (gguf-py).
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// Encodes src[0..n) into dtype_row_bytes(type, n) bytes at dst. The K-quants search per-sub-block
// scales (and mins) by weighted least squares; Q8_K also fills the per-16 sums.
void quantize_row(DType type, const float* src, void* dst, int64_t n);

// quantize_row over n_rows rows of n_per_row floats (src row-major, dst rows packed). Runs on
// `pool` when given (nullptr: the calling thread). Returns the bytes written.
size_t quantize_rows(DType type, const float* src, void* dst, int64_t n_rows, int64_t n_per_row,
                     ThreadPool* pool = nullptr);

// dequantize_row over n_rows packed rows; same threading as quantize_rows.
void dequantize_rows(DType type, const void* src, float* dst, int64_t n_rows, int64_t n_per_row,
                     ThreadPool* pool = nullptr);

}  // namespace eight

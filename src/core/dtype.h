#pragma once
// The dtype table: every ggml/GGUF tensor type id with its name, block size and bytes per block.
// Ids are the on-disk `ggml_type` values, so a DType converts to and from GGUF without a map.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace eight {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  // Types eight reads from other formats (safetensors) that GGUF has no id for: internal ids from
  // kFirstInternalId on, never written to GGUF and never accepted from a GGUF file.
  F8_E4M3 = 1000,  // float8 e4m3fn: bias 7, no infinities, 0x7f/0xff NaN
  F8_E5M2 = 1001,  // float8 e5m2: the top byte of an IEEE half
};

inline constexpr uint32_t kFirstInternalId = 1000;
inline bool dtype_is_internal(DType t) {
  return static_cast<uint32_t>(t) >= kFirstInternalId;
}

struct DTypeInfo {
  DType type;
  std::string_view name;  // as ggml spells it: "f32", "q4_K", "iq4_nl"
  int64_t block_size;     // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
  bool quantized;         // block-quantized (rows must be whole blocks)
  bool computable;        // eight has kernels for it (the rest can only be inspected)
};

// Info for a known type; throws Error for an id that is not a ggml type.
const DTypeInfo& dtype_info(DType t);
// Lookup by raw ggml id (from a GGUF file); nullopt when the id is unknown, a removed ggml type or
// one of eight's internal ids.
std::optional<DType> dtype_from_id(uint32_t id);
// Lookup by name, case-insensitive ("Q4_K", "q4_k", "bf16").
std::optional<DType> dtype_from_name(std::string_view name);
// All known types, in id order.
const DTypeInfo* dtype_table(size_t* count);

inline std::string_view dtype_name(DType t) {
  return dtype_info(t).name;
}
inline int64_t dtype_block_size(DType t) {
  return dtype_info(t).block_size;
}
inline size_t dtype_block_bytes(DType t) {
  return dtype_info(t).block_bytes;
}
inline bool dtype_is_quantized(DType t) {
  return dtype_info(t).quantized;
}

// Bytes used by n contiguous elements; n must be a multiple of the block size (throws otherwise).
size_t dtype_row_bytes(DType t, int64_t n);

}  // namespace eight

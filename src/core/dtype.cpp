#include "core/dtype.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "core/error.h"

namespace eight {
namespace {

// Block layouts from ggml-common.h (see ../shared/reference/models.md §0).
constexpr DTypeInfo kTable[] = {
    {DType::F32, "f32", 1, 4, false, true},
    {DType::F16, "f16", 1, 2, false, true},
    {DType::Q4_0, "q4_0", 32, 18, true, true},
    {DType::Q4_1, "q4_1", 32, 20, true, true},
    {DType::Q5_0, "q5_0", 32, 22, true, true},
    {DType::Q5_1, "q5_1", 32, 24, true, true},
    {DType::Q8_0, "q8_0", 32, 34, true, true},
    {DType::Q8_1, "q8_1", 32, 36, true, false},
    {DType::Q2_K, "q2_K", 256, 84, true, true},
    {DType::Q3_K, "q3_K", 256, 110, true, true},
    {DType::Q4_K, "q4_K", 256, 144, true, true},
    {DType::Q5_K, "q5_K", 256, 176, true, true},
    {DType::Q6_K, "q6_K", 256, 210, true, true},
    {DType::Q8_K, "q8_K", 256, 292, true, true},
    {DType::IQ2_XXS, "iq2_xxs", 256, 66, true, false},
    {DType::IQ2_XS, "iq2_xs", 256, 74, true, false},
    {DType::IQ3_XXS, "iq3_xxs", 256, 98, true, false},
    {DType::IQ1_S, "iq1_s", 256, 50, true, false},
    {DType::IQ4_NL, "iq4_nl", 32, 18, true, true},
    {DType::IQ3_S, "iq3_s", 256, 110, true, false},
    {DType::IQ2_S, "iq2_s", 256, 82, true, false},
    {DType::IQ4_XS, "iq4_xs", 256, 136, true, true},
    {DType::I8, "i8", 1, 1, false, false},
    {DType::I16, "i16", 1, 2, false, false},
    {DType::I32, "i32", 1, 4, false, true},
    {DType::I64, "i64", 1, 8, false, false},
    {DType::F64, "f64", 1, 8, false, false},
    {DType::IQ1_M, "iq1_m", 256, 56, true, false},
    {DType::BF16, "bf16", 1, 2, false, true},
    {DType::TQ1_0, "tq1_0", 256, 54, true, false},
    {DType::TQ2_0, "tq2_0", 256, 66, true, false},
    {DType::MXFP4, "mxfp4", 32, 17, true, false},
    {DType::F8_E4M3, "f8_e4m3", 1, 1, false, true},
    {DType::F8_E5M2, "f8_e5m2", 1, 1, false, true},
};

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const DTypeInfo* dtype_table(size_t* count) {
  *count = std::size(kTable);
  return kTable;
}

std::optional<DType> dtype_from_id(uint32_t id) {
  if (id >= kFirstInternalId) return std::nullopt;
  for (const auto& e : kTable)
    if (static_cast<uint32_t>(e.type) == id) return e.type;
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType t) {
  for (const auto& e : kTable)
    if (e.type == t) return e;
  fail("[dtype] unknown type id ", static_cast<uint32_t>(t));
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kTable)
    if (iequal(e.name, name)) return e.type;
  return std::nullopt;
}

size_t dtype_row_bytes(DType t, int64_t n) {
  const auto& info = dtype_info(t);
  check(n >= 0 && n % info.block_size == 0, "[dtype] ", n, " elements of ", info.name,
        " are not a whole number of ", info.block_size, "-element blocks");
  return static_cast<size_t>(n / info.block_size) * info.block_bytes;
}

}  // namespace eight

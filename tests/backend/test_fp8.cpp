// float8 weights (F8_E4M3 = torch.float8_e4m3fn, F8_E5M2): every one of the 256 codes decodes
// exactly to the float64 numpy reference (tests/reference/fp8_ref.py, checked there against
// torch's casts) in the reference decoder and every ISA's row decoder, safetensors files with
// these dtypes read as such, and GGUF neither accepts nor writes the internal ids.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "backend/cpu/kernels.h"
#include "backend/cpu/quant.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "formats/npy.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "kernel_test_util.h"
#include "test_util.h"

namespace eight {
namespace {

Tensor reference(DType t) {
  return npy::read(testing::source_dir() + "/tests/data/fp8/" +
                   (t == DType::F8_E4M3 ? "e4m3fn.npy" : "e5m2.npy"));
}

Tensor all_codes(DType t) {
  Tensor codes = Tensor::empty({256}, t);
  for (int i = 0; i < 256; ++i) codes.data<uint8_t>()[i] = static_cast<uint8_t>(i);
  return codes;
}

// Same value, or NaN on both sides (bit patterns of zeros included: -0 stays -0).
void expect_same(const float* got, const float* ref, const std::string& what) {
  for (int i = 0; i < 256; ++i) {
    if (std::isnan(ref[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " code " << i;
    } else {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &ref[i], 4);
      EXPECT_EQ(a, b) << what << " code " << i << ": " << got[i] << " vs " << ref[i];
    }
  }
}

class Fp8 : public ::testing::TestWithParam<DType> {};

TEST_P(Fp8, EveryCodeDecodesExactly) {
  const DType t = GetParam();
  const Tensor ref = reference(t), codes = all_codes(t);
  ASSERT_EQ(ref.numel(), 256);
  float got[256];
  dequantize_row(t, codes.raw(), got, 256);
  expect_same(got, ref.data<float>(), "reference decoder");
  for (ISA isa : testing::available_isas()) {
    std::fill_n(got, 256, 0.f);
    cpu::kernels_for(isa).dequantize_row(t, codes.raw(), got, 256);
    expect_same(got, ref.data<float>(), isa_name(isa));
  }
  EXPECT_TRUE(cpu::matmul_weight_type_supported(t));
  EXPECT_FALSE(can_quantize(t));
}

TEST_P(Fp8, SafetensorsReadsTheDtype) {
  const DType t = GetParam();
  const std::string name = t == DType::F8_E4M3 ? "F8_E4M3" : "F8_E5M2";
  const auto path = std::filesystem::temp_directory_path() / cat("eight_fp8_", name, ".st");
  safetensors::write(path.string(), {{"w", name, all_codes(t).reshape({16, 16})}});
  const auto f = safetensors::File::open(path.string());
  const Tensor w = f.tensor("w");
  EXPECT_EQ(w.dtype(), t);
  EXPECT_EQ(w.shape(), (Dims{16, 16}));
  float got[256];
  dequantize_row(t, w.raw(), got, 256);
  expect_same(got, reference(t).data<float>(), "from the file");
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(Types, Fp8, ::testing::Values(DType::F8_E4M3, DType::F8_E5M2),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Fp8Ids, InternalIdsStayOutOfGguf) {
  EXPECT_FALSE(dtype_from_id(1000).has_value());
  EXPECT_FALSE(dtype_from_id(1001).has_value());
  EXPECT_EQ(dtype_from_name("f8_e4m3"), DType::F8_E4M3);
  gguf::Writer w;
  EXPECT_THROW(w.add_tensor("x", all_codes(DType::F8_E4M3)), Error);
}

}  // namespace
}  // namespace eight

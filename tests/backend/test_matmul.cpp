// matmul on every ISA and weight type against the reference (backend/cpu/matmul_reference.cpp),
// with fresh random inputs, odd shapes, strided views and several thread counts.
//
// Error measure: sum (y - ref)^2 / sum |x_i|^2 |w_j|^2 / k, i.e. the squared error relative to
// the expected square of a dot product of independent vectors. Plain NMSE is unstable when n = 1
// and a reference value happens to be near zero.
// Tolerances (against the double-precision reference on the same weights):
//   float path (F32/F16/BF16 everywhere; every type on generic): 1e-10 (seen ~1e-13)
//   int8 path (quantized weights on AVX-512, AVX2-VNNI and AVX2): 4e-4; x is quantized to int8 per
//     block (32 values; 256 in the K-quant decode kernels; d = amax / 127), which gives ~1e-5 on
//     average; with n = m = 1 the measure is one chi-square sample, hence the margin.
#include <gtest/gtest.h>

#include "backend/cpu/kernels.h"
#include "kernel_test_util.h"
#include "ops/matmul.h"

namespace eight {
namespace {

using testing::available_isas;
using testing::nmse;
using testing::random_floats;
using testing::random_weights;
using testing::rng;

// The int8 paths (every SIMD table, every batch) quantize x; the generic table is float
// throughout.
double tolerance(ISA isa, DType type) {
  return isa != ISA::Generic && !testing::float_weight_type(type) ? 4e-4 : 1e-10;
}

int64_t random_k(DType type) {
  const int64_t bs = dtype_block_size(type) == 1 ? 1 : dtype_block_size(type);
  const int64_t unit = bs == 1 ? 1 : bs;
  const int64_t max_units = (bs == 1 ? 1100 : 2048) / unit;
  std::uniform_int_distribution<int64_t> u(1, max_units);
  int64_t k = u(rng()) * unit;
  if (bs == 1 && k % 2 == 0) k += 1;  // odd column counts for the float types
  return k;
}

double relative_error(const cpu::MatmulProblem& p, const float* got, const float* ref) {
  std::vector<double> wn(static_cast<size_t>(p.n));
  std::vector<float> row(static_cast<size_t>(p.k));
  for (int64_t j = 0; j < p.n; ++j) {
    dequantize_row(p.w_type, static_cast<const char*>(p.w) + j * p.ldw, row.data(), p.k);
    for (float v : row) wn[j] += static_cast<double>(v) * v;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    double xn = 0;
    for (int64_t t = 0; t < p.k; ++t)
      xn += static_cast<double>(p.x[i * p.ldx + t]) * p.x[i * p.ldx + t];
    for (int64_t j = 0; j < p.n; ++j) {
      const double d = static_cast<double>(got[i * p.n + j]) - ref[i * p.n + j];
      num += d * d;
      den += xn * wn[j] / static_cast<double>(p.k);
    }
  }
  return den > 0 ? num / den : num;
}

struct Case {
  int64_t m, n, k;
};

void run_case(ISA isa, DType type, Case c, ThreadPool& pool) {
  SCOPED_TRACE(cat(isa_name(isa), " ", dtype_name(type), " m=", c.m, " n=", c.n, " k=", c.k));
  // A strided x (rows of a wider buffer), weight rows taken from the middle of a bigger matrix,
  // and a strided y, to exercise every leading dimension.
  Tensor xbuf = Tensor::empty({c.m, c.k + 7}, DType::F32);
  const auto xv = random_floats(static_cast<size_t>(c.m * (c.k + 7)));
  std::memcpy(xbuf.raw(), xv.data(), xv.size() * 4);
  const Tensor x = xbuf.slice(1, 3, 3 + c.k);
  const Tensor wbig = random_weights(type, c.n + 3, c.k);
  const Tensor w = wbig.slice(0, 2, 2 + c.n);
  const auto bv = random_floats(static_cast<size_t>(c.n));
  Tensor bias = Tensor::empty({c.n}, DType::F32);
  std::memcpy(bias.raw(), bv.data(), bv.size() * 4);
  Tensor ybuf = Tensor::zeros({c.m, c.n + 5}, DType::F32);
  Tensor y = ybuf.slice(1, 1, 1 + c.n);

  cpu::MatmulProblem p{.m = c.m,
                       .n = c.n,
                       .k = c.k,
                       .x = x.data<float>(),
                       .ldx = c.k + 7,
                       .w_type = type,
                       .w = w.raw(),
                       .ldw = w.stride_bytes(0),
                       .y = y.data<float>(),
                       .ldy = c.n + 5,
                       .bias = bias.data<float>()};
  cpu::kernels_for(isa).matmul(p, pool);
  std::vector<float> got(static_cast<size_t>(c.m * c.n)), ref(got.size());
  for (int64_t i = 0; i < c.m; ++i)
    std::memcpy(&got[i * c.n], y.data<float>() + i * (c.n + 5), c.n * 4);
  cpu::MatmulProblem pr = p;
  pr.y = ref.data();
  pr.ldy = c.n;
  cpu::matmul_reference(pr);
  const double e = relative_error(p, got.data(), ref.data());
  EXPECT_LT(e, tolerance(isa, type)) << "nmse " << e;
  if (std::getenv("EIGHT_TEST_VERBOSE"))
    std::fprintf(stderr, "%s %s m=%lld n=%lld k=%lld nmse %.3g\n", isa_name(isa),
                 std::string(dtype_name(type)).c_str(), static_cast<long long>(c.m),
                 static_cast<long long>(c.n), static_cast<long long>(c.k), e);
  // Untouched padding around y stays zero.
  for (int64_t i = 0; i < c.m; ++i) {
    EXPECT_EQ(ybuf.data<float>()[i * (c.n + 5)], 0.f);
    EXPECT_EQ(ybuf.data<float>()[i * (c.n + 5) + c.n + 1], 0.f);
  }
  // The same problem on a single thread gives bit-identical results.
  ThreadPool one(1);
  std::vector<float> again(got.size());
  cpu::MatmulProblem p1 = p;
  p1.y = again.data();
  p1.ldy = c.n;
  cpu::kernels_for(isa).matmul(p1, one);
  EXPECT_EQ(0, std::memcmp(again.data(), got.data(), got.size() * 4)) << "thread-count dependent";
}

// y = x w^T for contiguous x (rows of w's k values) and y.
cpu::MatmulProblem dense_problem(const std::vector<float>& x, const Tensor& w, float* y) {
  const int64_t n = w.shape()[0], k = w.shape()[1];
  return {.m = static_cast<int64_t>(x.size()) / k,
          .n = n,
          .k = k,
          .x = x.data(),
          .ldx = k,
          .w_type = w.dtype(),
          .w = w.raw(),
          .ldw = w.stride_bytes(0),
          .y = y,
          .ldy = n};
}

// x w^T on every table the CPU runs has plain NMSE below bound against the reference.
void expect_every_table_near_reference(const std::vector<float>& x, const Tensor& w, double bound,
                                       const char* what) {
  std::vector<float> got(x.size() / static_cast<size_t>(w.shape()[1]) *
                         static_cast<size_t>(w.shape()[0])),
      ref(got.size());
  cpu::MatmulProblem p = dense_problem(x, w, ref.data());
  cpu::matmul_reference(p);
  p.y = got.data();
  ThreadPool pool(2);
  for (ISA isa : available_isas()) {
    cpu::kernels_for(isa).matmul(p, pool);
    const double e = nmse(got.data(), ref.data(), got.size());
    if (std::getenv("EIGHT_TEST_VERBOSE"))
      std::fprintf(stderr, "%s %s %s nmse %.3g\n", what, isa_name(isa),
                   std::string(dtype_name(w.dtype())).c_str(), e);
    EXPECT_LT(e, bound) << what << " " << isa_name(isa) << " " << dtype_name(w.dtype());
  }
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, MatchesReferenceOnEveryISA) {
  const DType type = GetParam();
  ThreadPool pool(3);
  const int64_t ms[] = {1, 2, 3, 7, 8, 31, 33, 128};
  const int64_t ns[] = {1, 31, 33, 257};
  for (ISA isa : available_isas()) {
    for (int64_t m : ms) {
      const int64_t n = ns[std::uniform_int_distribution<int>(0, 3)(rng())];
      run_case(isa, type, {m, n, random_k(type)}, pool);
    }
    // The largest k and a wide n once per ISA.
    run_case(isa, type, {5, 33, 4096}, pool);
    run_case(isa, type, {1, 257, 4096}, pool);
    // Whole 256-element groups plus a tail of 32-blocks (kernels that take 8 blocks at a time).
    run_case(isa, type, {1, 33, dtype_block_size(type) == 256 ? 1024 : 864}, pool);
  }
}

// Real models' activations have a few outlier channels (the same ones in every token) far larger
// than the rest. An int8 x block holding one keeps only a few levels for its other values, so the
// batched path quantizes x in blocks of 32 (as the decode kernels of the 32-element types do):
// here one channel in 256 is 64x the others (x uniform in [-1, 1] otherwise). Plain NMSE against
// the reference, measured on AVX-512: 1.1e-4-1.8e-4 with 32-blocks, 1.0e-3-1.7e-3 with the
// 256-blocks the batched path used before; the float paths ~4e-13.
TEST_P(MatmulTest, OutlierActivationsKeepPrecisionInBatches) {
  const DType type = GetParam();
  const int64_t m = 33, n = 37, k = 1024;
  std::vector<float> x = random_floats(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 100; c < k; c += 256) x[i * k + c] *= 64.f;
  expect_every_table_near_reference(x, random_weights(type, n, k), 4e-4, "outliers");
}

// The batched int8 kernels of the SIMD tables (isa/matmul_q8.cpp: zmm with vpdpbusd, ymm with
// AVX-VNNI's vpdpbusd, ymm with vpmaddubsw) compute the same exact int32 group sums and the same
// float operations in the same order per output, so past the decode path (m > 8) they agree bit
// for bit: a wrong emulated dot product, offset correction or lane layout in one shows here even
// where it would hide under the reference tolerance.
TEST_P(MatmulTest, BatchedInt8TablesAgreeBitForBit) {
  const DType type = GetParam();
  if (testing::float_weight_type(type)) GTEST_SKIP() << "float";
  const int64_t m = 41, n = 13, k = dtype_block_size(type) == 256 ? 768 : 352;
  const std::vector<float> x = random_floats(static_cast<size_t>(m * k));
  const Tensor w = random_weights(type, n, k);
  const auto bv = random_floats(static_cast<size_t>(n));
  std::vector<float> first(static_cast<size_t>(m * n)), got(first.size());
  cpu::MatmulProblem p = dense_problem(x, w, first.data());
  p.bias = bv.data();
  ThreadPool pool(2);
  int tables = 0;
  for (ISA isa : available_isas()) {
    if (isa == ISA::Generic) continue;
    p.y = tables++ == 0 ? first.data() : got.data();
    cpu::kernels_for(isa).matmul(p, pool);
    if (tables > 1) {
      EXPECT_EQ(0, std::memcmp(got.data(), first.data(), got.size() * 4)) << isa_name(isa);
    }
  }
  if (tables < 2) GTEST_SKIP() << "fewer than two SIMD tables on this CPU";
}

// Codes at their extremes times x at +-127 in every position: the largest integer sums the tiles
// form. AVX2's vpmaddubsw saturates its int16 pair sums, and its tiles add two steps' pairs before
// widening (codes within +-32) or use |w| with w's sign (Q8_0, IQ4): any overflow there is far
// outside this bound. x is +-1 everywhere (quantized exactly), so the only error is float
// rounding: measured 0 to 1e-11 on every table; treating Q8_0 as a narrow type on AVX2 gives 2.0.
TEST_P(MatmulTest, ExtremeCodesDoNotSaturate) {
  const DType type = GetParam();
  if (testing::float_weight_type(type) || !can_quantize(type))
    GTEST_SKIP() << "not a quantized type with a quantizer";
  const int64_t m = 24, n = 4, k = 512;
  // Rows: all +1, all -1, and the two alternating patterns, for both x and w.
  auto pattern = [](int64_t row, int64_t col) {
    const float alt = col % 2 == 0 ? 1.f : -1.f;
    return row % 4 == 0 ? 1.f : row % 4 == 1 ? -1.f : row % 4 == 2 ? alt : -alt;
  };
  std::vector<float> x(static_cast<size_t>(m * k)), wf(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) x[i * k + c] = pattern(i, c);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < k; ++c) wf[j * k + c] = pattern(j, c);
  Tensor w = Tensor::empty({n, k}, type);
  quantize_rows(type, wf.data(), w.raw(), n, k);
  expect_every_table_near_reference(x, w, 1e-10, "extreme");
}

TEST_P(MatmulTest, DequantizeRowMatchesReferenceDecoder) {
  const DType type = GetParam();
  const int64_t k = dtype_block_size(type) == 256 ? 512 : 96;
  const Tensor w = random_weights(type, 1, k);
  std::vector<float> ref(static_cast<size_t>(k)), got(ref.size());
  dequantize_row(type, w.raw(), ref.data(), k);
  for (ISA isa : available_isas()) {
    cpu::kernels_for(isa).dequantize_row(type, w.raw(), got.data(), k);
    for (int64_t i = 0; i < k; ++i) ASSERT_EQ(got[i], ref[i]) << isa_name(isa) << " element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, MatmulTest,
                         ::testing::ValuesIn(testing::matmul_weight_types()),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(MatmulOp, ShapesDtypesAndBias) {
  ThreadPool pool(2);
  const Tensor w = random_weights(DType::Q4_K, 40, 256);
  Tensor x = Tensor::empty({2, 3, 256}, DType::F32);
  const auto xv = random_floats(2 * 3 * 256);
  std::memcpy(x.raw(), xv.data(), xv.size() * 4);
  Tensor b = Tensor::empty({40}, DType::F32);
  const auto bv = random_floats(40);
  std::memcpy(b.raw(), bv.data(), 160);
  const Tensor y = ops::matmul(x, w, pool, {.bias = &b});
  EXPECT_EQ(y.shape(), (Dims{2, 3, 40}));
  std::vector<float> ref(6 * 40);
  cpu::matmul_reference({.m = 6,
                         .n = 40,
                         .k = 256,
                         .x = x.data<float>(),
                         .ldx = 256,
                         .w_type = DType::Q4_K,
                         .w = w.raw(),
                         .ldw = w.stride_bytes(0),
                         .y = ref.data(),
                         .ldy = 40,
                         .bias = b.data<float>()});
  EXPECT_LT(nmse(y.data<float>(), ref.data(), ref.size()), 1e-4);
}

TEST(MatmulOp, RejectsBadArguments) {
  ThreadPool pool(1);
  const Tensor w = random_weights(DType::Q8_0, 8, 64);
  const Tensor x = Tensor::zeros({2, 64}, DType::F32);
  Tensor y = Tensor::zeros({2, 8}, DType::F32);
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected one containing: " << needle;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("[matmul]", 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  Tensor y_bad = Tensor::zeros({2, 9}, DType::F32);
  expect_error([&] { ops::matmul(x, w, y_bad, pool); }, "9");
  const Tensor x_bad = Tensor::zeros({2, 65}, DType::F32);
  expect_error([&] { ops::matmul(x_bad, w, y, pool); }, "65");
  const Tensor x_f16 = Tensor::zeros({2, 64}, DType::F16);
  expect_error([&] { ops::matmul(x_f16, w, y, pool); }, "f16");
  const Tensor xt = Tensor::zeros({64, 2}, DType::F32).transpose(0, 1);
  expect_error([&] { ops::matmul(xt, w, y, pool); }, "contiguous");
  const Tensor w_i32 = Tensor::zeros({8, 64}, DType::I32);
  expect_error([&] { ops::matmul(x, w_i32, y, pool); }, "i32");
  Tensor bias_bad = Tensor::zeros({7}, DType::F32);
  expect_error([&] { ops::matmul(x, w, y, pool, {.bias = &bias_bad}); }, "bias");
}

}  // namespace
}  // namespace eight

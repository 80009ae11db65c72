// Element-wise, normalization, softmax, rotary and attention kernels: every ISA against the
// double-precision *_reference twins (backend/cpu/nn_reference.cpp), fresh random inputs, odd
// sizes. Tolerances (max abs error relative to the largest |reference| in the row):
//   rms/layer norm, add/mul/scale, rope: 1e-5   (float rounding over a few ops)
//   softmax, activations, swiglu: 2e-5          (libm exp/erf/tanh in float; activations
//                                                relative to max(|ref|, 1) for tails)
//   attention f32/f16 KV: 2e-5; q8_0 KV: 2e-5  (the reference decodes the same q8_0 rows)
// The diffusion kernels are judged by NMSE (sum (got - ref)^2 / sum ref^2) against the twins:
//   group_norm (+ SiLU): 1e-11   upsample_nearest2x: exact
//   geglu: NMSE 1e-11 for n >= 31 and, like the activations, max error 2e-5 relative to
//   max(|ref|, 1) (a lone gate deep in GELU's tail rounds 1 + erf(x) to 0 in float)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/nn_kernels.h"
#include "backend/cpu/quant.h"
#include "kernel_test_util.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/get_rows.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/rope.h"
#include "ops/softmax.h"

namespace eight {
namespace {

using cpu::nn_kernels_for;
using testing::available_isas;
using testing::random_floats;
using testing::rng;

const int64_t kSizes[] = {1, 31, 33, 257, 4097};

// floor: the smallest error scale; activations of inputs far in a tail (GELU(-7) ~ 1e-11) are
// judged against the input magnitude, as float erf/exp round there.
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double tol,
                  const std::string& what, double floor = 0) {
  ASSERT_EQ(got.size(), ref.size());
  double scale = floor;
  for (float r : ref) scale = std::max(scale, static_cast<double>(std::fabs(r)));
  scale = std::max(scale, 1e-30);
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_LE(std::fabs(static_cast<double>(got[i]) - ref[i]) / scale, tol)
        << what << " element " << i << ": " << got[i] << " vs " << ref[i];
}

TEST(NNKernels, NormsEveryISA) {
  for (ISA isa : available_isas())
    for (int64_t n : kSizes) {
      const auto& k = nn_kernels_for(isa);
      const auto x = random_floats(n, -3, 3), w = random_floats(n), b = random_floats(n);
      std::vector<float> got(n), ref(n);
      const std::string what = cat(isa_name(isa), " n=", n);
      k.rms_norm(x.data(), w.data(), got.data(), n, 1e-6f);
      cpu::rms_norm_reference(x.data(), w.data(), ref.data(), n, 1e-6f);
      expect_close(got, ref, 1e-5, "rms_norm " + what);
      k.rms_norm(x.data(), nullptr, got.data(), n, 1e-5f);
      cpu::rms_norm_reference(x.data(), nullptr, ref.data(), n, 1e-5f);
      expect_close(got, ref, 1e-5, "rms_norm no weight " + what);
      k.layer_norm(x.data(), w.data(), b.data(), got.data(), n, 1e-5f);
      cpu::layer_norm_reference(x.data(), w.data(), b.data(), ref.data(), n, 1e-5f);
      expect_close(got, ref, 1e-5, "layer_norm " + what);
    }
}

TEST(NNKernels, SoftmaxActivationsBinaryEveryISA) {
  for (ISA isa : available_isas())
    for (int64_t n : kSizes) {
      const auto& k = nn_kernels_for(isa);
      const std::string what = cat(isa_name(isa), " n=", n);
      const auto x = random_floats(n, -8, 8), y2 = random_floats(n, -8, 8);
      auto mask = random_floats(n, -2, 0);
      for (int64_t i = 0; i < n; i += 3) mask[i] = -std::numeric_limits<float>::infinity();
      std::vector<float> got(n), ref(n);
      k.softmax(x.data(), nullptr, got.data(), n, 0.7f);
      cpu::softmax_reference(x.data(), nullptr, ref.data(), n, 0.7f);
      expect_close(got, ref, 2e-5, "softmax " + what);
      k.softmax(x.data(), mask.data(), got.data(), n, 1.3f);
      cpu::softmax_reference(x.data(), mask.data(), ref.data(), n, 1.3f);
      expect_close(got, ref, 2e-5, "softmax masked " + what);
      for (auto op : {cpu::UnaryOp::SiLU, cpu::UnaryOp::GELU, cpu::UnaryOp::GELUTanh,
                      cpu::UnaryOp::QuickGELU, cpu::UnaryOp::ReLU}) {
        k.unary(op, x.data(), got.data(), n);
        cpu::unary_reference(op, x.data(), ref.data(), n);
        expect_close(got, ref, 2e-5, cat("unary ", static_cast<int>(op), " ", what), 1.0);
      }
      k.swiglu(x.data(), y2.data(), got.data(), n);
      cpu::swiglu_reference(x.data(), y2.data(), ref.data(), n);
      expect_close(got, ref, 2e-5, "swiglu " + what, 1.0);
      for (auto op : {cpu::BinaryOp::Add, cpu::BinaryOp::Mul}) {
        k.binary(op, x.data(), y2.data(), got.data(), n);
        cpu::binary_reference(op, x.data(), y2.data(), ref.data(), n);
        expect_close(got, ref, 1e-6, "binary " + what);
      }
    }
}

TEST(NNKernels, SoftmaxFullyMaskedRowIsZero) {
  for (ISA isa : available_isas()) {
    const std::vector<float> x = {1, 2, 3};
    const std::vector<float> mask(3, -std::numeric_limits<float>::infinity());
    std::vector<float> y(3, 5.f);
    nn_kernels_for(isa).softmax(x.data(), mask.data(), y.data(), 3, 1.f);
    EXPECT_EQ(y, std::vector<float>(3, 0.f)) << isa_name(isa);
  }
}

TEST(NNKernels, RopeEveryISAAndStyle) {
  for (ISA isa : available_isas())
    for (auto style : {cpu::RopeStyle::Norm, cpu::RopeStyle::Neox})
      for (int64_t head_dim : {64, 128, 80}) {
        const int64_t n_dims = head_dim == 80 ? 32 : head_dim;  // partial rotation too
        const auto x = random_floats(head_dim);
        std::vector<float> c(n_dims / 2), s(n_dims / 2), got(head_dim), ref(head_dim);
        ops::rope_angles({.freq_base = 10000.f}, n_dims, 17, c.data(), s.data());
        nn_kernels_for(isa).rope(x.data(), got.data(), c.data(), s.data(), n_dims, head_dim, style);
        cpu::rope_reference(x.data(), ref.data(), c.data(), s.data(), n_dims, head_dim, style);
        expect_close(got, ref, 1e-5, cat("rope ", isa_name(isa), " ", head_dim));
      }
}

TEST(Rope, AnglesFollowTheFormulas) {
  const int64_t n = 64;
  std::vector<float> c(n / 2), s(n / 2);
  // Plain: theta_i = pos * base^(-2i/n).
  ops::rope_angles({.freq_base = 500000.f}, n, 123, c.data(), s.data());
  for (int64_t i = 0; i < n / 2; ++i) {
    const double th = 123 * std::pow(500000.0, -2.0 * i / n);
    EXPECT_NEAR(c[i], std::cos(th), 1e-6);
    EXPECT_NEAR(s[i], std::sin(th), 1e-6);
  }
  // Linear scaling by 4 at position 400 equals plain at position 100.
  std::vector<float> c2(n / 2), s2(n / 2);
  ops::rope_angles({.linear_factor = 4.f}, n, 400, c.data(), s.data());
  ops::rope_angles({}, n, 100, c2.data(), s2.data());
  for (int64_t i = 0; i < n / 2; ++i) EXPECT_NEAR(c[i], c2[i], 1e-5);
  // Llama 3.1: high-frequency pairs unchanged, low-frequency pairs divided by the factor.
  ops::rope_angles({.freq_base = 500000.f, .llama3 = ops::RopeLlama3{}}, n, 1000, c.data(),
                   s.data());
  EXPECT_NEAR(c[0], std::cos(1000.0), 1e-6);
  const double low = 1000 * std::pow(500000.0, -2.0 * (n / 2 - 1) / n) / 8;
  EXPECT_NEAR(s[n / 2 - 1], std::sin(low), 1e-6);
  // YaRN: the first pairs extrapolate (unchanged angle), the last interpolate (divided by the
  // factor), and cos/sin carry 1 + 0.1 ln(factor).
  ops::RopeParams yp{.freq_base = 10000.f,
                     .yarn = ops::RopeYarn{.factor = 4, .original_context = 4096}};
  ops::rope_angles(yp, n, 50, c.data(), s.data());
  const double m = 1 + 0.1 * std::log(4.0);
  EXPECT_NEAR(c[0], std::cos(50.0) * m, 1e-5);
  const double last = 50 * std::pow(10000.0, -2.0 * (n / 2 - 1) / n) / 4;
  EXPECT_NEAR(s[n / 2 - 1], std::sin(last) * m, 1e-5);
  // LongRoPE: long factors past the original context, attention factor from max_context.
  Tensor sf = Tensor::empty({n / 2}, DType::F32), lf = Tensor::empty({n / 2}, DType::F32);
  for (int64_t i = 0; i < n / 2; ++i) sf.data<float>()[i] = 1, lf.data<float>()[i] = 2 + i;
  ops::rope_angles({.longrope = ops::RopeLongRope{.short_factors = &sf,
                                                  .long_factors = &lf,
                                                  .original_context = 4096,
                                                  .max_context = 131072,
                                                  .context = 8192}},
                   n, 300, c.data(), s.data());
  const double af = std::sqrt(1 + std::log(32.0) / std::log(4096.0));
  EXPECT_NEAR(s[3], std::sin(300 * std::pow(10000.0, -6.0 / n) / 5) * af, 1e-5);
}

TEST(Rope, OpRotatesEveryHeadAtItsPosition) {
  const int64_t T = 3, H = 2, D = 8;
  Tensor x = Tensor::empty({T, H, D}, DType::F32), y = Tensor::empty({T, H, D}, DType::F32);
  const auto xv = random_floats(T * H * D);
  std::copy(xv.begin(), xv.end(), x.data<float>());
  Tensor pos = Tensor::empty({T}, DType::I32);
  for (int i = 0; i < T; ++i) pos.data<int32_t>()[i] = 5 * i + 1;
  ops::rope(x, y, pos, {.style = ops::RopeStyle::Neox});
  std::vector<float> c(D / 2), s(D / 2), ref(D);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      ops::rope_angles({}, D, 5 * t + 1, c.data(), s.data());
      cpu::rope_reference(x.data<float>() + (t * H + h) * D, ref.data(), c.data(), s.data(), D, D,
                          cpu::RopeStyle::Neox);
      for (int64_t e = 0; e < D; ++e)
        EXPECT_NEAR(y.data<float>()[(t * H + h) * D + e], ref[e], 1e-6);
    }
  Tensor bad_pos = Tensor::empty({T + 1}, DType::I32);
  EXPECT_THROW(ops::rope(x, y, bad_pos, {}), Error);
}

Tensor kv_tensor(DType type, int64_t t, int64_t heads, int64_t d) {
  const auto v = random_floats(t * heads * d);
  Tensor out = Tensor::empty({t, heads, d}, type);
  if (type == DType::F32)
    std::copy(v.begin(), v.end(), out.data<float>());
  else
    quantize_rows(type, v.data(), out.raw(), t * heads, d);
  return out;
}

TEST(Attention, EveryISAAndKVTypeMatchesReference) {
  ThreadPool pool(3);
  struct Shape {
    int64_t tq, tk, heads, kv_heads, d, pos0, window;
    bool causal;
  };
  const Shape shapes[] = {{1, 257, 8, 2, 64, 256, 0, true},
                          {7, 40, 4, 4, 32, 33, 0, true},
                          {5, 300, 6, 3, 64, 295, 100, true},
                          {3, 31, 2, 1, 32, 0, 0, false},
                          {33, 33, 4, 1, 128, 0, 0, true}};
  for (ISA isa : available_isas())
    for (DType kt : {DType::F32, DType::F16, DType::Q8_0})
      for (const auto& s : shapes) {
        const Tensor q = kv_tensor(DType::F32, s.tq, s.heads, s.d);
        const Tensor k = kv_tensor(kt, s.tk, s.kv_heads, s.d);
        const Tensor v = kv_tensor(kt, s.tk, s.kv_heads, s.d);
        cpu::AttentionProblem p{.tq = s.tq,
                                .tk = s.tk,
                                .n_head = s.heads,
                                .n_kv_head = s.kv_heads,
                                .d = s.d,
                                .q = q.data<float>(),
                                .ldq = s.heads * s.d,
                                .kv_type = kt,
                                .k = k.raw(),
                                .v = v.raw(),
                                .ldk = k.stride_bytes(0),
                                .ldv = v.stride_bytes(0),
                                .out = nullptr,
                                .ldo = s.heads * s.d,
                                .scale = 1 / std::sqrt(static_cast<float>(s.d)),
                                .causal = s.causal,
                                .pos0 = s.pos0,
                                .window = s.window};
        std::vector<float> got(s.tq * s.heads * s.d), ref(got.size());
        p.out = got.data();
        nn_kernels_for(isa).attention(p, pool);
        p.out = ref.data();
        cpu::attention_reference(p);
        expect_close(
            got, ref, 2e-5,
            cat("attention ", isa_name(isa), " ", dtype_name(kt), " tq=", s.tq, " tk=", s.tk));
      }
}

// The tiled kernel (long query blocks): odd query and key counts around the 64-wide blocks, head
// sizes of SDXL's UNet (64), other DiTs (80, 128), a VAE mid block (512) and one that is not a
// whole number of AVX-512 vectors (40); causal with an offset, a window, grouped heads, and a
// cross-attention shape (77 keys).
TEST(Attention, TiledEveryISAAndKVTypeMatchesReference) {
  ThreadPool pool(3);
  struct Shape {
    int64_t tq, tk, heads, kv_heads, d, pos0, window;
    bool causal;
  };
  const Shape shapes[] = {{97, 131, 2, 2, 64, 0, 0, false},  {33, 77, 3, 3, 80, 0, 0, false},
                          {65, 65, 2, 1, 128, 0, 0, true},   {70, 200, 4, 2, 64, 130, 0, true},
                          {129, 129, 2, 2, 40, 0, 50, true}, {65, 70, 1, 1, 512, 0, 0, false},
                          {1, 31, 2, 1, 64, 0, 0, false}};
  for (ISA isa : available_isas())
    for (DType kt : {DType::F32, DType::F16, DType::Q8_0})
      for (const auto& s : shapes) {
        if (kt == DType::Q8_0 && s.d % 32 != 0) continue;
        const Tensor q = kv_tensor(DType::F32, s.tq, s.heads, s.d);
        const Tensor k = kv_tensor(kt, s.tk, s.kv_heads, s.d);
        const Tensor v = kv_tensor(kt, s.tk, s.kv_heads, s.d);
        cpu::AttentionProblem p{.tq = s.tq,
                                .tk = s.tk,
                                .n_head = s.heads,
                                .n_kv_head = s.kv_heads,
                                .d = s.d,
                                .q = q.data<float>(),
                                .ldq = s.heads * s.d,
                                .kv_type = kt,
                                .k = k.raw(),
                                .v = v.raw(),
                                .ldk = k.stride_bytes(0),
                                .ldv = v.stride_bytes(0),
                                .out = nullptr,
                                .ldo = s.heads * s.d,
                                .scale = 1 / std::sqrt(static_cast<float>(s.d)),
                                .causal = s.causal,
                                .pos0 = s.pos0,
                                .window = s.window};
        std::vector<float> got(s.tq * s.heads * s.d), ref(got.size());
        p.out = got.data();
        nn_kernels_for(isa).attention_tiled(p, pool);
        p.out = ref.data();
        cpu::attention_reference(p);
        expect_close(got, ref, 2e-5,
                     cat("attention_tiled ", isa_name(isa), " ", dtype_name(kt), " tq=", s.tq,
                         " tk=", s.tk, " d=", s.d));
      }
}

TEST(Attention, TiledOpOnStridedRowsAndThreadCountIndependence) {
  // q and out as column slices of wider rows (the UNet's token rows hold every head).
  const Tensor qw = kv_tensor(DType::F32, 70, 6, 64), kw = kv_tensor(DType::F32, 90, 6, 64);
  const Tensor vw = kv_tensor(DType::F32, 90, 6, 64);
  const Tensor q = qw.slice(1, 1, 5), k = kw.slice(1, 2, 6), v = vw.slice(1, 0, 4);
  Tensor o1 = Tensor::zeros({70, 6, 64}, DType::F32), o2 = Tensor::zeros({70, 6, 64}, DType::F32);
  ThreadPool one(1), three(3);
  ops::attention(q, k, v, o1.slice(1, 2, 6), one, {.causal = false});
  ops::attention(q, k, v, o2.slice(1, 2, 6), three, {.causal = false});
  EXPECT_EQ(0, std::memcmp(o1.raw(), o2.raw(), o1.nbytes()));
  std::vector<float> ref(70 * 4 * 64);
  const cpu::AttentionProblem p{.tq = 70,
                                .tk = 90,
                                .n_head = 4,
                                .n_kv_head = 4,
                                .d = 64,
                                .q = q.data<float>(),
                                .ldq = q.stride(0),
                                .kv_type = DType::F32,
                                .k = k.raw(),
                                .v = v.raw(),
                                .ldk = k.stride_bytes(0),
                                .ldv = v.stride_bytes(0),
                                .out = ref.data(),
                                .ldo = 4 * 64,
                                .scale = 0.125f,
                                .causal = false};
  cpu::attention_reference(p);
  const Tensor got = o1.slice(1, 2, 6).contiguous();
  expect_close(std::vector<float>(got.data<float>(), got.data<float>() + got.numel()), ref, 2e-5,
               "ops::attention on strided rows");
}

TEST(Attention, OpChecksAndThreadCountIndependence) {
  const Tensor q = kv_tensor(DType::F32, 4, 4, 64), k = kv_tensor(DType::F16, 20, 2, 64),
               v = kv_tensor(DType::F16, 20, 2, 64);
  Tensor o1 = Tensor::empty({4, 4, 64}, DType::F32), o2 = Tensor::empty({4, 4, 64}, DType::F32);
  ThreadPool one(1), three(3);
  ops::attention(q, k, v, o1, one, {.pos0 = 16});
  ops::attention(q, k, v, o2, three, {.pos0 = 16});
  EXPECT_EQ(0, std::memcmp(o1.raw(), o2.raw(), o1.nbytes()));
  const Tensor k3 = kv_tensor(DType::F16, 20, 3, 64), v3 = kv_tensor(DType::F16, 20, 3, 64);
  try {
    ops::attention(q, k3, v3, o1, one);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[attention]"), std::string::npos) << e.what();
  }
}

// A head-major cache [heads, tk, d] viewed as [tk, heads, d] (Whisper's cross-attention K/V): the
// same numbers as the side-by-side layout, through the decode and the tiled kernels, for head
// sizes of one, two, four and eight AVX-512 vectors (register kernels) and 48 (the generic one).
TEST(Attention, HeadMajorCacheEqualsSideBySide) {
  ThreadPool pool(2);
  for (DType kt : {DType::F32, DType::F16})
    for (int64_t d : {16, 32, 48, 64, 128})
      for (int64_t tq : {1, 3, 40}) {
        const int64_t tk = 150, heads = 4;
        const Tensor q = kv_tensor(DType::F32, tq, heads, d);
        const Tensor k = kv_tensor(kt, tk, heads, d), v = kv_tensor(kt, tk, heads, d);
        const Tensor kh = k.permute({1, 0, 2}).contiguous(), vh = v.permute({1, 0, 2}).contiguous();
        Tensor o1 = Tensor::empty({tq, heads, d}, DType::F32);
        Tensor o2 = Tensor::empty({tq, heads, d}, DType::F32);
        ops::attention(q, k, v, o1, pool, {.causal = false});
        ops::attention(q, kh.permute({1, 0, 2}), vh.permute({1, 0, 2}), o2, pool,
                       {.causal = false});
        EXPECT_EQ(0, std::memcmp(o1.raw(), o2.raw(), o1.nbytes()))
            << dtype_name(kt) << " d=" << d << " tq=" << tq;
      }
  const Tensor q = kv_tensor(DType::F32, 1, 2, 32), k = kv_tensor(DType::Q8_0, 10, 2, 32);
  const Tensor kh = k.permute({1, 0, 2}).contiguous().permute({1, 0, 2});
  Tensor o = Tensor::empty({1, 2, 32}, DType::F32);
  EXPECT_THROW(ops::attention(q, kh, kh, o, pool), Error);  // q8_0 heads must sit side by side
}

TEST(Ops, FrontEndsWalkRowsAndBroadcast) {
  Tensor x = Tensor::empty({3, 5}, DType::F32), b = Tensor::empty({5}, DType::F32);
  const auto xv = random_floats(15), bv = random_floats(5);
  std::copy(xv.begin(), xv.end(), x.data<float>());
  std::copy(bv.begin(), bv.end(), b.data<float>());
  Tensor y = Tensor::empty({3, 5}, DType::F32);
  ops::add(x, b, y);
  for (int i = 0; i < 15; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], xv[i] + bv[i % 5]);
  ops::scale(x, 2.f, y);
  for (int i = 0; i < 15; ++i) EXPECT_FLOAT_EQ(y.data<float>()[i], 2 * xv[i]);
  ops::rms_norm(x, y, {.weight = &b});
  std::vector<float> ref(5);
  cpu::rms_norm_reference(xv.data() + 5, bv.data(), ref.data(), 5, 1e-6f);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y.data<float>()[5 + i], ref[i], 1e-6);
  ops::softmax(x, y, {.scale = 2.f, .mask = &b});
  cpu::softmax_reference(xv.data() + 10, bv.data(), ref.data(), 5, 2.f);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(y.data<float>()[10 + i], ref[i], 1e-6);
  Tensor wrong = Tensor::empty({4}, DType::F32);
  EXPECT_THROW(ops::add(x, wrong, y), Error);
  EXPECT_THROW(ops::rms_norm(x, y, {.weight = &wrong}), Error);
  // A strided view (every other row) works; a transposed one is refused.
  Tensor big = Tensor::empty({6, 5}, DType::F32);
  std::copy(xv.begin(), xv.end(), big.data<float>());
  ops::activation(ops::Activation::SiLU, big.slice(0, 0, 3), y);
  EXPECT_THROW(ops::activation(ops::Activation::SiLU, big.transpose(0, 1), big.transpose(0, 1)),
               Error);
  // group norm: each group normalized to mean 0, variance 1.
  Tensor g = Tensor::empty({4, 6}, DType::F32), gy = Tensor::empty({4, 6}, DType::F32);
  const auto gv = random_floats(24, -2, 5);
  std::copy(gv.begin(), gv.end(), g.data<float>());
  ops::group_norm(g, gy, {.groups = 2});
  for (int grp = 0; grp < 2; ++grp) {
    double mean = 0, var = 0;
    for (int i = 0; i < 12; ++i) mean += gy.data<float>()[grp * 12 + i];
    for (int i = 0; i < 12; ++i) var += std::pow(gy.data<float>()[grp * 12 + i] - mean / 12, 2);
    EXPECT_NEAR(mean / 12, 0, 1e-5);
    EXPECT_NEAR(var / 12, 1, 1e-3);
  }
}

TEST(NNKernels, DiffusionKernelsEveryISA) {
  double worst_gn = 0, worst_geglu = 0;
  for (ISA isa : available_isas()) {
    const auto& k = nn_kernels_for(isa);
    // GroupNorm groups: SDXL's 320 channels / 32 groups = 10 channels per group; odd sizes.
    for (auto [ch, sp] : {std::pair<int64_t, int64_t>{1, 1},
                          {3, 31},
                          {10, 33},
                          {2, 257},
                          {10, 64 * 64},
                          {7, 4097}}) {
      auto x = random_floats(ch * sp, -3, 5);
      const auto w = random_floats(ch), b = random_floats(ch);
      std::vector<float> got(x.size()), ref(x.size());
      for (bool silu : {false, true}) {
        const std::string what = cat(isa_name(isa), " ", ch, "x", sp, silu ? " silu" : "");
        k.group_norm(x.data(), w.data(), b.data(), got.data(), ch, sp, 1e-5f, silu);
        cpu::group_norm_reference(x.data(), w.data(), b.data(), ref.data(), ch, sp, 1e-5f, silu);
        const double e = testing::nmse(got.data(), ref.data(), got.size());
        EXPECT_LE(e, 1e-11) << "group_norm " << what;
        worst_gn = std::max(worst_gn, e);
        k.group_norm(x.data(), nullptr, nullptr, got.data(), ch, sp, 1e-6f, silu);
        cpu::group_norm_reference(x.data(), nullptr, nullptr, ref.data(), ch, sp, 1e-6f, silu);
        EXPECT_LE(testing::nmse(got.data(), ref.data(), got.size()), 1e-11)
            << "group_norm no affine " << what;
      }
    }
    for (int64_t n : kSizes) {
      const auto h = random_floats(n, -3, 3), g = random_floats(n, -6, 6);
      std::vector<float> got(n), ref(n);
      k.geglu(h.data(), g.data(), got.data(), n);
      cpu::geglu_reference(h.data(), g.data(), ref.data(), n);
      const std::string what = cat("geglu ", isa_name(isa), " n=", n);
      expect_close(got, ref, 2e-5, what, 1.0);
      if (n < 31) continue;
      const double e = testing::nmse(got.data(), ref.data(), got.size());
      EXPECT_LE(e, 1e-11) << what;
      worst_geglu = std::max(worst_geglu, e);
    }
    for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {3, 31}, {17, 33}, {64, 64}}) {
      const auto x = random_floats(h * w);
      std::vector<float> got(4 * h * w), ref(4 * h * w);
      k.upsample_nearest2x(x.data(), got.data(), h, w);
      cpu::upsample_nearest2x_reference(x.data(), ref.data(), h, w);
      EXPECT_EQ(got, ref) << "upsample_nearest2x " << isa_name(isa) << " " << h << "x" << w;
    }
  }
  std::printf("worst NMSE: group_norm %.3g, geglu %.3g\n", worst_gn, worst_geglu);
}

TEST(Ops, GroupNormBatchedGegluUpsampleFrontEnds) {
  // [N, C, H, W] = [2, 64, 5, 7] in 32 groups of 2 channels, with SiLU, on a pool: each sample
  // and group matches the reference on its own slice.
  const int64_t n = 2, c = 64, hw = 35, cg = 2;
  const auto xv = random_floats(n * c * hw, -2, 4), wv = random_floats(c), bv = random_floats(c);
  Tensor x = Tensor::empty({n, c, 5, 7}, DType::F32), y = Tensor::empty({n, c, 5, 7}, DType::F32);
  Tensor w = Tensor::empty({c}, DType::F32), b = Tensor::empty({c}, DType::F32);
  std::copy(xv.begin(), xv.end(), x.data<float>());
  std::copy(wv.begin(), wv.end(), w.data<float>());
  std::copy(bv.begin(), bv.end(), b.data<float>());
  ThreadPool pool(2);
  ops::group_norm(
      x, y,
      {.weight = &w, .bias = &b, .eps = 1e-6f, .silu = true, .channel_dim = 1, .pool = &pool});
  std::vector<float> ref(xv.size());
  for (int64_t t = 0; t < n * 32; ++t) {
    const int64_t g = t % 32, off = t * cg * hw;
    cpu::group_norm_reference(xv.data() + off, wv.data() + g * cg, bv.data() + g * cg,
                              ref.data() + off, cg, hw, 1e-6f, true);
  }
  EXPECT_LE(testing::nmse(y.data<float>(), ref.data(), ref.size()), 1e-11);
  EXPECT_THROW(ops::group_norm(x, y, {.groups = 32, .channel_dim = 4}), Error);
  EXPECT_THROW(ops::group_norm(x, y, {.groups = 24, .channel_dim = 1}), Error);

  // GEGLU: x [3, 2, 2 * 33] -> y [3, 2, 33]; hidden is the first half, the gate the second.
  Tensor gx = Tensor::empty({3, 2, 66}, DType::F32), gy = Tensor::empty({3, 2, 33}, DType::F32);
  const auto gv = random_floats(3 * 2 * 66, -3, 3);
  std::copy(gv.begin(), gv.end(), gx.data<float>());
  ops::geglu(gx, gy);
  std::vector<float> gref(33);
  for (int64_t r = 0; r < 6; ++r) {
    cpu::geglu_reference(gv.data() + r * 66, gv.data() + r * 66 + 33, gref.data(), 33);
    EXPECT_LE(testing::nmse(gy.data<float>() + r * 33, gref.data(), 33), 1e-11) << r;
  }
  Tensor bad = Tensor::empty({3, 2, 32}, DType::F32);
  EXPECT_THROW(ops::geglu(gx, bad), Error);

  // Nearest 2x on [N, C, H, W], and upsample() taking the same path for an exact 2x size.
  Tensor ux = Tensor::empty({2, 3, 5, 7}, DType::F32),
         uy = Tensor::empty({2, 3, 10, 14}, DType::F32);
  const auto uv = random_floats(2 * 3 * 35);
  std::copy(uv.begin(), uv.end(), ux.data<float>());
  ops::upsample_nearest2x(ux, uy);
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t i = 0; i < 10; ++i)
      for (int64_t j = 0; j < 14; ++j)
        ASSERT_EQ(uy.data<float>()[(p * 10 + i) * 14 + j], uv[p * 35 + (i / 2) * 7 + j / 2]);
  Tensor u3 = Tensor::empty({3, 10, 14}, DType::F32);
  ops::upsample(ux.slice(0, 1, 2).reshape({3, 5, 7}), u3, {});
  for (int64_t e = 0; e < u3.numel(); ++e)
    ASSERT_EQ(u3.data<float>()[e], uy.data<float>()[3 * 140 + e]);
  EXPECT_THROW(ops::upsample_nearest2x(ux, u3), Error);
}

TEST(Ops, GetRowsArgmaxTopK) {
  const Tensor table = testing::random_weights(DType::Q6_K, 10, 256);
  Tensor ids = Tensor::empty({3}, DType::I32);
  ids.data<int32_t>()[0] = 7, ids.data<int32_t>()[1] = 0, ids.data<int32_t>()[2] = 7;
  Tensor out = Tensor::empty({3, 256}, DType::F32);
  ops::get_rows(table, ids, out);
  std::vector<float> ref(256);
  dequantize_row(DType::Q6_K, table.row(7), ref.data(), 256);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(out.data<float>()[i], ref[i]);
  ids.data<int32_t>()[1] = 10;
  EXPECT_THROW(ops::get_rows(table, ids, out), Error);

  Tensor x = Tensor::empty({6}, DType::F32);
  const float xv[] = {0.5f, 3.f, NAN, 3.f, -1.f, 2.f};
  std::copy(xv, xv + 6, x.data<float>());
  EXPECT_EQ(ops::argmax(x), 1);
  const Tensor top = ops::top_k(x, 3);
  EXPECT_EQ(top.data<int32_t>()[0], 1);
  EXPECT_EQ(top.data<int32_t>()[1], 3);
  EXPECT_EQ(top.data<int32_t>()[2], 5);
  EXPECT_THROW(ops::top_k(x, 7), Error);
}

}  // namespace
}  // namespace eight

// The ops SDXL's UNet and VAE run (group norm, nearest upsampling, GEGLU, per-channel adds,
// conv2d, long non-causal attention) on a Vulkan device against the same ops on the CPU, on fresh
// random inputs with odd sizes. Each test prints its largest error ("[ measured ]") so the
// numbers in docs/vulkan.md can be checked. DISABLED_Timings measures SDXL-sized shapes (run
// with --gtest_also_run_disabled_tests --gtest_filter='*Timings*').
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/vulkan/vulkan.h"
#include "backend/vulkan_test_util.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv.h"
#include "ops/device.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/pool.h"

using namespace eight;
using namespace eight::vulkan_test;

namespace {

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

Device gpu() {
  return Device::vulkan(device());
}

// A host tensor of random values in [lo, hi) (f32), or of those values rounded to f16 / bf16.
Tensor random_tensor(const Dims& shape, float lo = -1.f, float hi = 1.f, DType dtype = DType::F32) {
  const auto v = eight::testing::random_floats(static_cast<size_t>(shape.product()), lo, hi);
  Tensor t = Tensor::empty(shape, dtype);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32)
      t.data<float>()[i] = v[i];
    else if (dtype == DType::F16)
      t.data<uint16_t>()[i] = fp32_to_fp16(v[i]);
    else
      t.data<uint16_t>()[i] = fp32_to_bf16(v[i]);
  }
  return t;
}

Tensor up(const Tensor& t) {
  return ops::to_device(t, gpu());
}

Tensor gpu_empty(const Dims& shape) {
  return ops::empty(shape, DType::F32, gpu());
}

// The largest |got - want|, divided by the largest |want| when `relative`.
double max_error(const Tensor& got_device, const Tensor& want, bool relative = false) {
  Tensor got = Tensor::empty(got_device.shape(), DType::F32);
  ops::copy(got_device, got);
  double err = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    err = std::max(err, std::abs(double(got.data<float>()[i]) - want.data<float>()[i]));
    scale = std::max(scale, std::abs(double(want.data<float>()[i])));
  }
  return relative && scale > 0 ? err / scale : err;
}

void report(const std::string& what, double err) {
  std::printf("[ measured ] %s: %.3g\n", what.c_str(), err);
}

}  // namespace

TEST(VulkanDiffusion, GroupNormMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  struct Case {
    Dims shape;
    int64_t channel_dim, groups;
  };
  const Case cases[] = {
      {{2, 40, 33, 31}, 1, 8}, {{40, 33, 31}, 0, 8}, {{12, 3, 7}, 0, 4}, {{1, 64, 5, 5}, 1, 32}};
  for (const Case& c : cases) {
    const int64_t channels = c.shape[static_cast<size_t>(c.channel_dim)];
    // An offset mean, so a one-pass variance would lose digits.
    const Tensor x = random_tensor(c.shape, 2.f, 4.f);
    const Tensor w = random_tensor({channels}), b = random_tensor({channels});
    const Tensor dx = up(x), dw = up(w), db = up(b);
    for (bool silu : {false, true})
      for (bool affine : {true, false}) {
        const ops::GroupNormParams p{.groups = c.groups,
                                     .weight = affine ? &w : nullptr,
                                     .bias = affine ? &b : nullptr,
                                     .eps = 1e-6f,
                                     .silu = silu,
                                     .channel_dim = c.channel_dim};
        Tensor want = Tensor::empty(c.shape, DType::F32);
        ops::group_norm(x, want, p);
        ops::GroupNormParams dp = p;
        dp.weight = affine ? &dw : nullptr;
        dp.bias = affine ? &db : nullptr;
        const Tensor got = gpu_empty(c.shape);
        ops::group_norm(dx, got, dp);
        const double err = max_error(got, want);
        report("group_norm " + c.shape.str() + (silu ? " silu" : "") + (affine ? " affine" : ""),
               err);
        EXPECT_LT(err, 2e-5) << c.shape.str() << " silu=" << silu << " affine=" << affine;
      }
  }
  // In place, as the UNet's resnets call it.
  const Tensor x = random_tensor({2, 40, 9, 11});
  Tensor want = Tensor::empty(x.shape(), DType::F32);
  ops::group_norm(x, want, {.groups = 8, .silu = true, .channel_dim = 1});
  const Tensor dx = up(x);
  ops::group_norm(dx, dx, {.groups = 8, .silu = true, .channel_dim = 1});
  EXPECT_LT(max_error(dx, want), 2e-5);
}

TEST(VulkanDiffusion, UpsampleNearest2xMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  for (const Dims& shape : {Dims{2, 3, 33, 31}, Dims{5, 1, 1}, Dims{7, 9}}) {
    const Tensor x = random_tensor(shape);
    Dims out = shape;
    out[out.size() - 1] *= 2;
    out[out.size() - 2] *= 2;
    Tensor want = Tensor::empty(out, DType::F32);
    ops::upsample_nearest2x(x, want);
    const Tensor got = gpu_empty(out);
    ops::upsample_nearest2x(up(x), got);
    const double err = max_error(got, want);
    report("upsample_nearest2x " + shape.str(), err);
    EXPECT_EQ(err, 0) << shape.str();
  }
}

TEST(VulkanDiffusion, GegluMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  for (const Dims& shape : {Dims{37, 90}, Dims{2, 33, 2 * 257}, Dims{1, 2}}) {
    const Tensor x = random_tensor(shape, -4.f, 4.f);
    Dims out = shape;
    out[out.size() - 1] /= 2;
    Tensor want = Tensor::empty(out, DType::F32);
    ops::geglu(x, want);
    const Tensor got = gpu_empty(out);
    ops::geglu(up(x), got);
    const double err = max_error(got, want);
    report("geglu " + shape.str(), err);
    EXPECT_LT(err, 1e-5) << shape.str();
  }
}

TEST(VulkanDiffusion, PerChannelAddAndMulMatchALoop) {
  EIGHT_REQUIRE_VULKAN();
  // h: [N, C, H, W] + temb [N, C, 1, 1] (a resnet's time embedding), and [C, H, W] + [C, 1, 1].
  for (const auto& [a_shape, b_shape] :
       {std::pair{Dims{2, 40, 33, 31}, Dims{2, 40, 1, 1}}, {Dims{40, 33, 31}, Dims{40, 1, 1}}}) {
    const Tensor a = random_tensor(a_shape), b = random_tensor(b_shape);
    const int64_t run = a.numel() / b.numel();
    for (bool add : {true, false}) {
      Tensor want = Tensor::empty(a_shape, DType::F32);
      for (int64_t i = 0; i < a.numel(); ++i) {
        const float av = a.data<float>()[i], bv = b.data<float>()[i / run];
        want.data<float>()[i] = add ? av + bv : av * bv;
      }
      Tensor cpu = Tensor::empty(a_shape, DType::F32);
      const Tensor got = gpu_empty(a_shape);
      if (add) {
        ops::add(a, b, cpu);
        ops::add(up(a), up(b), got);
      } else {
        ops::mul(a, b, cpu);
        ops::mul(up(a), up(b), got);
      }
      EXPECT_EQ(max_error(up(cpu), want), 0) << "the CPU path, " << a_shape.str();
      const double err = max_error(got, want);
      report(std::string(add ? "add " : "mul ") + a_shape.str() + " by " + b_shape.str(), err);
      EXPECT_EQ(err, 0) << a_shape.str();
    }
  }
  // A shape that is neither a row nor a per-channel broadcast is still refused.
  const Tensor a = up(random_tensor({4, 6, 5})), b = up(random_tensor({4, 3, 1}));
  EXPECT_THROW(ops::add(a, b, a), Error);
}

namespace {

struct ConvCase {
  int64_t n, c_in, h, w, c_out, k;
  ops::Conv2dParams params;
  DType w_type;
};

}  // namespace

TEST(VulkanDiffusion, Conv2dMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  const ConvCase cases[] = {
      {1, 40, 33, 31, 24, 3, {.padding = {1, 1}}, DType::F32},
      {1, 40, 33, 31, 24, 3, {.padding = {1, 1}}, DType::F16},
      {2, 13, 17, 19, 9, 3, {.padding = {1, 1}}, DType::BF16},
      // diffusers' Downsample2D with padding=0: pad (0, 1, 0, 1), stride 2.
      {1, 40, 33, 31, 40, 3, {.stride = {2, 2}, .padding_end = {1, 1}}, DType::F16},
      {1, 8, 16, 16, 8, 3, {.stride = {2, 2}, .padding = {1, 1}}, DType::F32},
      {2, 40, 33, 31, 56, 1, {}, DType::F16},  // 1x1: a resnet shortcut
      {1, 5, 21, 23, 7, 3, {.padding = {2, 2}, .dilation = {2, 2}}, DType::F32},
  };
  for (const ConvCase& c : cases) {
    const Dims xs = c.n > 1 ? Dims{c.n, c.c_in, c.h, c.w} : Dims{c.c_in, c.h, c.w};
    const Tensor x = random_tensor(xs);
    const Tensor w = random_tensor({c.c_out, c.c_in, c.k, c.k}, -1.f, 1.f, c.w_type);
    const Tensor b = random_tensor({c.c_out});
    ops::Conv2dParams p = c.params;
    p.bias = &b;
    const Dims ys = ops::conv2d_output_shape(x, w, p);
    Tensor want = Tensor::empty(ys, DType::F32);
    ops::conv2d(x, w, want, pool(), p);
    const Tensor db = up(b);
    p.bias = &db;
    const Tensor got = gpu_empty(ys);
    ops::conv2d(up(x), up(w), got, pool(), p);
    const double err = max_error(got, want, true);
    report("conv2d " + xs.str() + " -> " + ys.str() + " " + std::string(dtype_name(c.w_type)), err);
    EXPECT_LT(err, 1e-5) << xs.str() << " -> " << ys.str() << " " << dtype_name(c.w_type);
  }
  // groups != 1 is refused on the device with the reason.
  const Tensor x = up(random_tensor({8, 9, 9})), w = up(random_tensor({8, 4, 3, 3}));
  const Tensor y = gpu_empty({8, 7, 7});
  try {
    ops::conv2d(x, w, y, pool(), {.groups = 2});
    ADD_FAILURE() << "grouped conv2d ran on the device";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("groups = 2"), std::string::npos) << e.what();
  }
}

namespace {

// ops::attention on the device against the CPU, non-causal f32 q/k/v [T, heads, d].
double attention_error(int64_t tq, int64_t tk, int64_t n_head, int64_t n_kv, int64_t d,
                       bool chunked) {
  const Tensor q = random_tensor({tq, n_head, d}), k = random_tensor({tk, n_kv, d}),
               v = random_tensor({tk, n_kv, d});
  Tensor want = Tensor::empty({tq, n_head, d}, DType::F32);
  ops::attention(q, k, v, want, pool(), {.causal = false});
  const Tensor dq = up(q), dk = up(k), dv = up(v), got = gpu_empty({tq, n_head, d});
  if (chunked) {
    const vulkan::AttentionArgs a{.tq = tq,
                                  .tk = tk,
                                  .n_head = n_head,
                                  .n_kv_head = n_kv,
                                  .d = d,
                                  .q = vulkan::buffer_of(dq),
                                  .ldq = n_head * d,
                                  .kv_type = DType::F32,
                                  .k = vulkan::buffer_of(dk),
                                  .v = vulkan::buffer_of(dv),
                                  .ldk = static_cast<size_t>(n_kv * d) * 4,
                                  .ldv = static_cast<size_t>(n_kv * d) * 4,
                                  .out = vulkan::buffer_of(got),
                                  .ldo = n_head * d,
                                  .scale = 1.f / std::sqrt(static_cast<float>(d)),
                                  .causal = false};
    vulkan::attention_chunked(a);
  } else {
    ops::attention(dq, dk, dv, got, pool(), {.causal = false});
  }
  return max_error(got, want);
}

}  // namespace

TEST(VulkanDiffusion, LongAttentionMatchesCpu) {
  EIGHT_REQUIRE_VULKAN();
  struct Case {
    int64_t tq, tk, n_head, n_kv, d;
  };
  // The VAE's one head of 512, the UNet's heads of 64, cross-attention (tk != tq) and grouped KV
  // heads, through ops::attention (chunked from 64 keys on, attention.comp below: the last case)
  // and through attention_chunked directly.
  for (const Case& c : {Case{257, 257, 1, 1, 512}, Case{333, 333, 2, 2, 64},
                        Case{129, 77, 3, 3, 40}, Case{65, 97, 4, 2, 48}, Case{19, 33, 2, 1, 64}})
    for (bool chunked : {false, true}) {
      const double err = attention_error(c.tq, c.tk, c.n_head, c.n_kv, c.d, chunked);
      report("attention tq=" + std::to_string(c.tq) + " tk=" + std::to_string(c.tk) +
                 " heads=" + std::to_string(c.n_head) + " d=" + std::to_string(c.d) +
                 (chunked ? " chunked" : " ops::attention"),
             err);
      EXPECT_LT(err, 2e-5) << "tq=" << c.tq << " d=" << c.d << " chunked=" << chunked;
    }
}

namespace {

template <class Fn>
double seconds_per_run(Fn fn, int runs) {
  fn();  // pipelines, first-touch
  vulkan::synchronize(device());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) fn();
  vulkan::synchronize(device());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
}

}  // namespace

TEST(VulkanDiffusion, DISABLED_Timings) {
  EIGHT_REQUIRE_VULKAN();
  {
    const Tensor x = up(random_tensor({320, 64, 64})), y = gpu_empty({320, 64, 64});
    for (DType t : {DType::F16, DType::F32}) {
      const Tensor w = up(random_tensor({320, 320, 3, 3}, -1.f, 1.f, t)),
                   b = up(random_tensor({320}));
      const double s = seconds_per_run(
          [&] {
            ops::conv2d(x, w, y, pool(), {.padding = {1, 1}, .bias = &b});
          },
          2);
      std::printf("[ timing ] conv2d 3x3 320 -> 320 at 64x64, %s weights: %.1f ms (%.1f GFLOP/s)\n",
                  std::string(dtype_name(t)).c_str(), s * 1e3, 2.0 * 320 * 2880 * 4096 / s * 1e-9);
    }
  }
  struct Case {
    int64_t tq, tk, heads, d;
  };
  // Self-attention at the UNet's 32x32 level (one head and ten), its cross-attention over 77
  // text tokens, and the VAE's mid-block at 64x64.
  for (const Case& c : {Case{1024, 1024, 1, 64}, Case{1024, 1024, 10, 64}, Case{1024, 77, 10, 64},
                        Case{4096, 4096, 1, 512}}) {
    const Tensor q = up(random_tensor({c.tq, c.heads, c.d}));
    const Tensor k = up(random_tensor({c.tk, c.heads, c.d}));
    const Tensor v = up(random_tensor({c.tk, c.heads, c.d}));
    const Tensor o = gpu_empty({c.tq, c.heads, c.d});
    vulkan::AttentionArgs a{.tq = c.tq,
                            .tk = c.tk,
                            .n_head = c.heads,
                            .n_kv_head = c.heads,
                            .d = c.d,
                            .q = vulkan::buffer_of(q),
                            .ldq = c.heads * c.d,
                            .kv_type = DType::F32,
                            .k = vulkan::buffer_of(k),
                            .v = vulkan::buffer_of(v),
                            .ldk = static_cast<size_t>(c.heads * c.d) * 4,
                            .ldv = static_cast<size_t>(c.heads * c.d) * 4,
                            .out = vulkan::buffer_of(o),
                            .ldo = c.heads * c.d,
                            .scale = 0.125f,
                            .causal = false};
    const std::string shape = "tq=" + std::to_string(c.tq) + " tk=" + std::to_string(c.tk) +
                              " heads=" + std::to_string(c.heads) + " d=" + std::to_string(c.d);
    const double flops = 4.0 * static_cast<double>(c.tq * c.tk * c.heads * c.d);
    const double chunked = seconds_per_run([&] { vulkan::attention_chunked(a); }, 1);
    std::printf("[ timing ] attention %s, chunked (matmul + softmax): %.1f ms (%.2f GFLOP/s)\n",
                shape.c_str(), chunked * 1e3, flops / chunked * 1e-9);
    if (c.d <= 256) {
      a.causal = true;  // attention.comp: a causal mask...
      a.pos0 = c.tk;    // ...with every query after every key, so it sees them all (the same work)
      const double flash = seconds_per_run([&] { vulkan::attention(a); }, 1);
      std::printf("[ timing ] attention %s, attention.comp: %.1f ms (%.2f GFLOP/s)\n",
                  shape.c_str(), flash * 1e3, flops / flash * 1e-9);
    }
  }
}

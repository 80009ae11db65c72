// Google Benchmark programs for the kernels of the diffusion UNet/VAE at SDXL's shapes: conv2d
// (im2col + the matmul kernels, with f32 and f16 weights) beside a plain direct convolution (the
// alternative route, vectorized over output columns and threaded over output channels), and the
// memory-bound ops around it (group_norm + SiLU, nearest 2x upsample, GEGLU).
//
//   build/bin/bench_diffusion --benchmark_filter=conv
//
// Shapes: SDXL's first UNet level at 512x512 is 320 channels at 64x64; its second 640 at 32x32.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/nn_kernels.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"

namespace eight {
namespace {

ThreadPool& pool() {
  static ThreadPool p(default_thread_count());
  return p;
}

Tensor randn(const Dims& shape, uint32_t seed, float scale = 1.f) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}

Tensor conv_weight(int64_t c_out, int64_t c_in, int64_t k, DType t) {
  const Tensor w32 = randn({c_out, c_in, k, k}, 3, 0.05f);
  if (t == DType::F32) return w32;
  Tensor w = Tensor::empty({c_out, c_in, k, k}, DType::F16);
  for (int64_t i = 0; i < w.numel(); ++i)
    w.data<uint16_t>()[i] = fp32_to_fp16(w32.data<float>()[i]);
  return w;
}

void set_flops(benchmark::State& st, double flops) {
  st.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// args: c_in, c_out, size, kernel, stride
void bm_conv2d(benchmark::State& st, DType wt) {
  const int64_t ci = st.range(0), co = st.range(1), hw = st.range(2), k = st.range(3),
                s = st.range(4);
  const Tensor x = randn({ci, hw, hw}, 1), w = conv_weight(co, ci, k, wt), b = randn({co}, 2);
  const ops::Conv2dParams p{.stride = {s, s}, .padding = {k / 2, k / 2}, .bias = &b};
  Tensor y = Tensor::empty(ops::conv2d_output_shape(x, w, p), DType::F32);
  for (auto _ : st) ops::conv2d(x, w, y, pool(), p);
  set_flops(st, 2.0 * static_cast<double>(co * ci * k * k) * static_cast<double>(y.numel() / co));
}

// The direct route: y[co] += w[co, ci, ky, kx] * shifted x[ci] rows, threaded over co. Stride 1
// only (the shifted row is contiguous and vectorizes).
void bm_conv2d_direct(benchmark::State& st) {
  const int64_t ci = st.range(0), co = st.range(1), hw = st.range(2), k = st.range(3);
  const Tensor x = randn({ci, hw, hw}, 1), w = conv_weight(co, ci, k, DType::F32);
  Tensor y = Tensor::empty({co, hw, hw}, DType::F32);
  const int64_t pad = k / 2;
  for (auto _ : st) {
    pool().parallel_for(co, [&](int64_t o, int) {
      float* yo = y.data<float>() + o * hw * hw;
      std::fill_n(yo, hw * hw, 0.f);
      for (int64_t c = 0; c < ci; ++c) {
        const float* xc = x.data<float>() + c * hw * hw;
        for (int64_t ky = 0; ky < k; ++ky)
          for (int64_t kx = 0; kx < k; ++kx) {
            const float wv = w.data<float>()[((o * ci + c) * k + ky) * k + kx];
            const int64_t dx = kx - pad, x0 = std::max<int64_t>(0, -dx),
                          x1 = std::min<int64_t>(hw, hw - dx);
            for (int64_t oy = 0; oy < hw; ++oy) {
              const int64_t iy = oy + ky - pad;
              if (iy < 0 || iy >= hw) continue;
              const float* src = xc + iy * hw + dx;
              float* dst = yo + oy * hw;
              for (int64_t ox = x0; ox < x1; ++ox) dst[ox] += wv * src[ox];
            }
          }
      }
    });
  }
  set_flops(st, 2.0 * static_cast<double>(co * ci * k * k * hw * hw));
}

// The GEMM of a 3x3 conv alone (x: the unfolded [hw^2, 9 ci], w: [co, 9 ci]): the bound that
// im2col + matmul can reach.
void bm_conv_gemm_only(benchmark::State& st, DType wt) {
  const int64_t ci = st.range(0), co = st.range(1), hw = st.range(2);
  const Tensor x = randn({hw * hw, 9 * ci}, 1);
  const Tensor w = conv_weight(co, ci, 3, wt).reshape({co, 9 * ci});
  Tensor y = Tensor::empty({hw * hw, co}, DType::F32);
  for (auto _ : st) ops::matmul(x, w, y, pool());
  set_flops(st, 2.0 * static_cast<double>(co * 9 * ci * hw * hw));
}

void conv_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"ci", "co", "hw", "k", "s"});
  b->Args({320, 320, 64, 3, 1});  // SDXL level 0 ResNet conv at 512 px
  b->Args({320, 320, 64, 1, 1});  // 1x1 (proj_in/out are linear in SDXL; VAE/skip convs)
  b->Args({320, 320, 64, 3, 2});  // the level-0 downsampler
  b->Args({640, 640, 32, 3, 1});  // level 1
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void bm_group_norm_silu(benchmark::State& st) {
  const int64_t c = st.range(0), hw = st.range(1);
  const Tensor x = randn({c, hw, hw}, 1), g = randn({c}, 2), b = randn({c}, 3);
  Tensor y = Tensor::empty({c, hw, hw}, DType::F32);
  for (auto _ : st)
    ops::group_norm(x, y, {.weight = &g, .bias = &b, .eps = 1e-5f, .silu = true, .pool = &pool()});
  st.SetBytesProcessed(st.iterations() * x.numel() * 8);
}

void bm_upsample_nearest2x(benchmark::State& st) {
  const int64_t c = st.range(0), hw = st.range(1);
  const Tensor x = randn({c, hw, hw}, 1);
  Tensor y = Tensor::empty({c, 2 * hw, 2 * hw}, DType::F32);
  for (auto _ : st) ops::upsample_nearest2x(x, y);
  st.SetBytesProcessed(st.iterations() * x.numel() * 20);
}

void bm_geglu(benchmark::State& st) {
  const int64_t t = st.range(0), n = st.range(1);
  const Tensor x = randn({t, 2 * n}, 1);
  Tensor y = Tensor::empty({t, n}, DType::F32);
  for (auto _ : st) ops::geglu(x, y);
  st.SetBytesProcessed(st.iterations() * t * n * 12);
}

// Self-attention over T image tokens (args: T, heads, head size; f32 K/V as the UNet and VAE
// hold them): the per-query kernel (decode path) against the tiled one that ops::attention runs
// for long query blocks.
void bm_attention(benchmark::State& st, bool tiled) {
  const int64_t t = st.range(0), heads = st.range(1), d = st.range(2);
  const Tensor q = randn({t, heads, d}, 1), k = randn({t, heads, d}, 2),
               v = randn({t, heads, d}, 3);
  Tensor o = Tensor::empty({t, heads, d}, DType::F32);
  const cpu::AttentionProblem p{.tq = t,
                                .tk = t,
                                .n_head = heads,
                                .n_kv_head = heads,
                                .d = d,
                                .q = q.data<float>(),
                                .ldq = heads * d,
                                .kv_type = DType::F32,
                                .k = k.raw(),
                                .v = v.raw(),
                                .ldk = static_cast<size_t>(heads * d * 4),
                                .ldv = static_cast<size_t>(heads * d * 4),
                                .out = o.data<float>(),
                                .ldo = heads * d,
                                .scale = 1 / std::sqrt(static_cast<float>(d)),
                                .causal = false};
  const auto& kernels = cpu::nn_kernels();
  for (auto _ : st) (tiled ? kernels.attention_tiled : kernels.attention)(p, pool());
  set_flops(st, 4.0 * static_cast<double>(t * t * heads * d));
}

void attention_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "heads", "d"});
  b->Args({1024, 10, 64});  // SDXL level 1 at 512 px
  b->Args({4096, 10, 64});  // level 1 at 1024 px
  b->Args({4096, 1, 512});  // the VAE mid block at 512 px
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK_CAPTURE(bm_attention, per_query, false)->Apply(attention_args);
BENCHMARK_CAPTURE(bm_attention, tiled, true)->Apply(attention_args);
BENCHMARK_CAPTURE(bm_conv2d, f32, DType::F32)->Apply(conv_args);
BENCHMARK_CAPTURE(bm_conv2d, f16, DType::F16)->Apply(conv_args);
BENCHMARK_CAPTURE(bm_conv_gemm_only, f32, DType::F32)
    ->Args({320, 320, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(bm_conv_gemm_only, f16, DType::F16)
    ->Args({320, 320, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_conv2d_direct)
    ->ArgNames({"ci", "co", "hw", "k"})
    ->Args({320, 320, 64, 3})
    ->Args({320, 320, 64, 1})
    ->Args({640, 640, 32, 3})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_group_norm_silu)->Args({320, 64})->Args({640, 32})->UseRealTime();
BENCHMARK(bm_upsample_nearest2x)->Args({640, 32})->UseRealTime();
// SDXL level 1 at 512 px: 1024 tokens, inner dim 2560 (GEGLU of 640 * 4).
BENCHMARK(bm_geglu)->Args({1024, 2560})->UseRealTime();

}  // namespace eight

BENCHMARK_MAIN();

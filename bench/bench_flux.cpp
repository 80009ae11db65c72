// Google Benchmark program for the FLUX.1 transformer with FLUX.1's real widths (hidden 3072,
// 24 heads of 128, MLP 12288, T5-XXL context 4096, CLIP-L pooled 768, 64 packed channels) but
// only one double and one single block, random weights in BF16 (flux1-schnell.safetensors) or
// F8_E4M3 (the fp8 copies): one forward at 512x512 (1024 image tokens) with schnell's 256 text
// tokens. A full model's step is about 19 x the double block plus 38 x the single block; the
// counters give FLOPs per second of the whole call.
//
//   build/bin/bench_flux --benchmark_filter=bf16
#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "core/half.h"
#include "core/thread_pool.h"
#include "models/flux/flux.h"

namespace eight {
namespace {

constexpr int64_t D = 3072, M = 4 * D, kCtx = 4096, kPooled = 768, kIn = 64;

ThreadPool& pool() {
  static ThreadPool p(default_thread_count());
  return p;
}

// float8 e4m3fn code nearest to v (|v| well inside the normal range here), by search over the
// 127 positive values.
uint8_t to_e4m3(float v) {
  static float mag[127];
  static const bool init = [] {
    for (int c = 0; c < 127; ++c) mag[c] = fp8_e4m3_to_fp32(static_cast<uint8_t>(c));
    return true;
  }();
  (void)init;
  const float a = std::fabs(v);
  int lo = 0, hi = 126;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    (mag[mid] <= a ? lo : hi) = mid;
  }
  const int c = a - mag[lo] <= mag[hi] - a ? lo : hi;
  return static_cast<uint8_t>(c | (v < 0 ? 0x80 : 0));
}

struct RandomWeights {
  flux::Weights w;
  DType type;
  std::mt19937 gen{7};

  void add(const std::string& name, const Dims& shape, DType t, float mean, float scale) {
    std::normal_distribution<float> d(mean, scale);
    Tensor x = Tensor::empty(shape, t);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = d(gen);
      if (t == DType::BF16)
        x.data<uint16_t>()[i] = fp32_to_bf16(v);
      else if (t == DType::F8_E4M3)
        x.data<uint8_t>()[i] = to_e4m3(v);
      else
        x.data<float>()[i] = v;
    }
    w[name] = x;
  }
  void linear(const std::string& p, int64_t out, int64_t in) {
    add(p + ".weight", {out, in}, type, 0, 1 / std::sqrt(float(in)));
    add(p + ".bias", {out}, DType::F32, 0, 0.02f);
  }
  void norm(const std::string& p) { add(p + ".scale", {128}, DType::F32, 1, 0.1f); }
};

flux::Weights make(DType type) {
  RandomWeights r{.w = {}, .type = type};
  r.linear("img_in", D, kIn);
  r.linear("txt_in", D, kCtx);
  r.linear("time_in.in_layer", D, 256);
  r.linear("time_in.out_layer", D, D);
  r.linear("vector_in.in_layer", D, kPooled);
  r.linear("vector_in.out_layer", D, D);
  for (const char* s : {"img", "txt"}) {
    const std::string b = std::string("double_blocks.0.") + s;
    r.linear(b + "_mod.lin", 6 * D, D);
    r.linear(b + "_attn.qkv", 3 * D, D);
    r.norm(b + "_attn.norm.query_norm");
    r.norm(b + "_attn.norm.key_norm");
    r.linear(b + "_attn.proj", D, D);
    r.linear(b + "_mlp.0", M, D);
    r.linear(b + "_mlp.2", D, M);
  }
  r.linear("single_blocks.0.modulation.lin", 3 * D, D);
  r.linear("single_blocks.0.linear1", 3 * D + M, D);
  r.linear("single_blocks.0.linear2", D, D + M);
  r.norm("single_blocks.0.norm.query_norm");
  r.norm("single_blocks.0.norm.key_norm");
  r.linear("final_layer.adaLN_modulation.1", 2 * D, D);
  r.linear("final_layer.linear", kIn, D);
  return r.w;
}

Tensor random(const Dims& shape) {
  static std::mt19937 gen{11};
  std::normal_distribution<float> d(0, 1);
  Tensor t = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(gen);
  return t;
}

void run(benchmark::State& state, DType type) {
  const int64_t side = state.range(0) / 16, ni = side * side, nt = 256;
  static std::map<DType, std::shared_ptr<const flux::Transformer>> made;
  auto& tr = made[type];
  if (!tr) tr = flux::Transformer::build(make(type), "");
  const Tensor img = random({ni, kIn}), txt = random({nt, kCtx}), pooled = random({kPooled});
  Tensor img_ids = Tensor::zeros({ni, 3}, DType::F32), txt_ids = Tensor::zeros({nt, 3}, DType::F32);
  for (int64_t i = 0; i < ni; ++i) {
    img_ids.data<float>()[i * 3 + 1] = float(i / side);
    img_ids.data<float>()[i * 3 + 2] = float(i % side);
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(tr->forward(img, txt, pooled, img_ids, txt_ids, 1.f, 0, pool()));
  // Multiply-adds of the products (2 FLOPs each) and attention (QK^T and PV over N tokens).
  const double N = double(ni + nt);
  const double dbl = 2 * N * (3 * D * D + D * D + 2 * D * M) + 4 * N * N * D;
  const double sgl = 2 * N * (3 * D * D + D * M + (D + M) * D) + 4 * N * N * D;
  const double io = 2.0 * (ni * kIn * D + nt * kCtx * D + ni * D * kIn);
  state.counters["GFLOP/s"] =
      benchmark::Counter((dbl + sgl + io) * 1e-9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["tokens"] = N;
}

BENCHMARK_CAPTURE(run, bf16, DType::BF16)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(run, f8_e4m3, DType::F8_E4M3)
    ->Arg(512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace eight

BENCHMARK_MAIN();

// Google Benchmark program for the image autoencoder (diffusers' AutoencoderKL) with SDXL's real
// shape (block_out_channels [128, 256, 512, 512], 2 layers per block, 4 latent channels) and
// random f16 weights: one decode and one encode at a given latent size.
//
//   build/bin/bench_vae --benchmark_filter=decode/64    // 512 x 512 pixels
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>

#include "core/half.h"
#include "core/thread_pool.h"
#include "models/vae/vae_internal.h"
#include "ops/attention.h"

namespace eight {
namespace {

ThreadPool& pool() {
  static ThreadPool p(default_thread_count());
  return p;
}

// Random weights under diffusers' names, scaled by 1 / sqrt(fan_in) so activations stay O(1).
struct RandomWeights {
  vae::Weights w;
  std::mt19937 gen{7};

  void add(const std::string& name, const Dims& shape, DType t, float mean, float scale) {
    std::normal_distribution<float> d(mean, scale);
    Tensor x = Tensor::empty(shape, t);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = d(gen);
      if (t == DType::F16)
        x.data<uint16_t>()[i] = fp32_to_fp16(v);
      else
        x.data<float>()[i] = v;
    }
    w[name] = x;
  }
  void conv(const std::string& p, int64_t out, int64_t in, int64_t k) {
    add(p + ".weight", {out, in, k, k}, DType::F16, 0, 1 / std::sqrt(float(in * k * k)));
    add(p + ".bias", {out}, DType::F32, 0, 0.02f);
  }
  void linear(const std::string& p, int64_t c) {
    add(p + ".weight", {c, c}, DType::F16, 0, 1 / std::sqrt(float(c)));
    add(p + ".bias", {c}, DType::F32, 0, 0.02f);
  }
  void norm(const std::string& p, int64_t c) {
    add(p + ".weight", {c}, DType::F32, 1, 0.1f);
    add(p + ".bias", {c}, DType::F32, 0, 0.1f);
  }
  void resnet(const std::string& p, int64_t in, int64_t out) {
    norm(p + ".norm1", in);
    conv(p + ".conv1", out, in, 3);
    norm(p + ".norm2", out);
    conv(p + ".conv2", out, out, 3);
    if (in != out) conv(p + ".conv_shortcut", out, in, 1);
  }
  void mid(const std::string& p, int64_t c) {
    resnet(p + ".resnets.0", c, c);
    resnet(p + ".resnets.1", c, c);
    const std::string a = p + ".attentions.0";
    norm(a + ".group_norm", c);
    for (const char* s : {".to_q", ".to_k", ".to_v", ".to_out.0"}) linear(a + s, c);
  }
};

const vae::Model& sdxl_vae() {
  static const auto model = [] {
    const std::vector<int64_t> ch = {128, 256, 512, 512};
    const int64_t levels = 4, layers = 2, lat = 4;
    RandomWeights r;
    r.conv("encoder.conv_in", ch[0], 3, 3);
    for (int64_t i = 0; i < levels; ++i) {
      const std::string p = "encoder.down_blocks." + std::to_string(i);
      for (int64_t j = 0; j < layers; ++j)
        r.resnet(p + ".resnets." + std::to_string(j), j == 0 ? ch[i > 0 ? i - 1 : 0] : ch[i],
                 ch[i]);
      if (i + 1 < levels) r.conv(p + ".downsamplers.0.conv", ch[i], ch[i], 3);
    }
    r.mid("encoder.mid_block", ch[3]);
    r.norm("encoder.conv_norm_out", ch[3]);
    r.conv("encoder.conv_out", 2 * lat, ch[3], 3);
    r.conv("quant_conv", 2 * lat, 2 * lat, 1);
    r.conv("post_quant_conv", lat, lat, 1);
    r.conv("decoder.conv_in", ch[3], lat, 3);
    r.mid("decoder.mid_block", ch[3]);
    for (int64_t i = 0; i < levels; ++i) {
      const std::string p = "decoder.up_blocks." + std::to_string(i);
      const int64_t out = ch[levels - 1 - i], in = ch[std::min(levels - 1, levels - i)];
      for (int64_t j = 0; j <= layers; ++j)
        r.resnet(p + ".resnets." + std::to_string(j), j == 0 ? in : out, out);
      if (i + 1 < levels) r.conv(p + ".upsamplers.0.conv", out, out, 3);
    }
    r.norm("decoder.conv_norm_out", ch[0]);
    r.conv("decoder.conv_out", 3, ch[0], 3);
    return vae::Model::build(r.w);
  }();
  return *model;
}

Tensor uniform(const Dims& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::mt19937 g(3);
  std::uniform_real_distribution<float> d(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}

// arg: latent side (64: a 512 x 512 image)
void bm_decode(benchmark::State& st) {
  const int64_t s = st.range(0);
  const Tensor z = uniform({1, 4, s, s});
  const vae::Model& m = sdxl_vae();
  for (auto _ : st) benchmark::DoNotOptimize(m.decode(z, pool()));
  st.counters["peak_MiB"] = double(m.decode_bytes(1, s, s)) / (1 << 20);
}

void bm_encode(benchmark::State& st) {
  const int64_t s = st.range(0);
  const Tensor img = uniform({1, 3, 8 * s, 8 * s});
  const vae::Model& m = sdxl_vae();
  for (auto _ : st) benchmark::DoNotOptimize(m.encode(img, pool()).mean);
  st.counters["peak_MiB"] = double(m.encode_bytes(1, 8 * s, 8 * s)) / (1 << 20);
}

// The middle block's attention at C = 512 over T tokens (4096: a 512 x 512 image): the blocked
// route on the matmul kernels against ops::attention's per-query kernel.
void bm_attention(benchmark::State& st, bool blocked) {
  const int64_t t = st.range(0), c = 512;
  const Tensor q = uniform({t, c}), k = uniform({t, c}), v = uniform({t, c});
  Tensor out = Tensor::empty({t, c}, DType::F32);
  for (auto _ : st) {
    if (blocked)
      vae::attention_rows(q, k, v.reshape({c, t}), out, pool(), 2048);
    else
      ops::attention(q.reshape({t, 1, c}), k.reshape({t, 1, c}), v.reshape({t, 1, c}),
                     out.reshape({t, 1, c}), pool(), {.causal = false});
  }
  st.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * t * t * c * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(bm_attention, blocked, true)
    ->Arg(1024)
    ->Arg(4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(bm_attention, per_query, false)
    ->Arg(1024)
    ->Arg(4096)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(bm_decode)
    ->Arg(8)
    ->Arg(32)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(bm_encode)->Arg(8)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace eight

BENCHMARK_MAIN();

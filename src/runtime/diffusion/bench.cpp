#include "runtime/diffusion/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/half.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "models/unet/unet.h"
#include "models/vae/vae.h"
#include "ops/kernel_bench.h"
#include "runtime/diffusion/sdxl_parts.h"

namespace eight::diffusion {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kPoolValues = int64_t{64} << 20;

// Views into shared pools of random values, one pool per weight type (see bench.h).
class RandomWeights {
 public:
  RandomWeights(DType matrix_type, ThreadPool& pool) : matrix_type_(matrix_type), pool_(pool) {
    values_.resize(static_cast<size_t>(kPoolValues));
    std::mt19937 gen(7);
    const float a = 0.02f * std::sqrt(3.f);  // uniform [-a, a] has std 0.02
    std::uniform_real_distribution<float> d(-a, a);
    for (auto& v : values_) v = d(gen);
  }

  Tensor make(const std::string& name, const Dims& shape) {
    const int64_t n = shape.product();
    if (shape.size() == 1) {
      Tensor t = Tensor::empty(shape, DType::F32);
      const bool norm_weight = name.find("norm") != std::string::npos && name.size() > 7 &&
                               name.substr(name.size() - 7) == ".weight";
      for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = norm_weight ? 1.f : values_[i];
      return t;
    }
    DType t = shape.size() == 2 ? matrix_type_ : DType::F16;
    if (t != DType::F16 && shape[1] % dtype_block_size(t) != 0)
      t = shape[1] % 32 == 0 ? DType::Q4_0 : DType::F16;
    const std::shared_ptr<Storage>& s = pool_of(t);
    // A different offset per tensor, block aligned (256 values: every type's block divides it).
    const int64_t room = (kPoolValues - n) / 256;
    check(room > 0, "[bench] tensor '", name, "' ", shape.str(), " is larger than the pool");
    const int64_t at = static_cast<int64_t>(std::hash<std::string>{}(name) % room) * 256;
    return Tensor::from_storage(s, dtype_row_bytes(t, at), shape, t);
  }

 private:
  const std::shared_ptr<Storage>& pool_of(DType t) {
    auto& s = pools_[t];
    if (s) return s;
    Tensor buf = Tensor::empty({static_cast<int64_t>(dtype_row_bytes(t, kPoolValues))}, DType::I8);
    if (t == DType::F16) {
      auto* h = buf.data<uint16_t>();
      for (int64_t i = 0; i < kPoolValues; ++i) h[i] = fp32_to_fp16(values_[i]);
    } else {
      quantize_rows(t, values_.data(), buf.raw(), kPoolValues / 256, 256, &pool_);
    }
    s = buf.storage();
    return s;
  }

  DType matrix_type_;
  ThreadPool& pool_;
  std::vector<float> values_;
  std::map<DType, std::shared_ptr<Storage>> pools_;
};

// Multiply-adds x 2 of one UNet call on N samples of h x w latents and L context tokens: the
// convolutions, linear layers and attention products (norms and element-wise ops are not counted).
double unet_flops(const unet::Config& c, int64_t N, int64_t h, int64_t w, int64_t L) {
  double f = 0;
  auto conv = [&](int64_t co, int64_t ci, int64_t k, int64_t pixels) {
    f += 2.0 * co * ci * k * k * pixels;
  };
  auto res = [&](int64_t ci, int64_t co, int64_t pixels) {
    conv(co, ci, 3, pixels);
    conv(co, co, 3, pixels);
    if (ci != co) conv(co, ci, 1, pixels);
  };
  auto transformer = [&](int64_t C, int64_t depth, int64_t T) {
    const double t = static_cast<double>(T), cc = static_cast<double>(C);
    f += 2 * 2.0 * t * cc * cc;  // proj_in, proj_out
    const double x = static_cast<double>(c.cross_attention_dim);
    const double block = 2.0 * t * cc * cc * 6     // q1 k1 v1 out1 q2 out2
                         + 2.0 * 2 * L * x * cc    // k2 v2
                         + 2.0 * 2 * t * t * cc    // self-attention QK^T and PV
                         + 2.0 * 2 * t * L * cc    // cross-attention
                         + 2.0 * t * cc * 8 * cc   // ff.net.0 (GEGLU)
                         + 2.0 * t * 4 * cc * cc;  // ff.net.2
    f += depth * block;
  };
  const auto levels = static_cast<int64_t>(c.channels.size());
  int64_t pixels = h * w;
  const int64_t c0 = c.channels[0];
  conv(c0, c.in_channels, 3, pixels);
  for (int64_t i = 0; i < levels; ++i) {
    for (int64_t j = 0; j < c.layers_per_block; ++j) {
      res(j > 0 ? c.channels[i] : i > 0 ? c.channels[i - 1] : c0, c.channels[i], pixels);
      if (c.depth[i] > 0) transformer(c.channels[i], c.depth[i], pixels);
    }
    if (i + 1 < levels) {
      pixels /= 4;
      conv(c.channels[i], c.channels[i], 3, pixels);
    }
  }
  const int64_t cl = c.channels.back();
  res(cl, cl, pixels);
  transformer(cl, c.mid_depth, pixels);
  res(cl, cl, pixels);
  for (int64_t i = 0; i < levels; ++i) {
    const int64_t l = levels - 1 - i, out = c.channels[l];
    const int64_t prev = i == 0 ? cl : c.channels[l + 1];
    const int64_t skip_last = c.channels[l > 0 ? l - 1 : 0];
    for (int64_t j = 0; j <= c.layers_per_block; ++j) {
      res((j == 0 ? prev : out) + (j == c.layers_per_block ? skip_last : out), out, pixels);
      if (c.depth[l] > 0) transformer(out, c.depth[l], pixels);
    }
    if (i + 1 < levels) {
      pixels *= 4;
      conv(out, out, 3, pixels);
    }
  }
  conv(c.out_channels, c0, 3, pixels);
  return f * static_cast<double>(N);
}

Tensor random_tensor(const Dims& shape, std::mt19937& gen) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(gen);
  return t;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of every thread of the process: steadier than wall time on a machine shared with
// other work (a descheduled thread does not count).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

DiffusionBenchResult bench_sdxl(const DiffusionBenchParams& p) {
  check(p.steps >= 1, "[bench] --steps must be at least 1, got ", p.steps);
  for (const int64_t s : p.sizes)
    check(s >= 64 && s % 8 == 0, "[bench] image sizes must be multiples of 8 from 64, got ", s);
  DiffusionBenchResult r;
  ThreadPool pool(p.n_threads > 0 ? p.n_threads : default_thread_count());
  r.n_threads = pool.size();

  std::shared_ptr<const unet::Model> unet;
  std::shared_ptr<const vae::Model> vae;
  if (p.model.empty()) {
    const unet::Config config = unet::sdxl_base_config();
    RandomWeights random(p.random_type, pool);
    const unet::Weights w = unet::synthesize_weights(
        config,
        [&](const std::string& name, const Dims& shape) { return random.make(name, shape); });
    unet = unet::Model::build(w, config);
    r.model = "random SDXL-shaped UNet (" + std::string(dtype_name(p.random_type)) + ")";
  } else {
    SDXLFiles files = read_sdxl_files(p.model, "");
    unet = unet::Model::build(files.unet, files.unet_config);
    if (p.vae) vae = vae::Model::build(files.vae, files.vae_config);
    r.model = p.model;
  }
  r.weight_bytes = unet->weight_bytes();
  if (p.peak) {
    ops::KernelBenchOptions o{.types = {DType::F16},
                              .batches = {512},
                              .bandwidth_bytes = int64_t{64} << 20,
                              .matvec_bytes = int64_t{32} << 20,
                              .k = 2048,
                              .matmul_n = 2048,
                              .min_seconds = 0.3};
    const auto k = ops::run_kernel_bench(o, pool);
    if (!k.rows.empty() && !k.rows[0].matmul_gflops.empty())
      r.peak_gflops = k.rows[0].matmul_gflops[0];
  }

  const unet::Config& c = unet->config();
  const int64_t N = r.batch, L = 77;
  const int64_t pooled = c.pooled_dim > 0 ? c.pooled_dim : 1280;
  std::mt19937 gen(1);
  for (const int64_t side : p.sizes) {
    DiffusionSizeResult s;
    s.width = s.height = side;
    const int64_t h = side / 8, w = side / 8;
    const Tensor x = random_tensor({N, c.in_channels, h, w}, gen);
    const Tensor context = random_tensor({N, L, c.cross_attention_dim}, gen);
    const Tensor text = random_tensor({N, pooled}, gen);
    Tensor ids = Tensor::empty({N, 6}, DType::F32);
    for (int64_t n = 0; n < N; ++n) {
      const float v[6] = {float(side), float(side), 0, 0, float(side), float(side)};
      std::copy_n(v, 6, ids.data<float>() + n * 6);
    }
    for (int i = 0; i < p.steps; ++i) {
      const auto t0 = Clock::now();
      const double c0 = process_cpu_seconds();
      const Tensor eps = unet->forward(x, {999.f, 999.f}, context, text, ids, pool);
      s.step_s.push_back(seconds_since(t0));
      s.step_cpu_s.push_back(process_cpu_seconds() - c0);
      log_info("[bench] ", side, "x", side, " UNet step ", i + 1, "/", p.steps, ": ",
               s.step_s.back(), " s");
    }
    std::vector<double> sorted = s.step_s;
    std::sort(sorted.begin(), sorted.end());
    s.median_step_s = sorted[sorted.size() / 2];
    sorted = s.step_cpu_s;
    std::sort(sorted.begin(), sorted.end());
    s.median_step_cpu_s = sorted[sorted.size() / 2];
    s.gflop = unet_flops(c, N, h, w, L) * 1e-9;
    s.gflops = s.gflop / s.median_step_s;
    if (vae) {
      const Tensor z = random_tensor({1, vae->config().latent_channels, h, w}, gen);
      const auto t0 = Clock::now();
      const Tensor rgb = vae->decode(z, pool);
      s.vae_decode_s = seconds_since(t0);
    }
    r.sizes.push_back(std::move(s));
  }
  return r;
}

std::string format_sdxl_bench(const DiffusionBenchResult& r, bool json) {
  if (json) {
    nlohmann::json j{{"model", r.model},
                     {"threads", r.n_threads},
                     {"batch", r.batch},
                     {"weight_bytes", r.weight_bytes},
                     {"peak_gflops", r.peak_gflops},
                     {"sizes", nlohmann::json::array()}};
    for (const auto& s : r.sizes)
      j["sizes"].push_back({{"width", s.width},
                            {"height", s.height},
                            {"step_s", s.step_s},
                            {"median_step_s", s.median_step_s},
                            {"step_cpu_s", s.step_cpu_s},
                            {"median_step_cpu_s", s.median_step_cpu_s},
                            {"gflop", s.gflop},
                            {"gflops", s.gflops},
                            {"vae_decode_s", s.vae_decode_s}});
    return j.dump() + "\n";
  }
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line,
                "%s, %d threads, CFG batch %lld, UNet weights %.2f GB; matmul peak %.1f GFLOP/s\n",
                r.model.c_str(), r.n_threads, static_cast<long long>(r.batch),
                static_cast<double>(r.weight_bytes) * 1e-9, r.peak_gflops);
  out += line;
  out +=
      "| size | s/step (median) | CPU s/step | GFLOP/step | GFLOP/s | of peak | VAE decode s |\n";
  out += "|---|---|---|---|---|---|---|\n";
  for (const auto& s : r.sizes) {
    std::snprintf(line, sizeof line, "| %lldx%lld | %.2f | %.2f | %.0f | %.1f | %.0f%% | %s |\n",
                  static_cast<long long>(s.width), static_cast<long long>(s.height),
                  s.median_step_s, s.median_step_cpu_s, s.gflop, s.gflops,
                  r.peak_gflops > 0 ? 100 * s.gflops / r.peak_gflops : 0.0,
                  s.vae_decode_s > 0 ? std::to_string(s.vae_decode_s).c_str() : "-");
    out += line;
  }
  return out;
}

}  // namespace eight::diffusion

// SDXL's text-to-image and image-to-image recipe (diffusers' StableDiffusionXLPipeline and
// StableDiffusionXLImg2ImgPipeline), one step per line where it can be.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "backend/vulkan/vulkan.h"
#include "core/error.h"
#include "core/log.h"
#include "runtime/diffusion/flux_parts.h"
#include "runtime/diffusion/sdxl_parts.h"

namespace eight::diffusion {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool contains_turbo(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name.find("turbo") != std::string::npos;
}

// The id of a pad token in a tokenizer's vocabulary.
int32_t token_id(const text::CLIPTokenizer& tok, const std::string& token) {
  const auto& v = tok.tokens();
  const auto it = std::find(v.begin(), v.end(), token);
  if (it != v.end()) return static_cast<int32_t>(it - v.begin());
  // A pad token written as plain text ("!") is the word piece of that text.
  const std::vector<int32_t> ids = tok.encode_words(token);
  check(ids.size() == 1, "[sdxl] the pad token '", token, "' is not one token");
  return ids[0];
}

class SDXLPipeline final : public ImagePipeline {
 public:
  SDXLPipeline(SDXLFiles files, Device device) : files_(std::move(files)), device_(device) {
    // On a GPU every part runs there; the scheduler, the guidance mix and the latents between
    // steps stay on the host.
    unet_ = unet::Model::build(files_.unet, files_.unet_config, device);
    vae_ = vae::Model::build(files_.vae, files_.vae_config, device);
    te1_ = clip::TextEncoder::build(files_.text_encoder, files_.text_encoder_config, "quick_gelu",
                                    "text_encoder", device);
    te2_ = clip::TextEncoder::build(files_.text_encoder_2, files_.text_encoder_2_config, "gelu",
                                    "text_encoder_2", device);
    plan_model_ = image_model_desc(files_);
    // The weights are bound; the name maps would only keep duplicate handles.
    files_.unet.clear();
    files_.vae.clear();
    files_.text_encoder.clear();
    files_.text_encoder_2.clear();
    const auto& uc = unet_->config();
    check(te1_->config().hidden + te2_->config().hidden == uc.cross_attention_dim, "[sdxl] ",
          files_.name, ": the text encoders give ", te1_->config().hidden, " + ",
          te2_->config().hidden, " context channels; the UNet takes ", uc.cross_attention_dim);
    // pooled_dim 0: a file without config.json too small for SDXL's 6 x 256 time ids; the UNet
    // then takes the width of the text embedding as it comes.
    check(uc.pooled_dim == 0 || te2_->config().projection_dim == uc.pooled_dim, "[sdxl] ",
          files_.name, ": text_encoder_2 pools to ", te2_->config().projection_dim,
          " values; the UNet's text embedding takes ", uc.pooled_dim);
    check(vae_->config().latent_channels == uc.in_channels, "[sdxl] ", files_.name,
          ": the VAE has ", vae_->config().latent_channels, " latent channels, the UNet ",
          uc.in_channels);
    turbo_ = contains_turbo(files_.name);
    if (!files_.scheduler_config.empty()) {
      scheduler_config_ = scheduler_config_from_json(files_.scheduler_config);
      default_sampler_ = scheduler_name_for_class(scheduler_config_.class_name);
      if (default_sampler_.empty()) {
        log_warn("[sdxl] ", files_.name, ": no eight sampler for ", scheduler_config_.class_name,
                 "; using euler with the same config");
        default_sampler_ = "euler";
      }
    } else {
      default_sampler_ = turbo_ ? "euler_a" : "euler";
    }
  }

  std::string name() const override { return files_.name; }
  Device device() const override { return device_; }
  const std::vector<LoraSpec>& loras() const override { return files_.loras; }
  int64_t latent_channels() const override { return unet_->config().in_channels; }
  std::string default_sampler() const override { return default_sampler_; }
  int64_t default_steps() const override { return turbo_ ? 4 : 20; }
  double default_cfg_scale() const override { return turbo_ ? 1.0 : 5.0; }
  int64_t weight_bytes() const override {
    return unet_->weight_bytes() + vae_->weight_bytes() + te1_->weight_bytes() +
           te2_->weight_bytes();
  }

  const text::CLIPTokenizer& tokenizer(int encoder) const {
    const auto& t = encoder == 0 ? files_.tokenizer : files_.tokenizer_2;
    return t ? *t : text::CLIPTokenizer::openai();
  }

  // The prompt's token windows: at least `min_windows` of 77 = start, up to 75 tokens, end,
  // pads (A1111's chunks; one window for prompts of at most 75 tokens).
  std::vector<std::vector<int32_t>> windows(const std::string& text, int encoder,
                                            size_t min_windows) const {
    const text::CLIPTokenizer& tok = tokenizer(encoder);
    const int32_t pad = token_id(tok, encoder == 0 ? files_.pad_token : files_.pad_token_2);
    const std::vector<int32_t> words = tok.encode_words(text);
    constexpr size_t kWindow = 77, kBody = kWindow - 2;
    const size_t n = std::max(min_windows, std::max<size_t>(1, (words.size() + kBody - 1) / kBody));
    std::vector<std::vector<int32_t>> out;
    for (size_t w = 0; w < n; ++w) {
      std::vector<int32_t> ids{tok.bos()};
      const size_t a = std::min(words.size(), w * kBody), b = std::min(words.size(), a + kBody);
      ids.insert(ids.end(), words.begin() + static_cast<std::ptrdiff_t>(a),
                 words.begin() + static_cast<std::ptrdiff_t>(b));
      ids.push_back(tok.eos());
      ids.resize(kWindow, pad);
      out.push_back(std::move(ids));
    }
    return out;
  }

  size_t window_count(const std::string& text) const {
    return std::max(windows(text, 0, 1).size(), windows(text, 1, 1).size());
  }

  // Both encoders' hidden_states[-2] side by side: context [windows * 77, D1 + D2]; the pooled
  // output of encoder 2 for the first window.
  PromptEmbedding encode(const std::string& text, size_t n_windows, ThreadPool& pool) const {
    const clip::TextEncoding a = te1_->encode(windows(text, 0, n_windows), -2, pool);
    const clip::TextEncoding b = te2_->encode(windows(text, 1, n_windows), -2, pool);
    const int64_t W = a.hidden.size(0), L = a.hidden.size(1);
    const int64_t D1 = a.hidden.size(2), D2 = b.hidden.size(2);
    PromptEmbedding e;
    e.context = Tensor::empty({W * L, D1 + D2}, DType::F32);
    for (int64_t r = 0; r < W * L; ++r) {
      float* dst = e.context.data<float>() + r * (D1 + D2);
      std::memcpy(dst, a.hidden.data<float>() + r * D1, static_cast<size_t>(D1) * 4);
      std::memcpy(dst + D1, b.hidden.data<float>() + r * D2, static_cast<size_t>(D2) * 4);
    }
    e.pooled = b.pooled.select(0, 0).clone();
    return e;
  }

  ImagePlan plan(const ImageRequest& rq, int n_threads) const override {
    const double cfg =
        rq.cfg_scale >= 0 ? rq.cfg_scale : (rq.sampler == "lcm" ? 1.0 : default_cfg_scale());
    const bool guided = cfg > 1.0;
    const size_t windows =
        std::max(window_count(rq.prompt), guided ? window_count(rq.negative_prompt) : size_t{1});
    return plan_image(plan_model_, {.width = rq.width,
                                    .height = rq.height,
                                    .guided = guided,
                                    .windows = static_cast<int64_t>(windows),
                                    .n_threads = n_threads,
                                    .vae_tile = rq.vae_tile,
                                    .ram = rq.ram_budget,
                                    .vram = device_vram(rq).first,
                                    .gpu_reserve = device_vram(rq).second,
                                    .device = device_.name()});
  }

  // The device budget the plan bills (0 on the CPU) and the driver's reserve within it: the
  // request's budget less vulkan::kDeviceReserveBytes, or the device's own (already without it).
  std::pair<int64_t, int64_t> device_vram(const ImageRequest& rq) const {
    if (device_.kind == DeviceKind::CPU) return {0, 0};
    if (rq.vram_budget > 0) return {rq.vram_budget, vulkan::kDeviceReserveBytes};
    return {vulkan::device_budget(device_.index), 0};
  }

  ImageResult generate(const ImageRequest& rq, ThreadPool& pool,
                       const std::function<void(const StepProgress&)>& progress) override;

 private:
  SDXLFiles files_;
  Device device_;
  std::shared_ptr<const unet::Model> unet_;
  std::shared_ptr<const vae::Model> vae_;
  std::shared_ptr<const clip::TextEncoder> te1_, te2_;
  ImageModelDesc plan_model_;  // the shapes the memory plan is made from
  SchedulerConfig scheduler_config_;
  std::string default_sampler_;
  bool turbo_ = false;
};

// out = a + s * (b - a), element-wise over contiguous f32.
void lerp_into(const Tensor& a, const Tensor& b, double s, const Tensor& out) {
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  const auto fs = static_cast<float>(s);
  for (int64_t i = 0; i < out.numel(); ++i) po[i] = pa[i] + fs * (pb[i] - pa[i]);
}

ImageResult SDXLPipeline::generate(const ImageRequest& rq, ThreadPool& pool,
                                   const std::function<void(const StepProgress&)>& progress) {
  const unet::Config& uc = unet_->config();
  const auto levels = static_cast<int64_t>(uc.channels.size());
  const int64_t align = 8 << std::max<int64_t>(0, levels - 1);
  check(rq.width >= align && rq.height >= align && rq.width % align == 0 &&
            rq.height % align == 0 && rq.width <= 4096 && rq.height <= 4096,
        "[sdxl] the image size ", rq.width, "x", rq.height, " must be multiples of ", align,
        " between ", align, " and 4096");
  ImageResult res;
  res.sampler = rq.sampler.empty() ? default_sampler_ : rq.sampler;
  res.steps = rq.steps > 0 ? rq.steps : (res.sampler == "lcm" ? 4 : default_steps());
  res.cfg_scale =
      rq.cfg_scale >= 0 ? rq.cfg_scale : (res.sampler == "lcm" ? 1.0 : default_cfg_scale());
  res.seed = rq.seed;
  check(res.steps <= 1000, "[sdxl] ", res.steps, " steps (at most 1000)");
  const SchedulerConfig sc = files_.scheduler_config.empty()
                                 ? single_file_scheduler_config(res.sampler, turbo_)
                                 : scheduler_config_;
  // The memory plan: refuse what does not fit before allocating anything, and decode in the
  // tiles it chose.
  ImageRequest planned = rq;
  planned.sampler = res.sampler;
  planned.cfg_scale = res.cfg_scale;
  res.plan = plan(planned, pool.size());
  res.plan.check_host_budget();
  res.plan.check_device_budget();
  auto scheduler = make_scheduler(res.sampler, sc);
  scheduler->set_timesteps(res.steps);

  const int64_t C = uc.in_channels, h = rq.height / 8, w = rq.width / 8;
  // Streams of the seed: 0 the initial noise, 1 the samplers' per-step noise, 2 img2img's sample of
  // the encoded image.
  Rng noise_rng(rq.seed, 0), step_rng(rq.seed, 1), posterior_rng(rq.seed, 2);
  Tensor noise;
  if (rq.init_noise.defined()) {
    check(rq.init_noise.shape() == Dims{C, h, w} && rq.init_noise.dtype() == DType::F32,
          "[sdxl] the initial noise has shape ", rq.init_noise.shape().str(), "; ", rq.width, "x",
          rq.height, " needs f32 ", Dims{C, h, w}.str());
    noise = rq.init_noise.contiguous().clone();
  } else {
    noise = noise_rng.normal({C, h, w});
  }

  // 1. Prompt embeddings; [negative, positive] when guided.
  const auto t_text = Clock::now();
  const bool guided = res.cfg_scale > 1.0;
  const size_t n_windows =
      std::max(window_count(rq.prompt), guided ? window_count(rq.negative_prompt) : size_t{1});
  const PromptEmbedding pos = encode(rq.prompt, n_windows, pool);
  PromptEmbedding neg;
  if (guided) {
    if (rq.negative_prompt.empty() && files_.force_zeros_for_empty_prompt) {
      neg.context = Tensor::zeros(pos.context.shape(), DType::F32);
      neg.pooled = Tensor::zeros(pos.pooled.shape(), DType::F32);
    } else {
      neg = encode(rq.negative_prompt, n_windows, pool);
    }
  }
  res.timings.text_s = seconds_since(t_text);
  const int64_t N = guided ? 2 : 1, Lc = pos.context.size(0), Dc = pos.context.size(1);
  const int64_t P = pos.pooled.size(0);
  Tensor context = Tensor::empty({N, Lc, Dc}, DType::F32);
  Tensor text_embeds = Tensor::empty({N, P}, DType::F32);
  Tensor time_ids = Tensor::empty({N, 6}, DType::F32);
  for (int64_t i = 0; i < N; ++i) {
    const PromptEmbedding& e = (guided && i == 0) ? neg : pos;
    std::memcpy(context.data<float>() + i * Lc * Dc, e.context.data<float>(),
                static_cast<size_t>(Lc * Dc) * 4);
    std::memcpy(text_embeds.data<float>() + i * P, e.pooled.data<float>(),
                static_cast<size_t>(P) * 4);
    // add_time_ids: original size (h, w), crop top-left (0, 0), target size (h, w).
    const float ids[6] = {static_cast<float>(rq.height), static_cast<float>(rq.width), 0, 0,
                          static_cast<float>(rq.height), static_cast<float>(rq.width)};
    std::memcpy(time_ids.data<float>() + i * 6, ids, sizeof(ids));
  }

  // 2. Initial latents: txt2img starts from noise * init_noise_sigma; img2img from the encoded
  // image noised to the first kept step (diffusers' get_timesteps with `strength`).
  const float scaling = vae_->config().scaling_factor, shift = vae_->config().shift_factor;
  Tensor x = Tensor::empty({C, h, w}, DType::F32);
  int64_t first = 0;
  if (rq.init_image.defined()) {
    check(rq.init_image.shape() == Dims{3, rq.height, rq.width}, "[sdxl] the init image is ",
          rq.init_image.shape().str(), "; expected ", Dims{3, rq.height, rq.width}.str());
    check(rq.strength > 0 && rq.strength <= 1, "[sdxl] strength ", rq.strength,
          " is outside (0, 1]");
    const auto init_steps = std::min<int64_t>(
        res.steps, static_cast<int64_t>(static_cast<double>(res.steps) * rq.strength));
    first = std::max<int64_t>(res.steps - init_steps, 0);
    check(first < res.steps, "[sdxl] strength ", rq.strength, " with ", res.steps,
          " steps runs no step");
    const auto t_enc = Clock::now();
    const vae::Posterior post = vae_->encode(rq.init_image.unsqueeze(0).contiguous(), pool);
    const Tensor eps = posterior_rng.normal({C, h, w});
    Tensor x0 = Tensor::empty({C, h, w}, DType::F32);
    for (int64_t i = 0; i < x0.numel(); ++i)
      x0.data<float>()[i] =
          (post.mean.data<float>()[i] + post.std.data<float>()[i] * eps.data<float>()[i] - shift) *
          scaling;
    scheduler->add_noise(x0, noise, first, x);
    res.timings.decode_s += seconds_since(t_enc);
  } else {
    const auto sigma = static_cast<float>(scheduler->init_noise_sigma());
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = noise.data<float>()[i] * sigma;
  }

  // 3. The denoising loop.
  const auto t_loop = Clock::now();
  Tensor x_in = Tensor::empty({N, C, h, w}, DType::F32);
  Tensor guided_out = Tensor::empty({C, h, w}, DType::F32);
  for (int64_t i = first; i < res.steps; ++i) {
    for (int64_t n = 0; n < N; ++n) scheduler->scale_model_input(x, i, x_in.select(0, n));
    const auto t = static_cast<float>(scheduler->timesteps()[static_cast<size_t>(i)]);
    const Tensor out = unet_->forward(x_in, std::vector<float>(static_cast<size_t>(N), t), context,
                                      text_embeds, time_ids, pool);
    const Tensor& eps = guided ? guided_out : out.select(0, 0);
    if (guided) lerp_into(out.select(0, 0), out.select(0, 1), res.cfg_scale, guided_out);
    scheduler->step(eps.contiguous(), i, x, x, step_rng);
    ++res.timings.steps_run;
    if (progress)
      progress(
          {.step = i - first + 1, .steps = res.steps - first, .seconds = seconds_since(t_loop)});
  }
  res.timings.denoise_s = seconds_since(t_loop);
  res.latents = x;

  // 4. Decode latents / scaling_factor + shift_factor.
  const auto t_dec = Clock::now();
  Tensor z = Tensor::empty({1, C, h, w}, DType::F32);
  for (int64_t i = 0; i < x.numel(); ++i) z.data<float>()[i] = x.data<float>()[i] / scaling + shift;
  const vae::Tiles tiles{.tile = res.plan.request.vae_tile, .overlap = res.plan.vae_overlap};
  res.image = vae_->decode(z, pool, tiles).select(0, 0).contiguous();
  res.timings.decode_s += seconds_since(t_dec);
  return res;
}

}  // namespace

std::unique_ptr<ImagePipeline> make_sdxl_pipeline(SDXLFiles files, Device device) {
  return std::make_unique<SDXLPipeline>(std::move(files), device);
}

std::unique_ptr<ImagePipeline> ImagePipeline::load(const ImageLoadOptions& options) {
  const auto t0 = Clock::now();
  const SeparateFiles& sep = options.separate;
  if (!sep.clip_l.empty() || !sep.t5xxl.empty() || is_flux_model(options.path)) {
    check(options.loras.empty() && options.base_path.empty(),
          "[flux] LoRAs and --base are not supported for FLUX");
    if (options.device.kind != DeviceKind::CPU)
      log_warn("[flux] FLUX runs on the CPU for now, not on ", options.device.name());
    auto p = make_flux_pipeline(read_flux_files(options.path, {.clip_l = sep.clip_l,
                                                               .t5xxl = sep.t5xxl,
                                                               .vae = options.vae_path,
                                                               .tokenizer = sep.tokenizer,
                                                               .tokenizer_2 = sep.tokenizer_2}),
                                Device::cpu());
    log_debug("[flux] loaded ", options.path, " in ", seconds_since(t0), " s");
    return p;
  }
  check(sep.tokenizer.empty() && sep.tokenizer_2.empty(),
        "[sdxl] --tokenizer / --tokenizer-2 are for FLUX's separate files");
  SDXLFiles files = read_sdxl_files(options.path, options.vae_path, options.base_path);
  apply_loras(files, options.loras);
  auto p = make_sdxl_pipeline(std::move(files), options.device);
  log_debug("[sdxl] loaded ", options.path, " in ", seconds_since(t0), " s");
  return p;
}

std::vector<uint8_t> to_rgb8(const Tensor& image) {
  check(image.dim() == 3 && image.size(0) == 3 && image.dtype() == DType::F32,
        "[image] to_rgb8 takes f32 [3, H, W], not ", image.shape().str());
  const Tensor im = image.contiguous();
  const int64_t H = im.size(1), W = im.size(2);
  std::vector<uint8_t> out(static_cast<size_t>(H * W * 3));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < H * W; ++p) {
      const float v = std::clamp((im.data<float>()[c * H * W + p] + 1.0f) * 0.5f, 0.0f, 1.0f);
      out[static_cast<size_t>(p * 3 + c)] = static_cast<uint8_t>(std::nearbyint(v * 255.0f));
    }
  return out;
}

Tensor from_rgb8(const uint8_t* rgb, int64_t width, int64_t height) {
  Tensor t = Tensor::empty({3, height, width}, DType::F32);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t p = 0; p < width * height; ++p)
      t.data<float>()[c * width * height + p] = rgb[p * 3 + c] / 127.5f - 1.0f;
  return t;
}

}  // namespace eight::diffusion

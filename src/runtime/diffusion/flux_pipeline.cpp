// FLUX.1's text-to-image recipe (diffusers' FluxPipeline), one step per line where it can be:
//
//   1. CLIP-L's pooled output of the prompt (77 tokens) and T5's last hidden state
//      (max_sequence_length tokens, no attention mask); txt_ids zeros.
//   2. noise [16, h, w] (h = H/8) from the seed or given, packed 2x2 to [(h/2)(w/2), 64] and not
//      scaled (flow matching starts at sigma 1); img_ids (0, row, col) per patch.
//   3. per step: the transformer's velocity at sigma_i (the dev model also gets the guidance
//      scale), x += (sigma_{i+1} - sigma_i) v. No classifier-free guidance.
//   4. unpack, then the VAE decodes latents / scaling_factor + shift_factor.
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "models/flux/flux.h"
#include "runtime/diffusion/flow_match.h"
#include "runtime/diffusion/flux_parts.h"
#include "runtime/plan/t5.h"

namespace eight::diffusion {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The config of a config-less VAE file (BFL's ae.safetensors): its sizes from the shapes, the
// GroupNorm groups of LDM's autoencoder (always 32) and FLUX's latent scaling and shift.
std::string flux_vae_config(const NamedTensors& weights) {
  const vae::Config c = vae::read_config(weights, "");
  const nlohmann::json j = {{"in_channels", c.in_channels},
                            {"out_channels", c.out_channels},
                            {"latent_channels", c.latent_channels},
                            {"block_out_channels", c.channels},
                            {"layers_per_block", c.layers_per_block},
                            {"norm_num_groups", 32},
                            {"scaling_factor", 0.3611},
                            {"shift_factor", 0.1159},
                            {"use_quant_conv", c.quant_conv},
                            {"use_post_quant_conv", c.quant_conv},
                            {"mid_block_add_attention", c.mid_attention}};
  return j.dump();
}

class FluxPipeline final : public ImagePipeline {
 public:
  FluxPipeline(FluxFiles files, Device device, int64_t heap_before)
      : name_(files.name), path_(files.path), device_(device), text_(files, device) {
    check(device.kind == DeviceKind::CPU, "[flux] ", name_,
          ": FLUX runs on the CPU only for now (--device cpu)");
    transformer_ = flux::Transformer::build(files.transformer, files.transformer_config);
    files.transformer.clear();
    const std::string vae_config =
        files.vae_config.empty() ? flux_vae_config(files.vae) : files.vae_config;
    vae_ = vae::Model::build(files.vae, vae_config, device);
    for (const auto& [n, t] : files.vae) vae_desc_.tensors[n] = {t.shape(), t.dtype()};
    vae_desc_.config = vae_config;
    files.vae.clear();
    const flux::Config& tc = transformer_->config();
    check(tc.in_channels == vae_->config().latent_channels * 4, "[flux] ", name_,
          ": the transformer takes ", tc.in_channels, " packed channels; the VAE has ",
          vae_->config().latent_channels,
          " latent channels (x 4 = ", vae_->config().latent_channels * 4, ")");
    check(text_.t5().config().d_model == tc.context_dim, "[flux] ", name_, ": T5 gives ",
          text_.t5().config().d_model, " channels; the transformer's context takes ",
          tc.context_dim);
    const clip::TextEncoderConfig& cc = text_.clip().config();
    check(cc.hidden == tc.pooled_dim, "[flux] ", name_, ": CLIP pools to ", cc.hidden,
          " values; the transformer's pooled projection takes ", tc.pooled_dim);
    if (!files.scheduler_config.empty()) {
      scheduler_ = flow_match_config_from_json(files.scheduler_config);
    } else if (tc.guidance_embed) {
      // FLUX.1-dev's scheduler_config.json.
      scheduler_.shift = 3.0;
      scheduler_.use_dynamic_shifting = true;
    }
    t5_path_ = files.t5_path;
    // What the loaders copied onto the heap (f32 norms, biases and embeddings, reordered kernels),
    // counted rather than replayed: the parts' loaders own those choices.
    copied_bytes_ = std::max<int64_t>(0, memory_tracker().stats().heap_current - heap_before);
    mapped_bytes_ = files.transformer_file_bytes + files.vae_file_bytes + files.clip_file_bytes +
                    files.t5_file_bytes;
  }

  std::string name() const override { return name_; }
  Device device() const override { return device_; }
  const std::vector<LoraSpec>& loras() const override { return loras_; }
  int64_t latent_channels() const override { return vae_->config().latent_channels; }
  std::string default_sampler() const override { return "flow_euler"; }
  int64_t default_steps() const override { return dev() ? 28 : 4; }
  double default_cfg_scale() const override { return dev() ? 3.5 : 0.0; }
  int64_t weight_bytes() const override {
    return transformer_->weight_bytes() + vae_->weight_bytes() + text_.weight_bytes();
  }

  bool dev() const { return transformer_->config().guidance_embed; }
  int64_t max_sequence_length(const ImageRequest& rq) const {
    return rq.max_sequence_length > 0 ? rq.max_sequence_length : (dev() ? 512 : 256);
  }

  ImagePlan plan(const ImageRequest& rq, int n_threads) const override;
  ImageResult generate(const ImageRequest& rq, ThreadPool& pool,
                       const std::function<void(const StepProgress&)>& progress) override;

 private:
  std::string name_, path_;
  Device device_;
  std::vector<LoraSpec> loras_;
  FluxTextEncoders text_;
  std::shared_ptr<const flux::Transformer> transformer_;
  std::shared_ptr<const vae::Model> vae_;
  ImageComponent vae_desc_;  // the VAE's tensor headers, for its decode's kernel scratch
  FlowMatchConfig scheduler_;
  std::string t5_path_;
  int64_t mapped_bytes_ = 0, copied_bytes_ = 0;
};

void check_size(const ImageRequest& rq) {
  check(rq.width >= 16 && rq.height >= 16 && rq.width % 16 == 0 && rq.height % 16 == 0 &&
            rq.width <= 4096 && rq.height <= 4096,
        "[flux] the image size ", rq.width, "x", rq.height,
        " must be multiples of 16 between 16 and 4096");
}

ImagePlan FluxPipeline::plan(const ImageRequest& rq, int n_threads) const {
  check_size(rq);
  ImagePlan plan;
  plan.model = name_;
  plan.request.width = rq.width;
  plan.request.height = rq.height;
  plan.request.guided = false;
  plan.request.n_threads = n_threads > 0 ? n_threads : default_thread_count();
  plan.request.ram = rq.ram_budget > 0 ? rq.ram_budget : system_ram_budget();
  plan.request.vae_tile = rq.vae_tile < 0 ? 0 : rq.vae_tile;
  plan.vae_overlap = plan.request.vae_tile / 4;
  const int64_t h = rq.height / 8, w = rq.width / 8, C = latent_channels();
  const int64_t n_img = (h / 2) * (w / 2), L = max_sequence_length(rq);
  const flux::Config& tc = transformer_->config();
  const int threads = plan.request.n_threads;
  // What generate() holds (f32, each buffer 64-byte aligned as the allocator rounds): the noise,
  // then the prompt's context, pooled row and text ids, the packed latents and image ids.
  auto f32 = [](int64_t n) { return (n * 4 + 63) / 64 * 64; };
  const int64_t noise = f32(C * h * w);
  const int64_t prompt = f32(L * tc.context_dim) + f32(tc.pooled_dim);
  const int64_t held = noise + prompt + f32(L * 3) + f32(n_img * tc.in_channels) + f32(n_img * 3);
  // Text: CLIP on one window, then T5 on L tokens (its activations and kernel scratch).
  const T5Plan t5 = plan_t5(t5_path_, L, threads, plan.request.ram);
  const int64_t text = noise + t5.activation_bytes + prompt;
  // Denoise: one forward (its output, the velocity, included).
  plan.unet_bytes = transformer_->forward_bytes(n_img, L, threads);
  const int64_t denoise = held + plan.unet_bytes;
  // Decode: the unpacked latents and the VAE's input beside what the loop held.
  const vae::Tiles tiles{.tile = plan.request.vae_tile, .overlap = plan.vae_overlap};
  plan.decode_bytes = vae_->decode_bytes(1, h, w, tiles);
  const int64_t decode = held + 2 * f32(C * h * w) + plan.decode_bytes;
  // The kernels' per-thread scratch stays for the threads' life: the larger of T5's and the
  // VAE's (they reuse the same slots; the transformer's is in its forward_bytes).
  plan.scratch_bytes =
      std::max(t5.scratch_bytes,
               vae_decode_scratch_bytes(vae_desc_, h, w, tiles.tile, tiles.overlap, threads));
  plan.mapped_bytes = mapped_bytes_;
  plan.copied_bytes = copied_bytes_;
  plan.stages = {{"text", text, cat("CLIP-L on 77 tokens, then T5 on ", L, " tokens")},
                 {"denoise", denoise,
                  cat("the transformer on ", n_img, " image + ", L, " text tokens (", rq.width, "x",
                      rq.height, ") per step")},
                 {"decode", decode, cat("VAE decode of the ", rq.width, "x", rq.height, " image")}};
  const auto largest =
      std::max_element(plan.stages.begin(), plan.stages.end(),
                       [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  plan.cpu.device = "cpu";
  plan.cpu.budget = plan.request.ram;
  plan.cpu.items.push_back({.what = "weights",
                            .bytes = mapped_bytes_,
                            .why = "transformer, VAE, CLIP-L and T5, used in place from the files",
                            .mapped = true});
  plan.cpu.items.push_back({.what = "weight copies",
                            .bytes = plan.copied_bytes,
                            .why = "f32 copies the loaders make (norms, biases, embeddings)"});
  plan.cpu.items.push_back({.what = "kernel scratch",
                            .bytes = plan.scratch_bytes,
                            .why = cat(threads,
                                       " threads (T5 and VAE; the transformer's is in its "
                                       "stage)")});
  plan.cpu.items.push_back(
      {.what = largest->name + " (largest stage)", .bytes = largest->bytes, .why = largest->why});
  plan.gpu = "not planned: FLUX runs on the CPU";
  if (!plan.cpu.fits())
    plan.suggestions.push_back(
        cat("a smaller image than ", rq.width, "x", rq.height, ", or more RAM"));
  return plan;
}

ImageResult FluxPipeline::generate(const ImageRequest& rq, ThreadPool& pool,
                                   const std::function<void(const StepProgress&)>& progress) {
  check_size(rq);
  check(!rq.init_image.defined(), "[flux] image-to-image is not implemented for FLUX");
  ImageResult res;
  res.sampler = rq.sampler.empty() ? default_sampler() : rq.sampler;
  check(res.sampler == "flow_euler", "[flux] the sampler '", rq.sampler,
        "' is not FLUX's (flow_euler: flow-matching Euler)");
  res.steps = rq.steps > 0 ? rq.steps : default_steps();
  check(res.steps <= 1000, "[flux] ", res.steps, " steps (at most 1000)");
  const float guidance = static_cast<float>(rq.guidance >= 0 ? rq.guidance : 3.5);
  res.cfg_scale = dev() ? guidance : 0.0;
  res.seed = rq.seed;
  res.plan = plan(rq, pool.size());
  res.plan.check_host_budget();

  const int64_t C = latent_channels(), h = rq.height / 8, w = rq.width / 8;
  const int64_t L = max_sequence_length(rq);
  Tensor noise;
  if (rq.init_noise.defined()) {
    check(rq.init_noise.shape() == Dims{C, h, w} && rq.init_noise.dtype() == DType::F32,
          "[flux] the initial noise has shape ", rq.init_noise.shape().str(), "; ", rq.width, "x",
          rq.height, " needs f32 ", Dims{C, h, w}.str());
    noise = rq.init_noise;
  } else {
    Rng rng(rq.seed, 0);
    noise = rng.normal({C, h, w});
  }

  // 1. The prompt.
  const auto t_text = Clock::now();
  const FluxPrompt prompt = text_.encode(rq.prompt, L, pool);
  res.timings.text_s = seconds_since(t_text);
  const Tensor txt_ids = Tensor::zeros({L, 3}, DType::F32);

  // 2. Packed noise, unscaled; the schedule for this sequence length.
  Tensor x = pack_latents(noise);
  const Tensor img_ids = latent_image_ids(h, w);
  const FlowSchedule s = flow_match_schedule(scheduler_, res.steps, x.size(0));

  // 3. The Euler loop. diffusers passes timestep / 1000 in float32.
  const auto t_loop = Clock::now();
  for (int64_t i = 0; i < res.steps; ++i) {
    const auto k = static_cast<size_t>(i);
    const float sigma_in = s.timesteps[k] / 1000.0f;
    const Tensor v = transformer_->forward(x, prompt.context, prompt.pooled, img_ids, txt_ids,
                                           sigma_in, guidance, pool);
    flow_euler_step(v.contiguous(), s.sigmas[k], s.sigmas[k + 1], x);
    ++res.timings.steps_run;
    if (progress) progress({.step = i + 1, .steps = res.steps, .seconds = seconds_since(t_loop)});
  }
  res.timings.denoise_s = seconds_since(t_loop);
  res.latents = unpack_latents(x, h, w);

  // 4. Decode latents / scaling_factor + shift_factor.
  const auto t_dec = Clock::now();
  const float scaling = vae_->config().scaling_factor, shift = vae_->config().shift_factor;
  Tensor z = Tensor::empty({1, C, h, w}, DType::F32);
  for (int64_t i = 0; i < z.numel(); ++i)
    z.data<float>()[i] = res.latents.data<float>()[i] / scaling + shift;
  const vae::Tiles tiles{.tile = res.plan.request.vae_tile, .overlap = res.plan.vae_overlap};
  res.image = vae_->decode(z, pool, tiles).select(0, 0).contiguous();
  res.timings.decode_s = seconds_since(t_dec);
  return res;
}

}  // namespace

std::unique_ptr<ImagePipeline> make_flux_pipeline(FluxFiles files, Device device) {
  // The files' tensors are views of their mappings; what the parts copy at build is measured
  // from here.
  const int64_t heap_before = memory_tracker().stats().heap_current;
  return std::make_unique<FluxPipeline>(std::move(files), device, heap_before);
}

}  // namespace eight::diffusion

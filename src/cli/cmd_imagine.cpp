// `eight imagine -m MODEL -p PROMPT [options]`: text-to-image (and image-to-image) with SDXL.
// Progress goes to stderr; with --json one object is printed on stdout at the end.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "formats/npy.h"
#include "formats/png.h"
#include "ops/device.h"
#include "runtime/diffusion/image_pipeline.h"
#include "runtime/store/sha256.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

diffusion::LoraSpec parse_lora(const std::string& spec) {
  // FILE[:SCALE]; a colon that is part of the path (C:\...) is kept when no number follows.
  diffusion::LoraSpec l{spec, 1.0f};
  const auto colon = spec.rfind(':');
  if (colon != std::string::npos && colon + 1 < spec.size()) {
    try {
      size_t used = 0;
      const float s = std::stof(spec.substr(colon + 1), &used);
      if (used == spec.size() - colon - 1) l = {spec.substr(0, colon), s};
    } catch (const std::exception&) {
    }
  }
  return l;
}

// A1111's original model hash, which its PNG Info still reads: the first 8 hex digits of SHA-256
// over the 64 KiB at offset 1 MiB of the checkpoint file. (Its newer 10-digit hash covers the whole
// file: seconds on every run for a 7 GB checkpoint, which A1111 caches and eight does not.) ""
// for folders and files shorter than that.
std::string a1111_model_hash(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return {};
  std::ifstream f(path, std::ios::binary);
  std::string block(0x10000, '\0');
  f.seekg(0x100000);
  f.read(block.data(), static_cast<std::streamsize>(block.size()));
  if (f.gcount() != static_cast<std::streamsize>(block.size())) return {};
  Sha256 h;
  h.update(block);
  return h.hex_digest().substr(0, 8);
}

// A1111's "parameters" text: the prompt, "Negative prompt: ...", then "Key: value" pairs.
std::string a1111_parameters(const diffusion::ImageRequest& rq, const diffusion::ImageResult& r,
                             const diffusion::ImagePipeline& p, const std::string& model_path) {
  std::string s = rq.prompt + "\n";
  if (!rq.negative_prompt.empty()) s += "Negative prompt: " + rq.negative_prompt + "\n";
  s += cat("Steps: ", r.steps, ", Sampler: ", r.sampler, ", CFG scale: ", r.cfg_scale,
           ", Seed: ", r.seed, ", Size: ", rq.width, "x", rq.height);
  if (const std::string hash = a1111_model_hash(model_path); !hash.empty())
    s += ", Model hash: " + hash;
  s += ", Model: " + p.name();
  for (const auto& l : p.loras()) s += cat(", Lora: ", l.path, ":", l.scale);
  if (rq.init_image.defined()) s += cat(", Denoising strength: ", rq.strength);
  return s + ", Version: eight";
}

int run(int argc, char** argv) {
  ArgParser p("imagine", "-m MODEL -p PROMPT [options]",
              "Generate an image from a text prompt with SDXL (base, Turbo, LCM) or FLUX.1 "
              "(schnell, dev), from a diffusers folder or a single-file checkpoint.");
  std::string model, prompt, negative, sampler, vae, base, init_image, init_noise, save_latents;
  std::string out = "eight.png", ram;
  diffusion::SeparateFiles separate;
  int64_t max_sequence_length = 0;
  double guidance = -1;
  std::vector<std::string> loras;
  int64_t width = 512, height = 512, steps = 0, seed = -1, vae_tile = -1;
  double cfg = -1, strength = 0.8;
  int threads = 0;
  bool json = false;
  p.option("-m,--model", &model, "MODEL",
           "a diffusers folder, a .safetensors or .gguf file, or a name");
  p.option("-p,--prompt", &prompt, "TEXT", "what to draw");
  p.option("-n,--negative-prompt", &negative, "TEXT", "what to avoid (default: none)");
  p.option("-W,--width", &width, "N", "image width, a multiple of 32 (default 512)");
  p.option("-H,--height", &height, "N", "image height, a multiple of 32 (default 512)");
  p.option("--steps", &steps, "N",
           "denoising steps (default: 20; 4 for lcm, Turbo and FLUX schnell; 28 for FLUX dev)");
  p.option("--cfg-scale", &cfg, "F",
           "classifier-free guidance (default: 5; 1 for lcm and Turbo, which skips the "
           "unconditional pass)");
  p.option("--sampler", &sampler, "NAME",
           "euler|euler_a|dpm++2m|lcm|ddim (default: the folder's scheduler, else euler); "
           "FLUX: flow_euler only");
  p.option("--seed", &seed, "N", "noise seed (default: random; printed)");
  p.option("--lora", &loras, "FILE[:SCALE]", "a LoRA to apply (repeatable)");
  p.option("--vae", &vae, "FILE",
           "a separate VAE (e.g. the fp16-fix VAE; FLUX: BFL's ae.safetensors)");
  p.option("--base", &base, "MODEL",
           "for a GGUF that holds only a UNet (ComfyUI-GGUF files): the SDXL model (folder, "
           "single file or whole-checkpoint GGUF) whose text encoders and VAE to use");
  p.option("--clip-l", &separate.clip_l, "FILE",
           "FLUX: the CLIP-L text encoder (clip_l.safetensors, Hugging Face CLIPTextModel names) "
           "for a single-file transformer (-m flux1-schnell.safetensors)");
  p.option("--t5xxl", &separate.t5xxl, "FILE",
           "FLUX: the T5 encoder (t5xxl_fp16.safetensors, Hugging Face T5EncoderModel names)");
  p.option("--tokenizer", &separate.tokenizer, "DIR",
           "FLUX: the CLIP tokenizer folder (vocab.json + merges.txt or tokenizer.json; default: "
           "eight's built-in OpenAI CLIP vocabulary)");
  p.option("--tokenizer-2", &separate.tokenizer_2, "PATH",
           "FLUX: the T5 tokenizer (spiece.model, tokenizer.json or a folder with one; default: "
           "one beside --t5xxl or in the -m folder)");
  p.option("--max-sequence-length", &max_sequence_length, "N",
           "FLUX: T5 prompt tokens (default: 256 for schnell, 512 for dev)");
  p.option("--guidance", &guidance, "F",
           "FLUX dev: the distilled guidance scale (default 3.5; schnell has none)");
  p.option("--init-image", &init_image, "FILE", "start from this image (img2img)");
  p.option("--strength", &strength, "S", "img2img: how much of the schedule runs (default 0.8)");
  p.option("--init-noise", &init_noise, "FILE.npy",
           "float32 [C, H/8, W/8] unit-variance initial noise instead of the seed's (FLUX: "
           "[16, H/8, W/8], packed 2x2 and not scaled)");
  p.option("--save-latents", &save_latents, "FILE.npy",
           "write the final latents (float32 [C, H/8, W/8]) before the VAE's scaling (and "
           "FLUX's shift) are undone");
  p.option("-o,--output", &out, "OUT.png", "the image to write (default eight.png)");
  p.option("-t,--threads", &threads, "N", "threads (default: EIGHT_THREADS or all cores)");
  std::string device = "auto";
  p.option("--device", &device, "DEV",
           "where the models run: auto (default: the best GPU, else the CPU), cpu, vulkan or "
           "vulkan:N (see eight devices)");
  p.option("--ram", &ram, "SIZE",
           "RAM budget: runs the plan says exceed it are refused (default: RAM minus 1 GiB)");
  std::string vram;
  p.option("--vram", &vram, "SIZE",
           "GPU memory budget on a GPU device: runs the plan says exceed it are refused (default: "
           "the device's memory less the driver's reserve)");
  p.option("--vae-tile", &vae_tile, "N",
           "VAE decode tile in latent pixels (default: tiles only when the plan needs them; 0 "
           "whole)");
  p.flag("--json", &json, "print one JSON object at the end (output, seed, timings)");
  p.epilog(
      "Seeds drive eight's own generator (Philox, see docs/diffusion.md): the same seed gives the\n"
      "same image on every run and thread count, but not the image diffusers or ComfyUI give for\n"
      "that seed; pass their noise with --init-noise to compare.\n\n"
      "GGUF: whole checkpoints as stable-diffusion.cpp's `sd convert` and `eight convert` write\n"
      "them run alone; a UNet-only GGUF needs --base for the text encoders and VAE.\n\n"
      "example:\n  eight imagine -m sd_xl_turbo_1.0_fp16.safetensors -p \"a red fox in snow\" "
      "-o fox.png\n"
      "  eight imagine -m sdxl-unet-Q4_K_M.gguf --base sd_xl_base_1.0.safetensors -p \"a fox\"\n"
      "  eight imagine -m flux1-schnell.safetensors --clip-l clip_l.safetensors --t5xxl "
      "t5xxl_fp16.safetensors --vae ae.safetensors --tokenizer-2 spiece.model -p \"a fox\"\n\n"
      "FLUX: flow-matching Euler (--sampler flow_euler), 4 steps for schnell, no CFG (--cfg-scale "
      "is ignored); -W/-H multiples of 16.\n");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!model.empty(), "a model is required (-m MODEL)");
  check(!prompt.empty() || p.given("--prompt"), "a prompt is required (-p PROMPT)");
  check(steps >= 0 && steps <= 1000, "--steps ", steps, " is outside [1, 1000]");
  check(!p.given("--strength") || !init_image.empty(), "--strength needs --init-image");

  diffusion::ImageRequest rq;
  rq.prompt = prompt;
  rq.negative_prompt = negative;
  rq.width = width;
  rq.height = height;
  rq.steps = steps;
  rq.cfg_scale = cfg;
  rq.sampler = sampler;
  rq.strength = strength;
  rq.vae_tile = vae_tile;
  check(max_sequence_length >= 0 && max_sequence_length <= 512, "--max-sequence-length ",
        max_sequence_length, " is outside [1, 512]");
  rq.max_sequence_length = max_sequence_length;
  rq.guidance = guidance;
  if (!ram.empty()) rq.ram_budget = parse_bytes(ram);
  if (!vram.empty()) rq.vram_budget = parse_bytes(vram);
  if (seed < 0)
    seed = static_cast<int64_t>(std::chrono::system_clock::now().time_since_epoch().count() &
                                0x7fffffff);
  rq.seed = static_cast<uint64_t>(seed);
  if (!init_noise.empty()) rq.init_noise = npy::read(init_noise);
  if (!init_image.empty()) {
    const image::Image im = image::load(init_image);
    check(
        (im.width == width && im.height == height) || (!p.given("--width") && !p.given("--height")),
        "[imagine] the init image is ", im.width, "x", im.height, ", not the requested ", width,
        "x", height);
    rq.width = im.width;
    rq.height = im.height;
    rq.init_image = diffusion::from_rgb8(reinterpret_cast<const uint8_t*>(im.rgb.data<int8_t>()),
                                         im.width, im.height);
  }

  const auto t0 = std::chrono::steady_clock::now();
  diffusion::ImageLoadOptions lo{.path = resolve_model_path(model),
                                 .vae_path = vae,
                                 .loras = {},
                                 .base_path = base.empty() ? base : resolve_model_path(base),
                                 .device = ops::choose_device(device),
                                 .separate = separate};
  for (const auto& l : loras) lo.loras.push_back(parse_lora(l));
  auto pipe = diffusion::ImagePipeline::load(lo);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ThreadPool& pool = global_thread_pool(threads);
  std::fprintf(stderr, "%s on %s: %lldx%lld, seed %lld\n", pipe->name().c_str(),
               pipe->device().name().c_str(), static_cast<long long>(rq.width),
               static_cast<long long>(rq.height), static_cast<long long>(seed));
  auto progress = [](const diffusion::StepProgress& s) {
    const int width_bar = 30;
    const auto done = static_cast<int>(width_bar * s.step / std::max<int64_t>(1, s.steps));
    std::fprintf(stderr, "\r[%-*s] %lld/%lld  %.2f s/it", width_bar,
                 std::string(static_cast<size_t>(done), '#').c_str(),
                 static_cast<long long>(s.step), static_cast<long long>(s.steps),
                 s.seconds / static_cast<double>(std::max<int64_t>(1, s.step)));
    if (s.step == s.steps) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  diffusion::ImageResult r = pipe->generate(rq, pool, progress);
  r.timings.load_s = load_s;

  if (!save_latents.empty()) npy::write(save_latents, r.latents);
  const std::vector<uint8_t> rgb = diffusion::to_rgb8(r.image);
  image::write_png(out, rgb, static_cast<int>(rq.width), static_cast<int>(rq.height),
                   {{"parameters", a1111_parameters(rq, r, *pipe, lo.path)}});
  if (json) {
    nlohmann::json lora_list = nlohmann::json::array();
    for (const auto& l : pipe->loras()) lora_list.push_back({{"name", l.path}, {"scale", l.scale}});
    const nlohmann::json j = {
        {"output", out},
        {"seed", r.seed},
        {"width", rq.width},
        {"height", rq.height},
        {"steps", r.steps},
        {"sampler", r.sampler},
        {"cfg_scale", r.cfg_scale},
        {"model", pipe->name()},
        {"device", pipe->device().name()},
        {"planned_peak", r.plan.host_peak()},
        {"vae_tile", r.plan.request.vae_tile},
        {"loras", lora_list},
        {"latents", save_latents.empty() ? nlohmann::json(nullptr) : nlohmann::json(save_latents)},
        {"timings",
         {{"load_s", r.timings.load_s},
          {"text_s", r.timings.text_s},
          {"denoise_s", r.timings.denoise_s},
          {"s_per_step", r.timings.steps_run
                             ? r.timings.denoise_s / static_cast<double>(r.timings.steps_run)
                             : 0.0},
          {"decode_s", r.timings.decode_s}}}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("wrote %s (%lldx%lld, %s, %lld steps, cfg %g, seed %lld) in %.1f s\n", out.c_str(),
                static_cast<long long>(rq.width), static_cast<long long>(rq.height),
                r.sampler.c_str(), static_cast<long long>(r.steps), r.cfg_scale,
                static_cast<long long>(r.seed),
                r.timings.text_s + r.timings.denoise_s + r.timings.decode_s);
  }
  return 0;
}

const Registration reg({.name = "imagine",
                        .summary = "generate an image from a prompt (SDXL, Turbo, LCM)",
                        .run = run,
                        .order = 55});

}  // namespace
}  // namespace eight::cli

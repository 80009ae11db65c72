// Reading SDXL checkpoints: diffusers directories (model_index.json with one folder per
// component) and Stability's single files (renamed to diffusers' names by models/sdxl).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "formats/safetensors.h"
#include "models/sdxl/lora.h"
#include "models/sdxl/single_file.h"
#include "runtime/diffusion/sdxl_parts.h"

namespace eight::diffusion {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[sdxl] cannot open '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_json(const fs::path& p) {
  try {
    return json::parse(read_text(p));
  } catch (const json::exception& e) {
    fail("[sdxl] '", p.string(), "' is not valid JSON: ", e.what());
  }
}

// The weights of one component folder: diffusers writes diffusion_pytorch_model.safetensors
// (unet, vae) or model.safetensors (text encoders), optionally as an .fp16 variant and/or sharded
// with an .index.json.
NamedTensors read_folder_weights(const fs::path& dir) {
  for (const char* stem : {"diffusion_pytorch_model", "model"})
    for (const char* variant : {"", ".fp16"})
      for (const char* ext : {".safetensors", ".safetensors.index.json"}) {
        const fs::path f = dir / (std::string(stem) + variant + ext);
        if (!fs::exists(f)) continue;
        const auto ckpt = safetensors::Checkpoint::open(f.string());
        NamedTensors w;
        for (const auto& n : ckpt.names()) {
          if (n.ends_with("position_ids")) continue;  // a buffer older checkpoints carry
          w.emplace(n, ckpt.tensor(n));
        }
        return w;
      }
  fail("[sdxl] '", dir.string(),
       "' holds no diffusion_pytorch_model.safetensors or model.safetensors (PyTorch .bin "
       "folders are not read: convert them to safetensors)");
}

std::string pad_token_of(const fs::path& dir, const std::string& fallback) {
  for (const char* file : {"special_tokens_map.json", "tokenizer_config.json"}) {
    if (!fs::exists(dir / file)) continue;
    const json j = parse_json(dir / file);
    auto it = j.find("pad_token");
    if (it == j.end()) continue;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
      return (*it)["content"].get<std::string>();
  }
  return fallback;
}

std::optional<text::CLIPTokenizer> read_tokenizer(const fs::path& dir) {
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return text::CLIPTokenizer::from_vocab_json(read_text(dir / "vocab.json"),
                                                read_text(dir / "merges.txt"));
  if (fs::exists(dir / "tokenizer.json"))
    return text::CLIPTokenizer::from_tokenizer_json(read_text(dir / "tokenizer.json"));
  return std::nullopt;
}

std::string config_of(const fs::path& dir) {
  return fs::exists(dir / "config.json") ? read_text(dir / "config.json") : std::string();
}

SDXLFiles read_directory(const fs::path& root) {
  SDXLFiles f;
  f.path = root.string();
  f.name = root.filename().string();
  if (f.name.empty()) f.name = root.parent_path().filename().string();
  f.is_directory = true;
  const json index = parse_json(root / "model_index.json");
  const std::string cls = index.value("_class_name", std::string());
  check(cls.find("StableDiffusionXL") != std::string::npos, "[sdxl] '", f.path,
        "' is a diffusers '", cls,
        "' folder; eight runs StableDiffusionXL pipelines from diffusers folders");
  if (auto it = index.find("force_zeros_for_empty_prompt"); it != index.end() && it->is_boolean())
    f.force_zeros_for_empty_prompt = it->get<bool>();
  for (const char* part : {"unet", "vae", "text_encoder", "text_encoder_2", "scheduler"})
    check(fs::is_directory(root / part), "[sdxl] '", f.path, "' has no ", part, "/ folder");
  f.unet = read_folder_weights(root / "unet");
  f.unet_config = config_of(root / "unet");
  f.vae = read_folder_weights(root / "vae");
  f.vae_config = config_of(root / "vae");
  f.text_encoder = read_folder_weights(root / "text_encoder");
  f.text_encoder_config = config_of(root / "text_encoder");
  f.text_encoder_2 = read_folder_weights(root / "text_encoder_2");
  f.text_encoder_2_config = config_of(root / "text_encoder_2");
  f.scheduler_config = read_text(root / "scheduler" / "scheduler_config.json");
  f.tokenizer = read_tokenizer(root / "tokenizer");
  f.tokenizer_2 = read_tokenizer(root / "tokenizer_2");
  f.pad_token = pad_token_of(root / "tokenizer", f.pad_token);
  f.pad_token_2 = pad_token_of(root / "tokenizer_2", f.pad_token_2);
  return f;
}

SDXLFiles read_single_file(const fs::path& file) {
  SDXLFiles f;
  f.path = file.string();
  f.name = file.filename().string();
  const auto ckpt = safetensors::Checkpoint::open(f.path);
  check(sdxl::is_sdxl_single_file(ckpt), "[sdxl] '", f.path,
        "' is not an SDXL checkpoint in Stability's layout (no model.diffusion_model.* with "
        "conditioner.embedders.*)");
  sdxl::Components c = sdxl::split_single_file(ckpt);
  f.unet = std::move(c.unet);
  f.vae = std::move(c.vae);
  f.text_encoder = std::move(c.text_encoder);
  f.text_encoder_2 = std::move(c.text_encoder_2);
  return f;
}

// A separate VAE file: diffusers' vae/ names, the original LDM names, or either under
// first_stage_model. (as some full checkpoints are saved as VAE overrides).
NamedTensors read_vae_file(const fs::path& path) {
  if (fs::is_directory(path)) return read_folder_weights(path);
  const auto ckpt = safetensors::Checkpoint::open(path.string());
  return sdxl::vae_from_file(ckpt);
}

}  // namespace

SchedulerConfig single_file_scheduler_config(const std::string& sampler, bool turbo) {
  SchedulerConfig c;
  c.class_name = "EulerDiscreteScheduler";
  c.num_train_timesteps = 1000;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = BetaSchedule::ScaledLinear;
  c.steps_offset = 1;
  c.prediction_type = Prediction::Epsilon;
  if (turbo)
    c.timestep_spacing = TimestepSpacing::Trailing;
  else if (sampler == "lcm" || sampler == "ddim")
    c.timestep_spacing = TimestepSpacing::Leading;
  else
    c.timestep_spacing = TimestepSpacing::Linspace;
  c.use_karras_sigmas = sampler == "dpm++2m" && !turbo;
  c.clip_sample = false;
  c.set_alpha_to_one = false;
  return c;
}

SDXLFiles read_sdxl_files(const std::string& path, const std::string& vae_path) {
  const fs::path p(path);
  check(fs::exists(p), "[sdxl] '", path, "' does not exist");
  SDXLFiles f;
  if (fs::is_directory(p)) {
    check(fs::exists(p / "model_index.json"), "[sdxl] '", path,
          "' is a folder without model_index.json (not a diffusers pipeline)");
    f = read_directory(p);
  } else {
    f = read_single_file(p);
  }
  if (!vae_path.empty()) {
    check(fs::exists(vae_path), "[sdxl] the VAE '", vae_path, "' does not exist");
    f.vae = read_vae_file(vae_path);
    f.vae_config.clear();
    if (fs::is_directory(vae_path)) f.vae_config = config_of(vae_path);
  }
  return f;
}

void apply_loras(SDXLFiles& files, const std::vector<LoraSpec>& loras) {
  if (loras.empty()) return;
  ThreadPool pool(default_thread_count());
  for (const auto& spec : loras) {
    check(fs::is_regular_file(spec.path), "[sdxl] the LoRA '", spec.path, "' is not a file");
    check(std::isfinite(spec.scale), "[sdxl] the LoRA '", spec.path,
          "' has a scale that is not finite");
    const auto file = safetensors::File::open(spec.path);
    sdxl::Components c{.unet = std::move(files.unet),
                       .vae = {},
                       .text_encoder = std::move(files.text_encoder),
                       .text_encoder_2 = std::move(files.text_encoder_2)};
    // The maps go back to `files` whether or not the LoRA applies.
    struct Restore {
      SDXLFiles& f;
      sdxl::Components& c;
      ~Restore() {
        f.unet = std::move(c.unet);
        f.text_encoder = std::move(c.text_encoder);
        f.text_encoder_2 = std::move(c.text_encoder_2);
      }
    } restore{files, c};
    const auto modules = sdxl::read_lora(file, c);
    sdxl::apply_lora(c, modules, spec.scale, &pool);
    files.loras.push_back({fs::path(spec.path).stem().string(), spec.scale});
    log_debug("[sdxl] LoRA ", spec.path, ": ", modules.size(), " modules at scale ", spec.scale);
  }
}

}  // namespace eight::diffusion

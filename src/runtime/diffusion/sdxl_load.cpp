// Reading SDXL checkpoints: diffusers directories (model_index.json with one folder per
// component) and Stability's single files (renamed to diffusers' names by models/sdxl).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "core/log.h"
#include "core/storage.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "models/sdxl/lora.h"
#include "models/sdxl/sdxl_gguf.h"
#include "models/sdxl/single_file.h"
#include "runtime/diffusion/sdxl_parts.h"

namespace eight::diffusion {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json parse_json(const fs::path& p) {
  try {
    return json::parse(read_small_file(p.string(), "[sdxl]"));
  } catch (const json::exception& e) {
    fail("[sdxl] '", p.string(), "' is not valid JSON: ", e.what());
  }
}

}  // namespace

// The weights of one component folder: diffusers writes diffusion_pytorch_model.safetensors
// (unet, vae) or model.safetensors (text encoders), optionally as an .fp16 variant and/or sharded
// with an .index.json.
NamedTensors read_folder_weights(const fs::path& dir, int64_t* file_bytes) {
  for (const char* stem : {"diffusion_pytorch_model", "model"})
    for (const char* variant : {"", ".fp16"})
      for (const char* ext : {".safetensors", ".safetensors.index.json"}) {
        const fs::path f = dir / (std::string(stem) + variant + ext);
        if (!fs::exists(f)) continue;
        const auto ckpt = safetensors::Checkpoint::open(f.string());
        if (file_bytes) {
          *file_bytes = 0;
          for (const auto& file : ckpt.files())
            *file_bytes += static_cast<int64_t>(fs::file_size(file.path()));
        }
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

std::optional<text::CLIPTokenizer> read_clip_tokenizer(const fs::path& dir) {
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return text::CLIPTokenizer::from_vocab_json(
        read_small_file((dir / "vocab.json").string(), "[sdxl]"),
        read_small_file((dir / "merges.txt").string(), "[sdxl]"));
  if (fs::exists(dir / "tokenizer.json"))
    return text::CLIPTokenizer::from_tokenizer_json(
        read_small_file((dir / "tokenizer.json").string(), "[sdxl]"));
  return std::nullopt;
}

std::string config_of(const fs::path& dir) {
  return fs::exists(dir / "config.json") ? read_small_file((dir / "config.json").string(), "[sdxl]")
                                         : std::string();
}

namespace {

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
  f.unet = read_folder_weights(root / "unet", &f.unet_file_bytes);
  f.unet_config = config_of(root / "unet");
  f.vae = read_folder_weights(root / "vae", &f.vae_file_bytes);
  f.vae_config = config_of(root / "vae");
  f.text_encoder = read_folder_weights(root / "text_encoder", &f.text_encoder_file_bytes);
  f.text_encoder_config = config_of(root / "text_encoder");
  f.text_encoder_2 = read_folder_weights(root / "text_encoder_2", &f.text_encoder_2_file_bytes);
  f.text_encoder_2_config = config_of(root / "text_encoder_2");
  f.scheduler_config =
      read_small_file((root / "scheduler" / "scheduler_config.json").string(), "[sdxl]");
  f.tokenizer = read_clip_tokenizer(root / "tokenizer");
  f.tokenizer_2 = read_clip_tokenizer(root / "tokenizer_2");
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
  f.unet_file_bytes = static_cast<int64_t>(fs::file_size(file));
  sdxl::Components c = sdxl::split_single_file(ckpt);
  f.unet = std::move(c.unet);
  f.vae = std::move(c.vae);
  f.text_encoder = std::move(c.text_encoder);
  f.text_encoder_2 = std::move(c.text_encoder_2);
  return f;
}

bool is_gguf_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

// A GGUF: a whole checkpoint, or a UNet alone (unet_only set, the other parts empty).
SDXLFiles read_gguf(const fs::path& file, bool* unet_only) {
  SDXLFiles f;
  f.path = file.string();
  f.name = file.filename().string();
  const auto g = gguf::File::open(f.path);
  f.unet_file_bytes = static_cast<int64_t>(fs::file_size(file));
  *unet_only = sdxl::gguf_contents(g) == sdxl::GGUFContents::unet_only;
  sdxl::Components c = sdxl::split_gguf(g);
  f.unet = std::move(c.unet);
  f.vae = std::move(c.vae);
  f.text_encoder = std::move(c.text_encoder);
  f.text_encoder_2 = std::move(c.text_encoder_2);
  return f;
}

// A directory, a single file or a whole-checkpoint GGUF; unet_only as read_gguf.
SDXLFiles read_any(const fs::path& p, bool* unet_only) {
  *unet_only = false;
  if (fs::is_directory(p)) {
    check(fs::exists(p / "model_index.json"), "[sdxl] '", p.string(),
          "' is a folder without model_index.json (not a diffusers pipeline)");
    return read_directory(p);
  }
  if (is_gguf_file(p)) return read_gguf(p, unet_only);
  return read_single_file(p);
}

// A separate VAE file: diffusers' vae/ names, the original LDM names, or either under
// first_stage_model. (as some full checkpoints are saved as VAE overrides).
NamedTensors read_vae_file(const fs::path& path, int64_t* file_bytes) {
  if (fs::is_directory(path)) return read_folder_weights(path, file_bytes);
  *file_bytes = static_cast<int64_t>(fs::file_size(path));
  const auto ckpt = safetensors::Checkpoint::open(path.string());
  return sdxl::vae_from_file(ckpt);
}

}  // namespace

bool is_sdxl_file(const std::string& path) {
  const fs::path p(path);
  if (!fs::is_regular_file(p)) return false;
  if (is_gguf_file(p))
    return sdxl::gguf_contents(gguf::File::open(path)) != sdxl::GGUFContents::unknown;
  if (p.extension() != ".safetensors") return false;
  return sdxl::is_sdxl_single_file(safetensors::Checkpoint::open(path));
}

ImageModelDesc describe_sdxl(const std::string& path, const std::string& base_path) {
  return image_model_desc(read_sdxl_files(path, {}, base_path));
}

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

ImageModelDesc image_model_desc(const SDXLFiles& f) {
  ImageModelDesc d;
  d.name = f.name;
  d.path = f.path;
  auto component = [](const NamedTensors& w, const std::string& config, int64_t bytes) {
    ImageComponent c;
    for (const auto& [name, t] : w) {
      c.tensors[name] = {t.shape(), t.dtype()};
      // A tensor of its own on the heap (a merged LoRA, a GGUF tensor decoded at load), not a
      // view of a file mapping.
      if (dynamic_cast<const HostStorage*>(t.storage().get()))
        c.heap_bytes += static_cast<int64_t>(t.nbytes());
    }
    c.config = config;
    c.file_bytes = bytes;
    return c;
  };
  d.unet = component(f.unet, f.unet_config, f.unet_file_bytes);
  d.vae = component(f.vae, f.vae_config, f.vae_file_bytes);
  d.text_encoder = component(f.text_encoder, f.text_encoder_config, f.text_encoder_file_bytes);
  d.text_encoder_2 =
      component(f.text_encoder_2, f.text_encoder_2_config, f.text_encoder_2_file_bytes);
  return d;
}

SDXLFiles read_sdxl_files(const std::string& path, const std::string& vae_path,
                          const std::string& base_path) {
  const fs::path p(path);
  check(fs::exists(p), "[sdxl] '", path, "' does not exist");
  bool unet_only = false;
  SDXLFiles f = read_any(p, &unet_only);
  if (unet_only) {
    check(!base_path.empty(), "[sdxl] '", path,
          "' holds only a UNet; pass --base MODEL (an SDXL single file, diffusers folder or "
          "whole-checkpoint GGUF) for the text encoders and VAE");
    check(fs::exists(base_path), "[sdxl] the base model '", base_path, "' does not exist");
    bool base_unet_only = false;
    SDXLFiles base = read_any(base_path, &base_unet_only);
    check(!base_unet_only, "[sdxl] the base model '", base_path,
          "' holds only a UNet too; it must bring the text encoders and VAE");
    // The UNet is this file's (its architecture read from its shapes); the rest, scheduler and
    // tokenizers included, the base's.
    base.unet = std::move(f.unet);
    base.unet_config.clear();
    // The mapped bytes the run touches: this file's UNet, and of a single-file or GGUF base only
    // its other parts (a folder base's unet/ files are unmapped once its UNet is dropped).
    if (!fs::is_directory(base_path)) {
      auto bytes_of = [](const NamedTensors& w) {
        int64_t b = 0;
        for (const auto& [name, t] : w) b += static_cast<int64_t>(t.nbytes());
        return b;
      };
      base.vae_file_bytes = bytes_of(base.vae);
      base.text_encoder_file_bytes = bytes_of(base.text_encoder);
      base.text_encoder_2_file_bytes = bytes_of(base.text_encoder_2);
    }
    base.unet_file_bytes = f.unet_file_bytes;
    base.name = f.name;
    base.path = f.path;
    f = std::move(base);
  } else {
    check(base_path.empty(), "[sdxl] --base is for a GGUF that holds only a UNet; '", path,
          "' brings its own text encoders and VAE");
  }
  if (!vae_path.empty()) {
    check(fs::exists(vae_path), "[sdxl] the VAE '", vae_path, "' does not exist");
    f.vae = read_vae_file(vae_path, &f.vae_file_bytes);
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

// Reading FLUX.1 models: diffusers FluxPipeline directories, and BFL's single-file transformer
// with the CLIP-L, T5 and autoencoder files people download for ComfyUI (see flux_parts.h).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "core/storage.h"
#include "formats/safetensors.h"
#include "models/sdxl/single_file.h"
#include "runtime/diffusion/flux_parts.h"

namespace eight::diffusion {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kComfyPrefix = "model.diffusion_model.";

// The prefix under which `names` hold a FLUX transformer in BFL's or diffusers' naming ("" or
// ComfyUI's), or nullopt.
std::optional<std::string> flux_prefix(const std::vector<std::string>& names) {
  for (const std::string& prefix : {std::string(), std::string(kComfyPrefix)})
    for (const char* probe :
         {"double_blocks.0.img_mod.lin.weight", "transformer_blocks.0.norm1_context.linear.weight"})
      for (const auto& n : names)
        if (n == prefix + probe) return prefix;
  return std::nullopt;
}

bool is_safetensors_file(const fs::path& p) {
  return fs::is_regular_file(p) && p.extension() == ".safetensors";
}

int64_t size_of(const fs::path& p) {
  if (fs::is_regular_file(p)) return static_cast<int64_t>(fs::file_size(p));
  int64_t n = 0;
  for (const auto& e : fs::directory_iterator(p))
    if (e.is_regular_file() && e.path().extension() == ".safetensors")
      n += static_cast<int64_t>(e.file_size());
  return n;
}

bool is_flux_file(const fs::path& p) {
  if (!is_safetensors_file(p)) return false;
  return flux_prefix(safetensors::Checkpoint::open(p.string()).names()).has_value();
}

// A directory of separate files: the one FLUX transformer .safetensors in it.
std::optional<fs::path> flux_file_in(const fs::path& dir) {
  std::optional<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir))
    if (is_flux_file(e.path())) {
      check(!found, "[flux] '", dir.string(), "' holds two FLUX transformers: '",
            found->filename().string(), "' and '", e.path().filename().string(), "'");
      found = e.path();
    }
  return found;
}

std::string pipeline_class(const fs::path& dir) {
  const fs::path index = dir / "model_index.json";
  if (!fs::exists(index)) return {};
  try {
    const json j = json::parse(read_small_file(index.string(), "[flux]"));
    return j.is_object() ? j.value("_class_name", std::string()) : std::string();
  } catch (const json::exception& e) {
    fail("[flux] '", index.string(), "' is not valid JSON: ", e.what());
  }
}

NamedTensors transformer_from_file(const fs::path& file) {
  const auto ckpt = safetensors::Checkpoint::open(file.string());
  const auto prefix = flux_prefix(ckpt.names());
  check(prefix.has_value(), "[flux] '", file.string(),
        "' is not a FLUX transformer (no double_blocks.0.img_mod.lin.weight in BFL's names nor "
        "transformer_blocks.0.norm1_context.linear.weight in diffusers', with or without '",
        kComfyPrefix, "')");
  NamedTensors w;
  for (const auto& n : ckpt.names())
    if (n.starts_with(*prefix)) w.emplace(n.substr(prefix->size()), ckpt.tensor(n));
  return w;
}

NamedTensors clip_from_file(const fs::path& file) {
  check(fs::is_regular_file(file), "[flux] the CLIP-L file '", file.string(), "' does not exist");
  const auto ckpt = safetensors::Checkpoint::open(file.string());
  NamedTensors w;
  for (const auto& n : ckpt.names())
    if (!n.ends_with("position_ids")) w.emplace(n, ckpt.tensor(n));
  check(w.count("text_model.embeddings.token_embedding.weight") &&
            w.count("text_model.final_layer_norm.weight"),
        "[flux] '", file.string(),
        "' is not a CLIP text model in Hugging Face's CLIPTextModel names (no "
        "text_model.embeddings.token_embedding.weight / text_model.final_layer_norm.weight)");
  return w;
}

void check_t5(const fs::path& p) {
  check(fs::exists(p), "[flux] the T5 encoder '", p.string(), "' does not exist");
  if (fs::is_directory(p)) return;  // t5::Encoder::load names what a folder lacks
  const auto ckpt = safetensors::Checkpoint::open(p.string());
  check(ckpt.has("encoder.block.0.layer.0.SelfAttention.q.weight"), "[flux] '", p.string(),
        "' is not a T5 encoder in Hugging Face's T5EncoderModel names (no "
        "encoder.block.0.layer.0.SelfAttention.q.weight)");
}

// The T5 tokenizer: the one given, else one beside the T5 file or in the model folder.
std::string t5_tokenizer_for(const FluxSources& s, const fs::path& t5, const fs::path& model_dir) {
  if (!s.tokenizer_2.empty()) {
    check(text::UnigramTokenizer::handles(s.tokenizer_2), "[flux] --tokenizer-2 '", s.tokenizer_2,
          "' is not a spiece.model, a tokenizer.json nor a folder holding one");
    return s.tokenizer_2;
  }
  for (const fs::path& dir : {fs::is_directory(t5) ? t5 : t5.parent_path(), model_dir})
    if (!dir.empty() && text::UnigramTokenizer::handles(dir.string())) return dir.string();
  fail(
      "[flux] no T5 tokenizer: give --tokenizer-2 PATH (spiece.model or tokenizer.json of "
      "google/t5-v1_1-xxl, or a folder holding one); eight does not fetch it by itself yet");
}

FluxFiles read_directory(const fs::path& root) {
  FluxFiles f;
  f.path = root.string();
  f.name =
      root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  f.is_directory = true;
  for (const char* part :
       {"transformer", "vae", "text_encoder", "text_encoder_2", "scheduler", "tokenizer_2"})
    check(fs::is_directory(root / part), "[flux] '", f.path, "' has no ", part, "/ folder");
  f.transformer = read_folder_weights(root / "transformer", &f.transformer_file_bytes);
  f.transformer_config = config_of(root / "transformer");
  f.vae = read_folder_weights(root / "vae", &f.vae_file_bytes);
  f.vae_config = config_of(root / "vae");
  f.clip = read_folder_weights(root / "text_encoder", &f.clip_file_bytes);
  f.clip_config = config_of(root / "text_encoder");
  f.t5_path = (root / "text_encoder_2").string();
  f.t5_file_bytes = size_of(root / "text_encoder_2");
  f.scheduler_config =
      read_small_file((root / "scheduler" / "scheduler_config.json").string(), "[flux]");
  if (fs::is_directory(root / "tokenizer")) {
    f.clip_tokenizer = read_clip_tokenizer(root / "tokenizer");
    f.clip_pad_token = pad_token_of(root / "tokenizer", f.clip_pad_token);
  }
  check(text::UnigramTokenizer::handles((root / "tokenizer_2").string()), "[flux] '", f.path,
        "/tokenizer_2' holds no spiece.model nor tokenizer.json");
  f.t5_tokenizer_path = (root / "tokenizer_2").string();
  return f;
}

FluxFiles read_separate(const fs::path& transformer, const FluxSources& s) {
  FluxFiles f;
  f.path = transformer.string();
  f.name = transformer.filename().string();
  check(!s.clip_l.empty() && !s.t5xxl.empty() && !s.vae.empty(), "[flux] '", f.path,
        "' is a FLUX transformer alone: give --clip-l FILE, --t5xxl FILE and --vae FILE (or use a "
        "diffusers FluxPipeline folder)");
  f.transformer = transformer_from_file(transformer);
  // A FluxTransformer2DModel config.json beside the file is used (as T5 files take theirs), for
  // transformers whose rotary split the shapes do not give (head sizes other than FLUX.1's 128).
  if (const std::string c = config_of(transformer.parent_path());
      c.find("\"FluxTransformer2DModel\"") != std::string::npos)
    f.transformer_config = c;
  f.transformer_file_bytes = size_of(transformer);
  f.clip = clip_from_file(s.clip_l);
  f.clip_file_bytes = size_of(s.clip_l);
  check_t5(s.t5xxl);
  f.t5_path = s.t5xxl;
  f.t5_file_bytes = size_of(s.t5xxl);
  check(fs::exists(s.vae), "[flux] the VAE '", s.vae, "' does not exist");
  if (fs::is_directory(s.vae)) {  // a diffusers vae/ folder
    f.vae = read_folder_weights(s.vae);
    f.vae_config = config_of(s.vae);
  } else {  // BFL's ae.safetensors (LDM names), or diffusers' names in one file
    f.vae = sdxl::vae_from_file(safetensors::Checkpoint::open(s.vae));
  }
  f.vae_file_bytes = size_of(s.vae);
  if (!s.tokenizer.empty()) {
    check(fs::is_directory(s.tokenizer), "[flux] --tokenizer '", s.tokenizer, "' is not a folder");
    f.clip_tokenizer = read_clip_tokenizer(s.tokenizer);
    check(f.clip_tokenizer.has_value(), "[flux] --tokenizer '", s.tokenizer,
          "' holds no vocab.json + merges.txt nor tokenizer.json");
    f.clip_pad_token = pad_token_of(s.tokenizer, f.clip_pad_token);
  }
  f.t5_tokenizer_path = t5_tokenizer_for(s, s.t5xxl, transformer.parent_path());
  return f;
}

}  // namespace

bool is_flux_model(const std::string& path) {
  const fs::path p(path);
  if (fs::is_directory(p))
    return pipeline_class(p).starts_with("Flux") ||
           (!fs::exists(p / "model_index.json") && flux_file_in(p).has_value());
  return is_flux_file(p);
}

FluxFiles read_flux_files(const std::string& path, const FluxSources& s) {
  const fs::path p(path);
  check(fs::exists(p), "[flux] '", path, "' does not exist");
  if (fs::is_directory(p) && fs::exists(p / "model_index.json")) {
    const std::string cls = pipeline_class(p);
    check(cls == "FluxPipeline", "[flux] '", path, "' is a diffusers '", cls,
          "' folder; eight runs FLUX from FluxPipeline folders");
    check(s.clip_l.empty() && s.t5xxl.empty() && s.vae.empty(), "[flux] '", path,
          "' is a FluxPipeline folder with its own text encoders and VAE; --clip-l, --t5xxl and "
          "--vae are for a single-file transformer");
    return read_directory(p);
  }
  if (!fs::is_directory(p)) return read_separate(p, s);
  // A folder of separate files: the transformer, and the parts by their usual names unless given.
  const auto transformer = flux_file_in(p);
  check(transformer.has_value(), "[flux] '", path,
        "' holds no model_index.json and no FLUX transformer .safetensors");
  FluxSources found = s;
  auto pick = [&](std::string& slot, std::initializer_list<const char*> names, const char* flag) {
    if (!slot.empty()) return;
    for (const char* n : names)
      if (fs::is_regular_file(p / n)) {
        slot = (p / n).string();
        return;
      }
    fail("[flux] '", path, "' has no ", *names.begin(), " (or give ", flag, " FILE)");
  };
  pick(found.clip_l, {"clip_l.safetensors"}, "--clip-l");
  pick(found.t5xxl,
       {"t5xxl_fp16.safetensors", "t5xxl.safetensors", "t5xxl_fp32.safetensors",
        "t5xxl_bf16.safetensors"},
       "--t5xxl");
  pick(found.vae, {"ae.safetensors", "vae.safetensors"}, "--vae");
  FluxFiles f = read_separate(*transformer, found);
  f.name = p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
  return f;
}

}  // namespace eight::diffusion

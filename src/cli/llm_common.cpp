#include "cli/llm_common.h"
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "formats/image.h"
#include "formats/whisper_ct2.h"
#include "models/llava/llava.h"
#include "models/llm/llm_hf.h"
#include "runtime/llm/kv_cache.h"
#include "runtime/llm/multimodal.h"
#include "runtime/store/store.h"

namespace eight::cli {

void ModelArgs::add_to(ArgParser& p, bool model_required) {
  p.option("-m,--model", &model, "MODEL",
           model_required ? "model file, store name or Hugging Face directory (required)"
                          : "model file, store name or Hugging Face directory (default: the "
                            "bundled demo model)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)");
  p.option("-c,--ctx", &ctx, "N",
           "context size in tokens (default: the model's trained context, capped by what fits)");
  p.option("--kv-type", &kv_type, "TYPE", "KV cache type: f16 (default), q8_0 or f32");
  p.option("--ubatch", &ubatch, "N", "tokens per forward pass while reading prompts (512)");
  p.option("--device", &device, "DEV",
           "where layers run: auto (default: the best GPU, else the CPU), cpu, vulkan or "
           "vulkan:N (see eight devices)");
  p.option("-ngl,--gpu-layers", &gpu_layers, "N",
           "decoder layers on the GPU (default: as many as the planner fits; more than the "
           "model has puts the output layer there too)");
  p.option("--vram", &vram, "SIZE",
           "GPU memory this run may use, e.g. 8GiB (default: the device's free memory; eight "
           "keeps 512 MiB of it for the driver)");
}

std::string ModelArgs::resolve(bool allow_default) const {
  if (model.empty()) {
    check(allow_default, "a model is required (-m MODEL)");
    return default_model_path();
  }
  // Directories: a Hugging Face LLM (a LLaVA-NeXT one among them) runs in place; CTranslate2
  // Whisper directories are models as they are (logits, bench and plan take them).
  check(!std::filesystem::is_directory(model) || whisper::is_ct2_dir(model) ||
            llm::is_hf_llm_dir(model),
        "-m ", model,
        " is a directory but neither a Hugging Face LLM (config.json of a llava_next, llama or "
        "mistral model with safetensors) nor a CTranslate2 Whisper model");
  return resolve_model_path(model);
}

SessionOptions ModelArgs::session_options() const {
  check(ubatch > 0 && ubatch <= 8192, "--ubatch must be in [1, 8192], got ", ubatch);
  check(ctx >= 0, "--ctx must be positive, got ", ctx);
  check(threads >= 0 && threads <= 1024, "--threads must be in [1, 1024], got ", threads);
  check(gpu_layers >= -1, "--gpu-layers must be >= 0, got ", gpu_layers);
  return {.n_ctx = ctx,
          .kv_type = parse_kv_type(kv_type),
          .ubatch = ubatch,
          .n_threads = threads,
          .device = device,
          .n_gpu_layers = gpu_layers,
          .vram = vram.empty() ? 0 : parse_bytes(vram)};
}

void SamplingArgs::add_to(ArgParser& p) {
  p.option("--temp", &temp, "T", "temperature; 0 = greedy (default 0.8)");
  p.option("--top-k", &top_k, "K", "keep the K most likely tokens; 0 = off (default 40)");
  p.option("--top-p", &top_p, "P", "nucleus sampling; 1 = off (default 0.95)");
  p.option("--min-p", &min_p, "P", "drop tokens below P × the best; 0 = off (default 0.05)");
  p.option("--repeat-penalty", &repeat_penalty, "X", "penalize recent tokens; 1 = off (default)");
  p.option("--presence-penalty", &presence_penalty, "X", "subtract X from seen tokens (0)");
  p.option("--frequency-penalty", &frequency_penalty, "X", "subtract X per occurrence (0)");
  p.option("--repeat-last-n", &repeat_last_n, "N", "window of the penalties (64)");
  p.option("--seed", &seed, "N", "random seed for reproducible output (default: from the clock)");
}

void GrammarArgs::add_to(ArgParser& p) {
  p.option("--grammar", &grammar_file, "FILE",
           "constrain the output to a GBNF grammar (llama.cpp's format; the rule 'root' starts)");
  p.option("--json-schema", &json_schema_file, "FILE",
           "constrain the output to JSON valid under this JSON schema (see docs/llm.md)");
}

void GrammarArgs::apply(GenerateParams& params, const text::Tokenizer& tok) const {
  if (grammar_file.empty() && json_schema_file.empty()) return;
  check(grammar_file.empty() || json_schema_file.empty(),
        "--grammar and --json-schema cannot be used together");
  const std::string& path = grammar_file.empty() ? json_schema_file : grammar_file;
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    if (!grammar_file.empty()) {
      params.grammar = text::Grammar::parse(body);
    } else {
      nlohmann::ordered_json schema;
      try {
        schema = nlohmann::ordered_json::parse(body);
      } catch (const nlohmann::ordered_json::parse_error& e) {
        fail("not valid JSON: ", e.what());
      }
      params.grammar = text::Grammar::from_json_schema(schema);
    }
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  params.grammar_vocab = text::GrammarVocab::from_tokenizer(tok);
}

SamplerParams SamplingArgs::params() const {
  check(top_p > 0 && top_p <= 1, "--top-p must be in (0, 1], got ", top_p);
  check(min_p >= 0 && min_p < 1, "--min-p must be in [0, 1), got ", min_p);
  check(temp >= 0, "--temp must be ≥ 0, got ", temp);
  check(repeat_penalty > 0, "--repeat-penalty must be > 0, got ", repeat_penalty);
  check(repeat_last_n >= 0, "--repeat-last-n must be ≥ 0, got ", repeat_last_n);
  const uint64_t s =
      seed >= 0 ? static_cast<uint64_t>(seed)
                : static_cast<uint64_t>(
                      std::chrono::high_resolution_clock::now().time_since_epoch().count());
  return {.temperature = static_cast<float>(temp),
          .top_k = top_k,
          .top_p = static_cast<float>(top_p),
          .min_p = static_cast<float>(min_p),
          .repeat_penalty = static_cast<float>(repeat_penalty),
          .presence_penalty = static_cast<float>(presence_penalty),
          .frequency_penalty = static_cast<float>(frequency_penalty),
          .penalty_last_n = repeat_last_n,
          .seed = s};
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("EIGHT_DEFAULT_MODEL"); env && *env) return env;
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)  // build/bin/eight → <source>/models
    for (fs::path d = exe.parent_path(); !d.empty() && d != d.root_path(); d = d.parent_path())
      dirs.push_back(d / "models");
  dirs.push_back(fs::current_path(ec) / "models");
  for (const auto& d : dirs) {
    if (!fs::is_directory(d, ec)) continue;
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".gguf") found.push_back(e.path());
    std::sort(found.begin(), found.end());
    if (!found.empty()) return found.front().string();
  }
  fail("no model given (-m MODEL) and no bundled model found in models/ (set EIGHT_DEFAULT_MODEL)");
}

std::vector<int32_t> eog_tokens(const gguf::File& f) {
  std::vector<int32_t> ids;
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"})
    if (const gguf::Value* v = f.find(key); v && v->is_integer())
      ids.push_back(static_cast<int32_t>(v->as_i64()));
  if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens"); toks && toks->is_array()) {
    const size_t n = toks->size();
    for (size_t i = 0; i < n; ++i) {
      const std::string_view t = toks->string_at(i);
      if (t == "<|end|>" || t == "<|eot_id|>" || t == "<|im_end|>" || t == "<|EOT|>" ||
          t == "<|endoftext|>" || t == "<|end_of_text|>" || t == "</s>" || t == "<end_of_turn>")
        ids.push_back(static_cast<int32_t>(i));
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
}
}  // namespace

std::atomic<bool>& interrupted() {
  return g_interrupted;
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read of stdin returns so chat can react
  sigaction(SIGINT, &sa, nullptr);
}

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::string s = text;
  std::replace(s.begin(), s.end(), ',', ' ');
  std::istringstream in(s);
  std::vector<int32_t> out;
  std::string item;
  while (in >> item) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    check(end && *end == 0 && v >= 0 && v <= INT32_MAX, "bad token id '", item, "'");
    out.push_back(static_cast<int32_t>(v));
  }
  check(!out.empty(), "no token ids in '", text, "'");
  return out;
}

void VisionArgs::add_to(ArgParser& p) {
  p.option("--image", &image, "FILE",
           "an image for a vision LLM (needs --mmproj unless -m is a LLaVA-NeXT directory): placed "
           "where the prompt holds the "
           "literal \"<image>\", else before the text");
  p.option("--mmproj", &mmproj, "PATH",
           "the vision encoder for --image: llama.cpp's mmproj GGUF (LLaVA 1.6) or a Hugging "
           "Face LLaVA-NeXT directory (default: -m when it is such a directory)");
}

std::string VisionArgs::default_mmproj(const std::string& model, const std::string& mmproj) {
  if (!mmproj.empty() || model.empty() || !std::filesystem::is_directory(model)) return mmproj;
  std::ifstream in(std::filesystem::path(model) / "config.json", std::ios::binary);
  if (!in.good()) return mmproj;
  const auto cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return cfg.is_object() && cfg.value("model_type", "") == "llava_next" ? model : mmproj;
}

void VisionArgs::plan(SessionOptions& so) const {
  if (mmproj.empty()) return;
  if (!encoder_) encoder_ = llava::VisionEncoder::load(mmproj);
  so.extras.push_back(vision_component(*encoder_));
}

Tensor VisionArgs::encode(const std::string& path, int64_t n_embd, int threads) const {
  check(!mmproj.empty(), "an image needs the model's vision encoder: --mmproj FILE");
  if (!encoder_) encoder_ = llava::VisionEncoder::load(mmproj);
  check(encoder_->config().text_hidden == n_embd, "[vision] ", mmproj, " projects images to ",
        encoder_->config().text_hidden, " dims, the LLM takes ", n_embd,
        " (not this model's projector)");
  return encoder_->encode(image::load(path), global_thread_pool(threads));
}

}  // namespace eight::cli

// `eight convert`: a Hugging Face checkpoint directory (today: CLIP) or an SDXL single file into
// one GGUF file, with the weight matrices in the type asked for; a CTranslate2 (faster-whisper)
// Whisper directory into whisper.cpp's ggml file. (`eight convert-tokenizer`
// converts a tokenizer.json alone; `eight quantize` re-types an existing GGUF.) A PyTorch
// checkpoint (.pt/.pth/.bin/.ckpt) becomes safetensors or GGUF with its dtypes kept.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "cli/torch_cli.h"
#include "core/dtype.h"
#include "core/error.h"
#include "formats/torch_checkpoint.h"
#include "formats/whisper_ct2.h"
#include "models/clip/clip_convert.h"
#include "models/llava/llava_convert.h"
#include "models/sdxl/sdxl_convert.h"

namespace eight::cli {
namespace {

// config.json's model_type, or "" when there is none.
std::string model_type(const std::string& dir) {
  std::ifstream in(std::filesystem::path(dir) / "config.json", std::ios::binary);
  check(in.good(), "[convert] '", dir,
        "' has no config.json (a Hugging Face checkpoint directory)");
  std::ostringstream s;
  s << in.rdbuf();
  const auto j = nlohmann::json::parse(s.str(), nullptr, false);
  check(!j.is_discarded() && j.is_object(), "[convert] ", dir, "/config.json is not valid JSON");
  return j.value("model_type", std::string());
}

void print_report(const std::string& out, size_t tensors, const std::map<std::string, int>& counts,
                  int64_t bytes_in, int64_t bytes_out, size_t fallbacks, const char* fallback_to) {
  std::string types;
  for (const auto& [t, n] : counts)
    types += (types.empty() ? "" : ", ") + t + " " + std::to_string(n);
  std::printf(
      "%s: %zu tensors (%s), %.1f MiB -> %.1f MiB%s\n", out.c_str(), tensors, types.c_str(),
      static_cast<double>(bytes_in) / 1048576.0, static_cast<double>(bytes_out) / 1048576.0,
      fallbacks ? cat(", ", fallbacks, " ", fallback_to, " (rows not divisible)").c_str() : "");
}

void show_progress(size_t done, size_t total) {
  std::fprintf(stderr, "\r[convert] %zu/%zu tensors", done, total);
  if (done == total) std::fprintf(stderr, "\n");
}

// An SDXL single file (see models/sdxl/sdxl_convert.h for the per-tensor types).
int convert_sdxl(const std::string& model, const std::string& out, const std::string& type,
                 int threads) {
  if (!sdxl::is_convert_type(type)) {
    std::fprintf(stderr, "eight convert: unknown type '%s' for SDXL\n", type.c_str());
    return 2;
  }
  sdxl::ConvertOptions opt{.type = type, .threads = threads, .progress = show_progress};
  const auto r = sdxl::convert_to_gguf(model, out, opt);
  print_report(out, r.tensors, r.type_counts, r.bytes_in, r.bytes_out, r.fallbacks,
               "fell back to a smaller block");
  return 0;
}

// A CTranslate2 Whisper directory into a whisper.cpp ggml file (f32 or f16 matrices).
int convert_whisper_ct2(const std::string& model, const std::string& out, std::string type) {
  const whisper::ModelFile m = whisper::load_ct2(model);
  if (type.empty()) type = m.weight_type == DType::F32 ? "f32" : "f16";
  const auto dtype = dtype_from_name(type);
  if (!dtype || (*dtype != DType::F32 && *dtype != DType::F16)) {
    std::fprintf(stderr, "eight convert: whisper.cpp output is f32 or f16, not '%s'\n",
                 type.c_str());
    return 2;
  }
  whisper::write_ggml(m, out, *dtype);
  std::printf("%s: whisper.cpp ggml, %s, from %s (%s weights)\n", out.c_str(), type.c_str(),
              model.c_str(), std::string(dtype_name(m.weight_type)).c_str());
  return 0;
}

int run(int argc, char** argv) {
  ArgParser p("convert", "[-m] CHECKPOINT -o OUT.gguf [--type TYPE]",
              "Convert a Hugging Face checkpoint directory (CLIP) or an SDXL single file into "
              "one GGUF file, or a CTranslate2 Whisper directory into a whisper.cpp ggml file.");
  std::string model, out, type;
  int threads = 0;
  bool state_dict = false;
  p.option("-m,--model", &model, "PATH",
           "checkpoint directory (config.json, *.safetensors, ...) or SDXL .safetensors file");
  p.option("-o,--output", &out, "FILE", "the GGUF (Whisper: ggml) file to write");
  p.option("--type", &type, "TYPE",
           "type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, ... "
           "(default f16; SDXL: also q4_k_m, q5_k_m, default q4_k_m; Whisper: f32 or f16, default "
           "f32 for a float32 directory, else f16)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)");
  p.flag("--state-dict", &state_dict,
         "PyTorch checkpoint: write only the state dict's tensors, named without its wrapper "
         "prefix (state_dict., model., module. ...)");
  p.epilog(
      "Supported today: CLIP (model_type \"clip\") and LLaVA-NeXT (\"llava_next\": writes OUT and\n"
      "mmproj-OUT next to it, llama.cpp's pair; --type f32 or f16). Norms, biases and position "
      "embeddings\n"
      "stay f32; matrices whose rows do not split into the type's blocks stay f16.\n"
      "SDXL single files become a whole-checkpoint GGUF in stable-diffusion.cpp's layout: UNet\n"
      "linear weights TYPE (q4_k_m/q5_k_m: to_v and ff.net.2 in Q6_K), text encoders Q8_0,\n"
      "convolutions, VAE and embeddings F16, norms and biases F32.\n"
      "A CTranslate2 (faster-whisper) Whisper directory (model.bin, config.json, vocabulary)\n"
      "becomes a whisper.cpp ggml file; int8/int16 weights are dequantized into it.\n"
      "A PyTorch checkpoint (.pt/.pth/.bin/.ckpt, read without running its pickle) becomes\n"
      "OUT.safetensors or OUT.gguf holding every tensor with its dtype as stored.\n"
      "Example: eight convert -m clip-vit-large-patch14 -o clip-l14-q8_0.gguf --type q8_0\n"
      "         eight convert faster-whisper-base -o ggml-base.bin\n"
      "         eight convert sd_xl_base_1.0.safetensors -o sdxl-q4_k_m.gguf --type q4_k_m");
  p.positional_count(0, 1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  if (model.empty() && !p.positionals().empty()) model = p.positionals()[0];
  if (model.empty() || out.empty()) {
    std::fprintf(stderr, "eight convert: -m DIR and -o FILE are required (see --help)\n");
    return 2;
  }
  if (whisper::is_ct2_dir(model)) return convert_whisper_ct2(model, out, type);
  if (!std::filesystem::is_directory(model) && torch::looks_like_checkpoint(model)) {
    if (!type.empty()) {
      std::fprintf(stderr, "eight convert: a PyTorch checkpoint keeps its dtypes (no --type)\n");
      return 2;
    }
    return convert_torch(model, out, state_dict);
  }
  if (!std::filesystem::is_directory(model))
    return convert_sdxl(model, out, type.empty() ? "q4_k_m" : type, threads);
  if (type.empty()) type = "f16";
  const auto dtype = dtype_from_name(type);
  if (!dtype) {
    std::fprintf(stderr, "eight convert: unknown type '%s'\n", type.c_str());
    return 2;
  }
  const std::string mt = model_type(model);
  if (mt == "llava_next") {
    const auto r = llava::convert_llava_next(model, out, *dtype);
    std::printf("%s: LLM, %zu tensors%s\n%s: mmproj, %zu tensors\n", r.llm_path.c_str(),
                r.llm_tensors, r.tokenizer ? ", tokenizer" : ", no tokenizer",
                r.mmproj_path.c_str(), r.mmproj_tensors);
    return 0;
  }
  if (mt != "clip") {
    std::fprintf(stderr,
                 "eight convert: model_type '%s' is not supported (only clip, llava_next)\n",
                 mt.c_str());
    return 2;
  }
  clip::ConvertOptions opt{.type = *dtype, .threads = threads, .progress = {}};
  opt.progress = show_progress;
  const auto r = clip::convert_checkpoint(model, out, opt);
  print_report(out, r.tensors, r.type_counts, r.bytes_in, r.bytes_out, r.fallbacks, "kept f16");
  return 0;
}

const Registration reg(
    {.name = "convert",
     .summary = "convert a checkpoint (CLIP, SDXL, .pt) to GGUF, CT2 Whisper to ggml",
     .run = run,
     .order = 615});

}  // namespace
}  // namespace eight::cli

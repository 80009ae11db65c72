// `eight convert`: a Hugging Face checkpoint directory (today: CLIP) into one GGUF file, with the
// weight matrices in the type asked for. (`eight convert-tokenizer` converts a tokenizer.json
// alone; `eight quantize` re-types an existing GGUF.)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/args.h"
#include "core/dtype.h"
#include "core/error.h"
#include "models/clip/clip_convert.h"

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

int run(int argc, char** argv) {
  ArgParser p("convert", "-m CHECKPOINT_DIR -o OUT.gguf [--type TYPE]",
              "Convert a Hugging Face checkpoint directory into one GGUF file.");
  std::string model, out, type = "f16";
  int threads = 0;
  p.option("-m,--model", &model, "DIR", "checkpoint directory (config.json, *.safetensors, ...)");
  p.option("-o,--output", &out, "FILE", "the GGUF file to write");
  p.option("--type", &type, "TYPE",
           "type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q5_0, q4_k, q5_k, q6_k, ... "
           "(default f16)");
  p.option("-t,--threads", &threads, "N", "threads (default: all cores)");
  p.epilog(
      "Supported today: CLIP (model_type \"clip\"). Norms, biases and position embeddings\n"
      "stay f32; matrices whose rows do not split into the type's blocks stay f16.\n"
      "Example: eight convert -m clip-vit-large-patch14 -o clip-l14-q8_0.gguf --type q8_0");
  p.positional_count(0, 0);
  if (auto rc = p.parse(argc, argv)) return *rc;
  if (model.empty() || out.empty()) {
    std::fprintf(stderr, "eight convert: -m DIR and -o FILE are required (see --help)\n");
    return 2;
  }
  const auto dtype = dtype_from_name(type);
  if (!dtype) {
    std::fprintf(stderr, "eight convert: unknown type '%s'\n", type.c_str());
    return 2;
  }
  const std::string mt = model_type(model);
  if (mt != "clip") {
    std::fprintf(stderr, "eight convert: model_type '%s' is not supported (only clip)\n",
                 mt.c_str());
    return 2;
  }
  clip::ConvertOptions opt{.type = *dtype, .threads = threads, .progress = {}};
  opt.progress = [](size_t done, size_t total) {
    std::fprintf(stderr, "\r[convert] %zu/%zu tensors", done, total);
    if (done == total) std::fprintf(stderr, "\n");
  };
  const auto r = clip::convert_checkpoint(model, out, opt);
  std::string types;
  for (const auto& [t, n] : r.type_counts)
    types += (types.empty() ? "" : ", ") + t + " " + std::to_string(n);
  std::printf("%s: %zu tensors (%s), %.1f MiB -> %.1f MiB%s\n", out.c_str(), r.tensors,
              types.c_str(), r.bytes_in / 1048576.0, r.bytes_out / 1048576.0,
              r.fallbacks ? cat(", ", r.fallbacks, " kept f16 (rows not divisible)").c_str() : "");
  return 0;
}

const Registration reg({.name = "convert",
                        .summary = "convert a Hugging Face checkpoint (CLIP) to GGUF",
                        .run = run,
                        .order = 615});

}  // namespace
}  // namespace eight::cli

// `eight preprocess-image IMAGE -o OUT.npy [--config preprocessor_config.json]`: the pixel tensor
// a CLIP vision tower receives (float32 [3, H, W]), for comparisons with reference processors.
// --decoded writes the decoded RGB image instead (float32 [H, W, 3], 0..255, EXIF applied).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/error.h"
#include "formats/image.h"
#include "formats/npy.h"

namespace eight::cli {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(int argc, char** argv) {
  ArgParser p("preprocess-image", "IMAGE -o OUT.npy",
              "Write the pixel tensor a CLIP model sees (float32 [3, H, W]) as .npy.");
  std::string out, config;
  bool decoded = false, json = false;
  p.option("-o,--output", &out, "FILE", "output .npy file (required)");
  p.option("--config", &config, "FILE",
           "preprocessor_config.json (default: OpenAI CLIP's 224 px settings)");
  p.flag("--decoded", &decoded, "write the decoded RGB image (float32 [H, W, 3], 0..255) instead");
  p.flag("--json", &json, "print {\"width\", \"height\", \"shape\", \"output\"}");
  p.positional_count(1, 1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!out.empty(), "an output file is required (-o OUT.npy)");
  const image::PreprocessConfig cfg = config.empty()
                                          ? image::PreprocessConfig{}
                                          : image::parse_preprocess_config(read_text(config));
  const image::Image img = image::load(p.positionals()[0]);
  Tensor t;
  if (decoded) {
    t = Tensor::empty({img.height, img.width, 3}, DType::F32);
    const auto* in = img.rgb.data<const uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = in[i];
  } else {
    t = image::preprocess(img, cfg);
  }
  npy::write(out, t);
  if (json)
    std::printf("%s\n",
                nlohmann::json{{"width", img.width},
                               {"height", img.height},
                               {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
                               {"output", out}}
                    .dump()
                    .c_str());
  else
    std::printf("%s: %dx%d -> wrote %s float32 %s\n", p.positionals()[0].c_str(), img.width,
                img.height, out.c_str(), t.shape().str().c_str());
  return 0;
}

const Registration reg({.name = "preprocess-image",
                        .summary = "write the pixel tensor a CLIP model sees as .npy",
                        .run = run,
                        .order = 630});

}  // namespace
}  // namespace eight::cli

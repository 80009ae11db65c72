// `eight preprocess-image IMAGE -o OUT.npy [--config preprocessor_config.json]`: the pixel tensor
// a CLIP vision tower receives (float32 [3, H, W]), for comparisons with reference processors.
// --decoded writes the decoded RGB image instead (float32 [H, W, 3], 0..255, EXIF applied).
// A LLaVA-NeXT config (one with "image_grid_pinpoints") gives the anyres tiles instead:
// float32 [1 + rows * cols, 3, H, W], the whole image first.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/error.h"
#include "formats/image.h"
#include "formats/image_anyres.h"
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
              "Write the pixel tensor a CLIP model sees (float32 [3, H, W]) as .npy. With a "
              "LLaVA-NeXT preprocessor_config.json (one holding image_grid_pinpoints): the anyres "
              "tiles, float32 [1 + rows * cols, 3, H, W], the whole image first.");
  std::string out, config;
  bool decoded = false, json = false;
  p.option("-o,--output", &out, "FILE", "output .npy file (required)");
  p.option("--config", &config, "FILE",
           "preprocessor_config.json (default: OpenAI CLIP's 224 px settings); with "
           "image_grid_pinpoints, LLaVA-NeXT anyres tiles");
  p.flag("--decoded", &decoded, "write the decoded RGB image (float32 [H, W, 3], 0..255) instead");
  p.flag("--json", &json,
         "print {\"width\", \"height\", \"shape\", \"output\"} (anyres adds \"grid\": [rows, "
         "cols] and \"best_resolution\": [height, width])");
  p.positional_count(1, 1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!out.empty(), "an output file is required (-o OUT.npy)");
  const std::string config_text = config.empty() ? std::string() : read_text(config);
  const image::PreprocessConfig cfg =
      config.empty() ? image::PreprocessConfig{} : image::parse_preprocess_config(config_text);
  const bool anyres =
      !config.empty() && nlohmann::json::parse(config_text).contains("image_grid_pinpoints");
  const image::Image img = image::load(p.positionals()[0]);
  Tensor t;
  nlohmann::json extra = nlohmann::json::object();
  if (decoded) {
    t = Tensor::empty({img.height, img.width, 3}, DType::F32);
    const auto* in = img.rgb.data<const uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = in[i];
  } else if (anyres) {
    const image::AnyresPixels a =
        image::preprocess_anyres(img, image::parse_anyres_config(config_text));
    t = a.pixels;
    extra = {{"grid", {a.rows, a.cols}}, {"best_resolution", {a.best_height, a.best_width}}};
  } else {
    t = image::preprocess(img, cfg);
  }
  npy::write(out, t);
  if (json) {
    nlohmann::json j{{"width", img.width},
                     {"height", img.height},
                     {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())},
                     {"output", out}};
    j.update(extra);
    std::printf("%s\n", j.dump().c_str());
  } else
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

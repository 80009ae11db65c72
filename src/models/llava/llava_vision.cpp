// LLaVA-NeXT's image encoder (llava.h) from a Hugging Face directory. Weight names differ by the
// transformers version that saved the checkpoint: llava-hf's (4.x) "vision_tower.vision_model.*",
// "multi_modal_projector.*", "image_newline"; 5.x drops "vision_model." and may prefix "model.".
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "models/clip/clip_internal.h"
#include "models/llava/llava.h"
#include "models/registry.h"
#include "ops/activation.h"
#include "ops/matmul.h"

namespace eight::llava {
namespace {

// The vision side of LLaVA-type LLMs (mmproj files, LLaVA-NeXT directories): the catalog marks a
// vision LLM as runnable when this is registered.
const bool registered = (register_architecture({.name = "llava",
                                                .family = "vision",
                                                .summary = "LLaVA 1.6 vision tower + projector "
                                                           "(mmproj GGUF or LLaVA-NeXT dir)"}),
                         true);

using nlohmann::json;

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[llava] cannot read ", p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int int_field(const json& j, const char* key, int fallback, const char* where) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  check(j.at(key).is_number_integer(), "[llava] ", where, " \"", key, "\" must be an integer");
  const auto v = j.at(key).get<int64_t>();
  check(v >= -(1 << 30) && v <= (1 << 30), "[llava] ", where, " \"", key, "\" = ", v);
  return static_cast<int>(v);
}

// The checkpoint name without the saving version's prefixes, in clip's naming for the tower:
// "vision_model.<rest>" for the tower, "multi_modal_projector.<rest>", "image_newline"; empty
// for the language model.
std::string canonical_name(std::string n) {
  if (n.starts_with("model.")) n = n.substr(6);
  if (n.starts_with("vision_tower.")) {
    n = n.substr(13);
    if (n.starts_with("vision_model.")) n = n.substr(13);
    return "vision_model." + n;
  }
  if (n.starts_with("multi_modal_projector.") || n == "image_newline") return n;
  return {};
}

}  // namespace

struct VisionEncoder::Impl {
  VisionConfig config;
  std::unique_ptr<clip::Model::Impl> clip;  // the vision tower
  int64_t n_layers = 0;                     // tower layers run (from feature_layer)
  clip::Linear linear1, linear2;            // multi_modal_projector.linear_{1,2}
  Tensor newline;                           // image_newline [text_hidden] f32
  int64_t weight_bytes = 0;
};

UnpadBox unpad_box(int rows, int cols, int image_height, int image_width) {
  UnpadBox b{0, rows, 0, cols};
  const double original = static_cast<double>(image_width) / image_height;
  const double current = static_cast<double>(cols) / rows;
  // int(round(x, 7)): the scaled side rounded to 7 decimals first, so 23.99999999 counts as 24.
  auto side = [](double x) { return static_cast<int>(std::nearbyint(x * 1e7) / 1e7); };
  if (original > current) {
    const int new_h = side(image_height * (static_cast<double>(cols) / image_width));
    const int pad = (rows - new_h) / 2;
    b.row0 = pad;
    b.row1 = rows - pad;
  } else {
    const int new_w = side(image_width * (static_cast<double>(rows) / image_height));
    const int pad = (cols - new_w) / 2;
    b.col0 = pad;
    b.col1 = cols - pad;
  }
  check(b.row1 > b.row0 && b.col1 > b.col0, "[llava] a ", image_width, "x", image_height,
        " image leaves nothing of its ", rows, "x", cols, " feature grid");
  return b;
}

namespace {

// The projector (two linears around GELU) and the newline row, checked against the config.
void bind_projector(VisionEncoder::Impl& m, const clip::NamedTensors& w, const std::string& l1,
                    const std::string& l2, const std::string& newline) {
  const VisionConfig& c = m.config;
  for (const auto& [h, wd] : c.preprocess.pinpoints)
    check(h % c.image_size == 0 && wd % c.image_size == 0, "[llava] pinpoint ", h, "x", wd,
          " is not a multiple of the tile size ", c.image_size);
  check(c.text_hidden > 0 && c.text_hidden <= (1 << 16), "[llava] projector width ", c.text_hidden);
  const int64_t V = m.clip->config.vision.hidden, T = c.text_hidden;
  m.linear1 = clip::load_linear(w, l1, T, V);
  m.linear2 = clip::load_linear(w, l2, T, T);
  m.newline = clip::to_f32(clip::need_tensor(w, newline, {T}));
  m.weight_bytes = m.clip->weight_bytes +
                   static_cast<int64_t>(m.linear1.weight.nbytes() + m.linear2.weight.nbytes()) +
                   3 * T * static_cast<int64_t>(sizeof(float));
}

std::unique_ptr<VisionEncoder::Impl> load_hf(const std::string& dir) {
  using Impl = VisionEncoder::Impl;
  const std::filesystem::path d(dir);
  json j;
  try {
    j = json::parse(read_text(d / "config.json"));
  } catch (const json::exception& e) {
    fail("[llava] ", dir, "/config.json is not valid JSON: ", e.what());
  }
  check(j.is_object() && j.contains("vision_config") && j.at("vision_config").is_object() &&
            j.contains("text_config") && j.at("text_config").is_object(),
        "[llava] ", dir, "/config.json has no vision_config/text_config (not LLaVA-NeXT)");
  auto impl = std::make_unique<Impl>();
  VisionConfig& c = impl->config;
  const json& vj = j.at("vision_config");
  c.feature_layer = int_field(j, "vision_feature_layer", -2, "config.json");
  c.text_hidden = int_field(j.at("text_config"), "hidden_size", 4096, "text_config");
  c.image_token_index = int_field(j, "image_token_index", 32000, "config.json");
  const std::string strategy = j.value("vision_feature_select_strategy", "default");
  check(strategy == "default", "[llava] vision_feature_select_strategy \"", strategy,
        "\" is not supported (LLaVA-NeXT's spatial_unpad needs \"default\")");
  const std::string act = j.value("projector_hidden_act", "gelu");
  check(act == "gelu", "[llava] projector_hidden_act \"", act, "\" is not supported (gelu)");
  check(c.text_hidden > 0 && c.text_hidden <= (1 << 16), "[llava] text hidden_size ",
        c.text_hidden);

  // The tower: clip's CLIPVisionConfig reading, with no text side and no projection.
  clip::Config cc = clip::parse_hf_config(json{{"vision_config", vj}}.dump());
  cc.has_text = false;
  cc.projection_dim = cc.vision.hidden;
  c.image_size = cc.image_size;
  c.patch_size = cc.patch_size;
  const int L = cc.vision.layers;
  impl->n_layers = c.feature_layer < 0 ? L + 1 + c.feature_layer : c.feature_layer;
  check(impl->n_layers >= 0 && impl->n_layers <= L, "[llava] vision_feature_layer ",
        c.feature_layer, " is outside a ", L, "-layer tower");

  // Preprocessing: preprocessor_config.json when present, else CLIP's at the tower's size; the
  // pinpoints are the model's (config.json), which pack_image_features uses.
  if (std::filesystem::exists(d / "preprocessor_config.json")) {
    c.preprocess.base = image::parse_preprocess_config(read_text(d / "preprocessor_config.json"));
  } else {
    c.preprocess.base = cc.preprocess;
  }
  check(
      c.preprocess.base.crop_height == c.image_size && c.preprocess.base.crop_width == c.image_size,
      "[llava] preprocessor crop_size ", c.preprocess.base.crop_height, "x",
      c.preprocess.base.crop_width, " differs from the vision tower's image_size ", c.image_size);
  check(j.contains("image_grid_pinpoints") && j.at("image_grid_pinpoints").is_array(),
        "[llava] config.json has no image_grid_pinpoints");
  for (const auto& e : j.at("image_grid_pinpoints")) {
    check(e.is_array() && e.size() == 2 && e[0].is_number_integer() && e[1].is_number_integer(),
          "[llava] image_grid_pinpoints entry ", e.dump(), " is not [height, width]");
    c.preprocess.pinpoints.push_back({e[0].get<int>(), e[1].get<int>()});
  }
  image::check_pinpoints(c.preprocess.pinpoints, "llava config.json");

  // Weights: the vision tower through clip's builder, then the projector and the newline.
  const safetensors::Checkpoint ckpt = safetensors::Checkpoint::open(dir);
  clip::NamedTensors w;
  for (const auto& n : ckpt.names()) {
    const std::string canon = canonical_name(n);
    if (!canon.empty() && !canon.ends_with("position_ids")) w.emplace(canon, ckpt.tensor(n));
  }
  impl->clip = clip::build_model(cc, w, std::nullopt, d.filename().string());
  bind_projector(*impl, w, "multi_modal_projector.linear_1", "multi_modal_projector.linear_2",
                 "image_newline");
  return impl;
}

// llama.cpp's mmproj GGUF (convert_image_encoder_to_gguf.py): the tower as clip reads it, the
// projector as mm.0 / mm.2, model.image_newline, the anyres settings under clip.vision.*. Files
// with clip.vision.feature_layer read the tower's hidden state there; older LLaVA 1.6 files have
// no such key and dropped the layers after the one LLaVA reads, so every stored layer runs.
std::unique_ptr<VisionEncoder::Impl> load_mmproj(const gguf::File& f, const std::string& path) {
  auto impl = std::make_unique<VisionEncoder::Impl>();
  VisionConfig& c = impl->config;
  check(f.architecture() == "clip" && f.get_bool("clip.has_llava_projector", false), "[llava] ",
        path, " is not an mmproj GGUF (general.architecture 'clip' with a LLaVA projector)");
  const std::string proj = f.get_string("clip.projector_type", "mlp");
  check(proj == "mlp", "[llava] ", path, ": projector_type '", proj, "' is not supported (mlp)");
  const std::string merge = f.get_string("clip.vision.mm_patch_merge_type", "flat");
  check(merge == "spatial_unpad", "[llava] ", path, ": mm_patch_merge_type '", merge,
        "' is not supported (LLaVA 1.6's spatial_unpad)");
  const gguf::Value* pins = f.find("clip.vision.image_grid_pinpoints");
  check(pins != nullptr && pins->size() % 2 == 0 && pins->size() >= 2, "[llava] ", path,
        " has no clip.vision.image_grid_pinpoints (pairs)");
  const std::vector<int64_t> flat = pins->as_i64s();
  for (size_t i = 0; i + 1 < flat.size() && i < 256; i += 2) {
    check(flat[i] > 0 && flat[i] <= 8192 && flat[i + 1] > 0 && flat[i + 1] <= 8192, "[llava] ",
          path, ": pinpoint ", flat[i], "x", flat[i + 1], " is outside 1..8192");
    c.preprocess.pinpoints.push_back({static_cast<int>(flat[i]), static_cast<int>(flat[i + 1])});
  }
  image::check_pinpoints(c.preprocess.pinpoints, path);
  impl->clip = clip::load_gguf(f, path);
  const clip::Config& cc = impl->clip->config;
  c.image_size = cc.image_size;
  c.patch_size = cc.patch_size;
  c.preprocess.base = cc.preprocess;
  const int64_t L = static_cast<int64_t>(impl->clip->vision.tower.layers.size());
  impl->n_layers = L;
  if (const gguf::Value* fl = f.find("clip.vision.feature_layer")) {
    const std::vector<int64_t> layers = fl->as_i64s();
    check(layers.size() == 1 && layers[0] >= 0 && layers[0] <= L, "[llava] ", path,
          ": clip.vision.feature_layer ", fl->str(), " is not one layer of ", L);
    impl->n_layers = layers[0];
  }
  c.feature_layer = static_cast<int>(impl->n_layers - L - 1);  // as transformers counts it
  clip::NamedTensors w;
  for (const char* n :
       {"mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias", "model.image_newline"})
    if (f.find_tensor(n)) w.emplace(n, f.tensor(n));
  check(w.count("mm.0.weight") && w.count("mm.2.weight"), "[llava] ", path,
        " lacks the projector tensors mm.0.weight / mm.2.weight");
  c.text_hidden = static_cast<int>(w.at("mm.2.weight").size(0));
  bind_projector(*impl, w, "mm.0", "mm.2", "model.image_newline");
  return impl;
}

}  // namespace

std::shared_ptr<const VisionEncoder> VisionEncoder::load(const std::string& path) {
  auto impl = std::filesystem::is_directory(path) ? load_hf(path)
                                                  : load_mmproj(gguf::File::open(path), path);
  return std::shared_ptr<const VisionEncoder>(new VisionEncoder(std::move(impl)));
}

std::shared_ptr<const VisionEncoder> VisionEncoder::from_mmproj(const gguf::File& file,
                                                                const std::string& name) {
  return std::shared_ptr<const VisionEncoder>(new VisionEncoder(load_mmproj(file, name)));
}

VisionEncoder::VisionEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VisionEncoder::~VisionEncoder() = default;
const VisionConfig& VisionEncoder::config() const {
  return impl_->config;
}
const clip::Config& VisionEncoder::tower_config() const {
  return impl_->clip->config;
}

int64_t VisionEncoder::max_tokens() const {
  int64_t n = 0;
  for (const auto& [h, w] : impl_->config.preprocess.pinpoints) n = std::max(n, count_tokens(h, w));
  return n;
}

int64_t VisionEncoder::max_tiles() const {
  int64_t n = 0;
  const int s = impl_->config.image_size;
  for (const auto& [h, w] : impl_->config.preprocess.pinpoints)
    n = std::max(n, 1 + int64_t{h / s} * (w / s));
  return n;
}

int64_t VisionEncoder::weight_bytes() const {
  return impl_->weight_bytes;
}

int64_t VisionEncoder::count_tokens(int image_height, int image_width) const {
  const VisionConfig& c = impl_->config;
  const int g = c.image_size / c.patch_size;
  const auto [bh, bw] =
      image::select_best_resolution(image_height, image_width, c.preprocess.pinpoints);
  const UnpadBox b =
      unpad_box(bh / c.image_size * g, bw / c.image_size * g, image_height, image_width);
  return int64_t{g} * g + int64_t{b.row1 - b.row0} * (b.col1 - b.col0 + 1);
}

Tensor VisionEncoder::encode(const image::Image& image, ThreadPool& pool) const {
  return encode_pixels(image::preprocess_anyres(image, impl_->config.preprocess), image.height,
                       image.width, pool);
}

Tensor VisionEncoder::encode_pixels(const image::AnyresPixels& px, int image_height,
                                    int image_width, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const VisionConfig& c = m.config;
  const int g = c.image_size / c.patch_size, P = g * g;
  const int64_t n = px.pixels.size(0), T = c.text_hidden, V = m.clip->config.vision.hidden;
  check(n == 1 + int64_t{px.rows} * px.cols && px.rows * c.image_size == px.best_height &&
            px.cols * c.image_size == px.best_width,
        "[llava] ", n, " tiles do not match the ", px.best_height, "x", px.best_width, " pinpoint");
  const Tensor hidden = clip::vision_hidden_states(*m.clip, px.pixels, m.n_layers, pool);
  // "default" selection: every tile's patch rows without its class token -> [n * P, V].
  Tensor sel = Tensor::empty({n * P, V}, DType::F32);
  for (int64_t t = 0; t < n; ++t)
    std::memcpy(sel.data<float>() + t * P * V, hidden.data<float>() + (t * (P + 1) + 1) * V,
                static_cast<size_t>(P * V) * sizeof(float));
  Tensor h = ops::matmul(sel, m.linear1.weight, pool,
                         {.bias = m.linear1.bias.defined() ? &m.linear1.bias : nullptr});
  ops::activation(ops::Activation::GELU, h, h);
  const Tensor f = ops::matmul(h, m.linear2.weight, pool,
                               {.bias = m.linear2.bias.defined() ? &m.linear2.bias : nullptr});

  // pack_image_features: base tile's P rows, then the tiles' features as one (rows*g) x
  // (cols*g) grid (tile r, c holds grid rows r*g.., columns c*g..), unpadded, a newline per row.
  const int grid_rows = px.rows * g, grid_cols = px.cols * g;
  const UnpadBox b = unpad_box(grid_rows, grid_cols, image_height, image_width);
  const int64_t n_tokens = P + int64_t{b.row1 - b.row0} * (b.col1 - b.col0 + 1);
  Tensor out = Tensor::empty({n_tokens, T}, DType::F32);
  const auto row_bytes = static_cast<size_t>(T) * sizeof(float);
  float* o = out.data<float>();
  std::memcpy(o, f.data<float>(), P * row_bytes);
  o += P * T;
  for (int y = b.row0; y < b.row1; ++y) {
    for (int x = b.col0; x < b.col1; ++x) {
      const int64_t tile = 1 + int64_t{y / g} * px.cols + x / g;
      const int64_t patch = int64_t{y % g} * g + x % g;
      std::memcpy(o, f.data<float>() + (tile * P + patch) * T, row_bytes);
      o += T;
    }
    std::memcpy(o, m.newline.data<float>(), row_bytes);
    o += T;
  }
  return out;
}

}  // namespace eight::llava

// SmilingWolf's WD v3 taggers (wd-vit-tagger-v3, wd-convnext-tagger-v3, wd-swinv2-tagger-v3) from
// their timm folders: model.safetensors, config.json (timm's architecture, model_args and
// pretrained_cfg) and selected_tags.csv. Probabilities are the sigmoid of the head's logits.
//
// Preprocessing is what the WD reference for the timm models does (neggles/wdv3-timm, the script
// SmilingWolf's model cards point to): the decoded RGB image (alpha already composited on white
// by formats/image) is padded to a square on white with the image centered ((side - w) / 2
// columns left, rounded down), resized with PIL's bicubic filter to
// floor(input_size / crop_pct) and center-cropped to input_size (timm's eval transform;
// crop_pct is 1 in the WD configs), scaled to 0..1, normalized with pretrained_cfg's mean/std,
// and its channels put in BGR order (`inputs[:, [2, 1, 0]]`: the taggers were trained on BGR, as
// their ONNX exports still take it).
#include <cmath>
#include <cstring>
#include <filesystem>

#include "backend/cpu/scratch.h"
#include "core/error.h"
#include "core/storage.h"
#include "models/registry.h"
#include "models/tagger/wd_internal.h"
#include "ops/activation.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::tagger::wd {

using nlohmann::json;

Config parse_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("[wd] ", source, " is not valid JSON: ", e.what());
  }
  check(j.is_object() && j.contains("architecture") && j["architecture"].is_string(), "[wd] ",
        source,
        " has no \"architecture\" (a timm config.json names the model, e.g. "
        "\"vit_base_patch16_224\")");
  Config c;
  c.architecture = j["architecture"].get<std::string>();
  try {
    if (j.contains("num_classes")) c.num_classes = j["num_classes"].get<int64_t>();
    if (j.contains("model_args") && j["model_args"].is_object()) c.model_args = j["model_args"];
    const json cfg = j.value("pretrained_cfg", json::object());
    check(
        cfg.contains("input_size") && cfg["input_size"].is_array() && cfg["input_size"].size() == 3,
        "[wd] ", source, " has no pretrained_cfg.input_size [3, S, S]");
    const auto in = cfg["input_size"].get<std::vector<int64_t>>();
    check(in[0] == 3 && in[1] == in[2] && in[1] >= 8 && in[1] <= 4096, "[wd] ", source,
          ": input_size ", in[0], "x", in[1], "x", in[2],
          " is not three channels of a square between 8 and 4096 pixels");
    c.input_size = in[1];
    const std::string interp = cfg.value("interpolation", std::string("bicubic"));
    check(interp == "bicubic", "[wd] ", source, ": interpolation '", interp,
          "' is not supported (the WD taggers use bicubic)");
    c.crop_pct = cfg.value("crop_pct", 1.0);
    check(c.crop_pct > 0.1 && c.crop_pct <= 1.0, "[wd] ", source, ": crop_pct ", c.crop_pct,
          " is outside (0.1, 1]");
    for (const char* key : {"mean", "std"}) {
      if (!cfg.contains(key)) continue;
      const auto v = cfg[key].get<std::vector<double>>();
      check(v.size() == 3, "[wd] ", source, ": pretrained_cfg.", key, " has ", v.size(),
            " values, not 3");
      for (int i = 0; i < 3; ++i) {
        const auto x = static_cast<float>(v[static_cast<size_t>(i)]);
        check(std::strcmp(key, "mean") == 0 || x > 0, "[wd] ", source, ": std must be positive");
        (std::strcmp(key, "mean") == 0 ? c.mean : c.std)[static_cast<size_t>(i)] = x;
      }
    }
  } catch (const json::exception& e) {
    fail("[wd] ", source, ": ", e.what());
  }
  return c;
}

ops::Activation activation_of(const json& args, const std::string& source) {
  const std::string act = args.value("act_layer", std::string("gelu"));
  if (act == "gelu") return ops::Activation::GELU;
  if (act == "gelu_tanh") return ops::Activation::GELUTanh;
  if (act == "quick_gelu") return ops::Activation::QuickGELU;
  if (act == "relu") return ops::Activation::ReLU;
  if (act == "silu" || act == "swish") return ops::Activation::SiLU;
  fail("[wd] ", source, ": act_layer '", act, "' is not supported (gelu, gelu_tanh, quick_gelu)");
}

Weights::Weights(const safetensors::Checkpoint& ckpt, std::string source)
    : source_(std::move(source)) {
  for (const std::string& n : ckpt.names()) tensors_.emplace(n, ckpt.tensor(n));
}

bool Weights::has(const std::string& name) const {
  return tensors_.count(name) != 0;
}

const Tensor& Weights::need(const std::string& name) const {
  auto it = tensors_.find(name);
  check(it != tensors_.end(), "[wd] ", source_, " has no tensor '", name, "'");
  return it->second;
}

Tensor Weights::need(const std::string& name, const Dims& shape) const {
  const Tensor& t = need(name);
  check(t.shape() == shape, "[wd] ", source_, ": tensor '", name, "' has shape ", t.shape().str(),
        ", expected ", shape.str());
  return t;
}

Tensor Weights::vector_f32(const std::string& name, int64_t n) const {
  return clip::to_f32(need(name, {n}));
}

Tensor Weights::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const Tensor t = need(name, {rows, cols});
  check(t.dtype() == DType::F32 || t.dtype() == DType::F16 || t.dtype() == DType::BF16, "[wd] ",
        source_, ": tensor '", name, "' has type ", dtype_name(t.dtype()),
        ", not F32, F16 or BF16");
  return t.contiguous();
}

clip::LayerNorm Weights::norm(const std::string& prefix, int64_t n) const {
  return {vector_f32(prefix + ".weight", n), vector_f32(prefix + ".bias", n)};
}

clip::Linear Weights::linear(const std::string& prefix, int64_t out, int64_t in) const {
  clip::Linear l{matrix(prefix + ".weight", out, in), {}};
  if (has(prefix + ".bias")) l.bias = vector_f32(prefix + ".bias", out);
  return l;
}

void layer_norm_rows(const Tensor& x, const clip::LayerNorm& n, float eps, ThreadPool& pool) {
  const int64_t rows = x.size(0);
  constexpr int64_t kChunk = 32;
  pool.parallel_for((rows + kChunk - 1) / kChunk, [&](int64_t t, int) {
    const Tensor xr = x.slice(0, t * kChunk, std::min(rows, (t + 1) * kChunk));
    ops::layer_norm(xr, xr, {.weight = &n.weight, .bias = &n.bias, .eps = eps});
  });
}

void mlp_rows(const Tensor& x, const clip::Linear& fc1, const clip::Linear& fc2,
              ops::Activation act, const Tensor& out, ThreadPool& pool) {
  const Tensor ff =
      ops::matmul(x, fc1.weight, pool, {.bias = fc1.bias.defined() ? &fc1.bias : nullptr});
  const int64_t rows = ff.size(0);
  pool.parallel_for((rows + 63) / 64, [&](int64_t t, int) {
    const Tensor part = ff.slice(0, t * 64, std::min(rows, (t + 1) * 64));
    ops::activation(act, part, part);
  });
  ops::matmul(ff, fc2.weight, out, pool, {.bias = fc2.bias.defined() ? &fc2.bias : nullptr});
}

int64_t owned_bytes(const Tensor& t) {
  if (!t.defined() || dynamic_cast<const MappedFile*>(t.storage().get()) != nullptr) return 0;
  return static_cast<int64_t>(t.nbytes());
}

int64_t owned_bytes(const clip::Linear& l) {
  return owned_bytes(l.weight) + owned_bytes(l.bias);
}

int64_t owned_bytes(const clip::LayerNorm& n) {
  return owned_bytes(n.weight) + owned_bytes(n.bias);
}

Tensor mean_positions(const Tensor& x, int64_t n) {
  const int64_t C = x.size(1), P = x.size(0) / n;
  Tensor out = Tensor::empty({n, C}, DType::F32);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t i = 0; i < P; ++i) s += x.data<float>()[(b * P + i) * C + c];
      out.data<float>()[b * C + c] = static_cast<float>(s / static_cast<double>(P));
    }
  return out;
}

namespace {

namespace fs = std::filesystem;

class WdTagger final : public Tagger {
 public:
  explicit WdTagger(const std::string& dir) : dir_(dir) {
    const fs::path d(dir);
    name_ = d.filename().empty() ? d.parent_path().filename().string() : d.filename().string();
    config_ = parse_config(read_small_file((d / "config.json").string(), "[wd]"),
                           (d / "config.json").string());
    tags_ = parse_selected_tags(read_small_file((d / "selected_tags.csv").string(), "[wd]"),
                                (d / "selected_tags.csv").string());
    ckpt_ = safetensors::Checkpoint::open(dir);
    const Weights w(ckpt_, ckpt_.path());
    const std::string& a = config_.architecture;
    if (a.rfind("vit_", 0) == 0)
      backbone_ = load_vit(config_, w);
    else if (a.rfind("convnext_", 0) == 0)
      backbone_ = load_convnext(config_, w);
    else if (a.rfind("swinv2_", 0) == 0)
      backbone_ = load_swinv2(config_, w);
    else
      fail("[wd] ", dir, ": architecture '", a,
           "' is not supported (vit_*, convnext_*, swinv2_* as the WD v3 taggers use)");
    const auto n_tags = static_cast<int64_t>(tags_.size());
    check(config_.num_classes == 0 || config_.num_classes == n_tags, "[wd] ", dir,
          ": config.json says num_classes ", config_.num_classes, " but selected_tags.csv lists ",
          n_tags, " tags");
    // timm's classifier: `head.fc` for ConvNeXt (a norm sits in the head), `head` otherwise.
    const std::string head = w.has("head.fc.weight") ? "head.fc" : "head";
    head_ = w.linear(head, n_tags, backbone_->num_features());
  }

  std::string name() const override { return name_; }
  std::string architecture() const override { return config_.architecture; }
  const std::vector<Tag>& tags() const override { return tags_; }

  Tensor preprocess(const image::Image& img) const override {
    const int64_t S = config_.input_size;
    // Pad to a white square, the image centered.
    const int side = std::max(img.width, img.height);
    image::Image sq{
        .width = side, .height = side, .rgb = Tensor::empty({side, side, 3}, DType::I8)};
    auto* dst = static_cast<uint8_t*>(sq.rgb.raw());
    std::memset(dst, 255, static_cast<size_t>(side) * side * 3);
    const auto* src = static_cast<const uint8_t*>(img.rgb.contiguous().raw());
    const int x0 = (side - img.width) / 2, y0 = (side - img.height) / 2;
    for (int y = 0; y < img.height; ++y)
      std::memcpy(dst + ((static_cast<size_t>(y0 + y) * side) + x0) * 3,
                  src + static_cast<size_t>(y) * img.width * 3, static_cast<size_t>(img.width) * 3);
    // timm's eval transform: resize to floor(S / crop_pct), center crop S (torchvision's
    // CenterCrop rounds the offset).
    const auto scaled = static_cast<int>(std::floor(static_cast<double>(S) / config_.crop_pct));
    const image::Image r = image::resize(sq, scaled, scaled);
    const auto off = static_cast<int64_t>(std::lround((scaled - S) / 2.0));
    const auto* px = static_cast<const uint8_t*>(r.rgb.contiguous().raw());
    Tensor out = Tensor::empty({3, S, S}, DType::F32);
    float* o = out.data<float>();
    for (int c = 0; c < 3; ++c) {
      const int rgb = 2 - c;  // output channel c is B, G, R
      const float mean = config_.mean[static_cast<size_t>(rgb)];
      const float sd = config_.std[static_cast<size_t>(rgb)];
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x) {
          // As torchvision: ToTensor divides by 255 in float, Normalize subtracts then divides.
          const float v = static_cast<float>(px[((y + off) * scaled + x + off) * 3 + rgb]) / 255.0f;
          o[(c * S + y) * S + x] = (v - mean) / sd;
        }
    }
    return out;
  }

  Tensor predict(const Tensor& pixels, ThreadPool& pool) const override {
    const int64_t S = config_.input_size;
    check(pixels.dim() == 4 && pixels.size(1) == 3 && pixels.size(2) == S && pixels.size(3) == S &&
              pixels.dtype() == DType::F32,
          "[wd] ", name_, " takes f32 [n, 3, ", S, ", ", S, "] pixels, got ", pixels.str());
    const Tensor features = backbone_->features(pixels.contiguous(), pool);
    Tensor logits = ops::matmul(features, head_.weight, pool,
                                {.bias = head_.bias.defined() ? &head_.bias : nullptr});
    float* p = logits.data<float>();
    for (int64_t i = 0; i < logits.numel(); ++i) p[i] = 1.0f / (1.0f + std::exp(-p[i]));
    return logits;
  }

  MemoryEstimate memory(int64_t batch, int n_threads, int64_t image_width,
                        int64_t image_height) const override {
    const int64_t S = config_.input_size, n_tags = static_cast<int64_t>(tags_.size());
    MemoryEstimate m;
    for (const auto& f : ckpt_.files())  // mapped whole
      m.weight_bytes += static_cast<int64_t>(fs::file_size(f.path()));
    m.weight_bytes += backbone_->copied_bytes() + owned_bytes(head_);
    m.input_bytes = 4 * batch * 3 * S * S;
    // The head's logits (made probabilities in place) beside the pooled features.
    m.activation_bytes = std::max(backbone_->activation_bytes(batch, n_threads),
                                  4 * batch * (backbone_->num_features() + n_tags));
    cpu::ScratchPeak scratch;
    backbone_->add_scratch(scratch, batch);
    scratch.add(head_.weight.dtype(), batch, backbone_->num_features());
    m.scratch_bytes = scratch.bytes(n_threads);
    // preprocess(): the decoded RGB image, the white square, its resized copy and the f32 input.
    const int64_t w = image_width > 0 ? image_width : S, h = image_height > 0 ? image_height : S;
    const int64_t side = std::max(w, h);
    const auto scaled = static_cast<int64_t>(std::floor(static_cast<double>(S) / config_.crop_pct));
    m.preprocess_bytes =
        image::decode_bytes(w, h) + 3 * side * side + 3 * scaled * scaled + 4 * 3 * S * S;
    return m;
  }

 private:
  std::string dir_, name_;
  Config config_;
  std::vector<Tag> tags_;
  safetensors::Checkpoint ckpt_;
  std::unique_ptr<Backbone> backbone_;
  clip::Linear head_;
};

bool is_wd_folder(const std::string& path) {
  std::error_code ec;
  const fs::path d(path);
  return fs::is_directory(d, ec) && fs::exists(d / "selected_tags.csv", ec) &&
         fs::exists(d / "config.json", ec);
}

const bool registered = [] {
  register_architecture({.name = "wd-tagger",
                         .family = "vision",
                         .summary = "SmilingWolf's WD v3 image taggers (timm ViT, ConvNeXt, "
                                    "SwinV2 with selected_tags.csv)"});
  register_format({.name = "wd-timm",
                   .what = "a WD v3 tagger folder (model.safetensors, config.json, "
                           "selected_tags.csv), e.g. SmilingWolf/wd-vit-tagger-v3",
                   .recognizes = is_wd_folder,
                   .open = [](const std::string& path) -> std::shared_ptr<const Tagger> {
                     return std::make_shared<WdTagger>(path);
                   }});
  return true;
}();

}  // namespace
}  // namespace eight::tagger::wd

// T5 encoder loading (see t5.h): config.json or shapes, weights by their transformers names.
#include "models/t5/t5.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "models/registry.h"
#include "models/t5/t5_internal.h"
#include "ops/get_rows.h"

namespace eight::t5 {

namespace {

const bool registered = (register_architecture({.name = "t5",
                                                .family = "text-encoder",
                                                .summary = "T5 / T5 v1.1 / umT5 encoders "
                                                           "(FLUX, LTX, WAN, MAGNeT text "
                                                           "encoders) from safetensors"}),
                         true);

using Json = nlohmann::json;

int64_t int_field(const Json& j, const char* key, int64_t fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  check(j[key].is_number_integer(), "[t5] ", where, ": ", key, " must be an integer, not ",
        j[key].dump());
  const int64_t v = j[key].get<int64_t>();
  check(v > 0 && v <= (int64_t{1} << 24), "[t5] ", where, ": ", key, " = ", v);
  return v;
}

FeedForward feed_forward(const std::string& proj, const std::string& where) {
  // transformers: "gated-gelu" means gated gelu_new (T5Config maps it); plain names act as is.
  if (proj == "relu") return FeedForward::ReLU;
  if (proj == "gated-gelu" || proj == "gated-gelu_new") return FeedForward::GatedGeluNew;
  if (proj == "gelu_new") return FeedForward::GeluNew;
  if (proj == "gelu") return FeedForward::Gelu;
  fail("[t5] ", where, ": feed_forward_proj '", proj,
       "' is not supported (relu, gated-gelu, gelu_new, gelu are)");
}

// A float vector or small table as f32, whatever float type the file stores.
Tensor to_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t;
  const int64_t rows = t.dim() == 2 ? t.size(0) : 1, cols = t.size(-1);
  Tensor out = Tensor::empty({rows, cols}, DType::F32);
  Tensor ids = Tensor::empty({rows}, DType::I32);
  for (int64_t r = 0; r < rows; ++r) ids.data<int32_t>()[r] = static_cast<int32_t>(r);
  ops::get_rows(t.reshape({rows, cols}), ids, out);
  return out.reshape(t.shape());
}

Tensor need(const safetensors::Checkpoint& c, const std::string& name, const Dims& shape) {
  check(c.has(name), "[t5] ", c.path(), ": missing tensor '", name, "'");
  const Tensor t = c.tensor(name);
  check(t.shape() == shape, "[t5] ", c.path(), ": tensor '", name, "' has shape ", t.shape().str(),
        " but the config implies ", shape.str());
  return t;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  check(in.good(), "[t5] cannot open '", p.string(), "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string block(int64_t i) {
  return cat("encoder.block.", i, ".");
}

}  // namespace

const char* feed_forward_name(FeedForward ff) {
  switch (ff) {
    case FeedForward::ReLU:
      return "relu";
    case FeedForward::GatedGeluNew:
      return "gated-gelu";
    case FeedForward::GatedGelu:
      return "gated-gelu (erf)";
    case FeedForward::GeluNew:
      return "gelu_new";
    case FeedForward::Gelu:
      return "gelu";
  }
  return "?";
}

Config parse_config(const std::string& text, const std::string& where) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail("[t5] ", where, " is not valid JSON: ", e.what());
  }
  check(j.is_object(), "[t5] ", where, " is not a JSON object");
  Config c;
  c.model_type = j.value("model_type", std::string("t5"));
  check(c.model_type == "t5" || c.model_type == "umt5" || c.model_type == "mt5", "[t5] ", where,
        ": model_type '", c.model_type, "' is not t5, mt5 or umt5");
  c.per_layer_bias = c.model_type == "umt5";
  c.vocab = int_field(j, "vocab_size", 32128, where);
  c.d_model = int_field(j, "d_model", 512, where);
  c.d_kv = int_field(j, "d_kv", 64, where);
  c.n_heads = int_field(j, "num_heads", 8, where);
  c.d_ff = int_field(j, "d_ff", 2048, where);
  c.n_layers = int_field(j, "num_layers", 6, where);
  c.num_buckets = int_field(j, "relative_attention_num_buckets", 32, where);
  c.max_distance = int_field(j, "relative_attention_max_distance", 128, where);
  c.eps = j.value("layer_norm_epsilon", 1e-6f);
  check(std::isfinite(c.eps) && c.eps > 0 && c.eps < 1, "[t5] ", where, ": layer_norm_epsilon ",
        c.eps);
  c.ff = feed_forward(j.value("feed_forward_proj", std::string("relu")), where);
  check(c.num_buckets >= 4, "[t5] ", where, ": relative_attention_num_buckets ", c.num_buckets,
        " (at least 4)");
  return c;
}

Config infer_config(const safetensors::Checkpoint& ckpt) {
  Config c;
  const std::string emb =
      ckpt.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
  const auto* e = ckpt.find_tensor(emb);
  check(e != nullptr && e->shape.size() == 2, "[t5] ", ckpt.path(),
        ": no config.json and no 2-D 'shared.weight' to infer the dimensions from");
  c.vocab = e->shape[0];
  c.d_model = e->shape[1];
  const auto* bias =
      ckpt.find_tensor(block(0) + "layer.0.SelfAttention.relative_attention_bias.weight");
  check(bias != nullptr && bias->shape.size() == 2, "[t5] ", ckpt.path(),
        ": missing the block-0 relative_attention_bias that gives the number of heads");
  c.num_buckets = bias->shape[0];
  c.n_heads = bias->shape[1];
  const auto* q = ckpt.find_tensor(block(0) + "layer.0.SelfAttention.q.weight");
  check(q != nullptr && q->shape.size() == 2 && q->shape[0] % c.n_heads == 0, "[t5] ", ckpt.path(),
        ": missing or odd block-0 q.weight");
  c.d_kv = q->shape[0] / c.n_heads;
  while (ckpt.has(block(c.n_layers) + "layer.0.SelfAttention.q.weight")) ++c.n_layers;
  const bool gated = ckpt.has(block(0) + "layer.1.DenseReluDense.wi_0.weight");
  const auto* wi = ckpt.find_tensor(block(0) + (gated ? "layer.1.DenseReluDense.wi_0.weight"
                                                      : "layer.1.DenseReluDense.wi.weight"));
  check(wi != nullptr && wi->shape.size() == 2, "[t5] ", ckpt.path(),
        ": missing block-0 DenseReluDense.wi / wi_0");
  c.d_ff = wi->shape[0];
  // Without a config, gated means T5 v1.1 / umT5 (gelu_new) and ungated the original T5 (ReLU).
  c.ff = gated ? FeedForward::GatedGeluNew : FeedForward::ReLU;
  c.per_layer_bias =
      c.n_layers > 1 && ckpt.has(block(1) + "layer.0.SelfAttention.relative_attention_bias.weight");
  c.model_type = c.per_layer_bias ? "umt5" : "t5";
  return c;
}

int64_t relative_position_bucket(int64_t relative, int64_t num_buckets, int64_t max_distance) {
  // transformers' T5Attention._relative_position_bucket (bidirectional), in float32 as there.
  const int64_t half = num_buckets / 2;
  int64_t bucket = relative > 0 ? half : 0;
  const int64_t n = relative < 0 ? -relative : relative;
  const int64_t max_exact = half / 2;
  if (n < max_exact) return bucket + n;
  const float ratio = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                      static_cast<float>(half - max_exact);
  return bucket + std::min(max_exact + static_cast<int64_t>(ratio), half - 1);
}

Encoder::Encoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Encoder::~Encoder() = default;
const Config& Encoder::config() const {
  return impl_->c;
}
const std::string& Encoder::path() const {
  return impl_->path;
}

Config load_config(const std::string& path, const safetensors::Checkpoint& ckpt) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const fs::path cfg = dir / "config.json";
  return fs::exists(cfg, ec) ? parse_config(read_text(cfg), cfg.string()) : infer_config(ckpt);
}

std::shared_ptr<const Encoder> Encoder::load(const std::string& path) {
  auto m = std::make_unique<Impl>(safetensors::Checkpoint::open(path));
  m->path = path;
  Config& c = m->c;
  c = load_config(path, m->ckpt);
  const safetensors::Checkpoint& ck = m->ckpt;
  m->shared = need(ck, ck.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight",
                   {c.vocab, c.d_model});
  const int64_t D = c.d_model, inner = c.d_kv * c.n_heads;
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string a = block(i) + "layer.0.SelfAttention.", f = block(i) + "layer.1.";
    Layer L;
    L.q = {need(ck, a + "q.weight", {inner, D}), Tensor()};
    L.k = {need(ck, a + "k.weight", {inner, D}), Tensor()};
    L.v = {need(ck, a + "v.weight", {inner, D}), Tensor()};
    L.o = {need(ck, a + "o.weight", {D, inner}), Tensor()};
    if (i == 0 || c.per_layer_bias)
      L.bias = to_f32(need(ck, a + "relative_attention_bias.weight", {c.num_buckets, c.n_heads}));
    L.attn_norm = to_f32(need(ck, block(i) + "layer.0.layer_norm.weight", {D}));
    L.ff_norm = to_f32(need(ck, f + "layer_norm.weight", {D}));
    const std::string ff = f + "DenseReluDense.";
    if (c.gated()) {
      L.wi0 = {need(ck, ff + "wi_0.weight", {c.d_ff, D}), Tensor()};
      L.wi1 = {need(ck, ff + "wi_1.weight", {c.d_ff, D}), Tensor()};
    } else {
      L.wi0 = {need(ck, ff + "wi.weight", {c.d_ff, D}), Tensor()};
    }
    L.wo = {need(ck, ff + "wo.weight", {D, c.d_ff}), Tensor()};
    m->layers.push_back(std::move(L));
  }
  check(c.n_layers > 0, "[t5] ", path, ": no encoder blocks");
  m->final_norm = to_f32(need(ck, "encoder.final_layer_norm.weight", {D}));
  return std::make_shared<const Encoder>(std::move(m));
}

}  // namespace eight::t5

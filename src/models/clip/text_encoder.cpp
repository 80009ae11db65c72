// CLIP text towers as prompt encoders (transformers' CLIPTextTransformer with
// output_hidden_states): embeddings, the causal encoder up to the requested hidden state, then the
// remaining layers, the final layer norm and the projection for the pooled output.
#include "models/clip/text_encoder.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/clip/clip_internal.h"
#include "ops/get_rows.h"
#include "ops/matmul.h"
#include "ops/norm.h"

namespace eight::clip {

struct TextEncoder::Impl {
  TextEncoderConfig config;
  std::string name;
  Tensor token_embedding;     // text_model.embeddings.token_embedding.weight [vocab, hidden]
  Tensor position_embedding;  // text_model.embeddings.position_embedding.weight [positions,
                              // hidden] f32
  Tower tower;                // text_model.encoder
  LayerNorm final_norm;       // text_model.final_layer_norm
  Tensor projection;          // text_projection.weight [projection_dim, hidden], or undefined
  int64_t weight_bytes = 0;
};

namespace {

int64_t count_layers(const NamedTensors& w) {
  int64_t n = 0;
  while (w.count(cat("text_model.encoder.layers.", n, ".self_attn.q_proj.weight"))) ++n;
  return n;
}

// The tower without a config.json: sizes from the shapes, heads 64 wide (SDXL's and FLUX's
// encoders), CLIPTextConfig's layer_norm_eps.
TextEncoderConfig config_from_shapes(const NamedTensors& w, const std::string& act,
                                     const std::string& name) {
  TextEncoderConfig c;
  auto tok = w.find("text_model.embeddings.token_embedding.weight");
  auto pos = w.find("text_model.embeddings.position_embedding.weight");
  auto fc1 = w.find("text_model.encoder.layers.0.mlp.fc1.weight");
  check(tok != w.end() && pos != w.end() && fc1 != w.end(), "[clip] ", name,
        ": the text tower lacks its token or position embedding or its first layer");
  check(tok->second.dim() == 2 && pos->second.dim() == 2 && fc1->second.dim() == 2, "[clip] ", name,
        ": embeddings of shapes ", tok->second.shape().str(), " and ", pos->second.shape().str());
  c.vocab = tok->second.size(0);
  c.hidden = tok->second.size(1);
  c.positions = pos->second.size(0);
  c.intermediate = fc1->second.size(0);
  c.layers = count_layers(w);
  check(c.hidden % 64 == 0, "[clip] ", name, ": hidden size ", c.hidden,
        " is not a multiple of the 64-wide heads assumed without a config.json");
  c.heads = c.hidden / 64;
  c.act = act;
  return c;
}

}  // namespace

TextEncoder::TextEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextEncoder::~TextEncoder() = default;
const TextEncoderConfig& TextEncoder::config() const {
  return impl_->config;
}
int64_t TextEncoder::weight_bytes() const {
  return impl_->weight_bytes;
}

std::shared_ptr<const TextEncoder> TextEncoder::build(const std::map<std::string, Tensor>& w,
                                                      const std::string& config_json,
                                                      const std::string& default_act,
                                                      const std::string& name, Device device) {
  auto m = std::make_unique<Impl>();
  m->name = name;
  TextEncoderConfig c = config_from_shapes(w, default_act, name);
  TowerConfig t{.hidden = static_cast<int>(c.hidden),
                .intermediate = static_cast<int>(c.intermediate),
                .layers = static_cast<int>(c.layers),
                .heads = static_cast<int>(c.heads),
                .eps = c.eps,
                .act = c.act};
  if (!config_json.empty()) {
    t = parse_text_config(config_json);
    check(t.hidden == c.hidden && t.intermediate == c.intermediate && t.layers <= c.layers,
          "[clip] ", name, ": config.json says hidden ", t.hidden, ", intermediate ",
          t.intermediate, ", ", t.layers, " layers; the weights hold ", c.hidden, ", ",
          c.intermediate, ", ", c.layers);
    c.heads = t.heads;
    c.layers = t.layers;
    c.eps = t.eps;
    c.act = t.act;
  }
  check(c.layers >= 1 && c.positions >= 2 && c.positions <= 4096, "[clip] ", name, ": ", c.layers,
        " layers and ", c.positions, " positions");
  m->token_embedding =
      weight_matrix(w, "text_model.embeddings.token_embedding.weight", {c.vocab, c.hidden});
  m->position_embedding = to_f32(
      need_tensor(w, "text_model.embeddings.position_embedding.weight", {c.positions, c.hidden}));
  m->tower = load_tower(w, "text_model", t);
  m->final_norm = load_norm(w, "text_model.final_layer_norm", c.hidden);
  if (auto it = w.find("text_projection.weight"); it != w.end()) {
    check(it->second.dim() == 2 && it->second.size(1) == c.hidden, "[clip] ", name,
          ": text_projection.weight has shape ", it->second.shape().str());
    c.projection_dim = it->second.size(0);
    m->projection = weight_matrix(w, "text_projection.weight", {c.projection_dim, c.hidden});
  }
  m->weight_bytes =
      static_cast<int64_t>(m->token_embedding.nbytes() + m->position_embedding.nbytes() +
                           (m->projection.defined() ? m->projection.nbytes() : 0)) +
      tower_bytes(m->tower) + 2 * c.hidden * static_cast<int64_t>(sizeof(float));
  m->config = c;
  if (device.kind != DeviceKind::CPU) place_tower(m->tower, device);
  return std::make_shared<const TextEncoder>(std::move(m));
}

TextEncoding TextEncoder::encode(const std::vector<std::vector<int32_t>>& ids, int layer,
                                 ThreadPool& pool) const {
  const Impl& m = *impl_;
  const TextEncoderConfig& c = m.config;
  const auto n = static_cast<int64_t>(ids.size());
  check(n > 0, "[clip] ", m.name, ": no text to encode");
  const auto L = static_cast<int64_t>(ids[0].size());
  check(L >= 1 && L <= c.positions, "[clip] ", m.name, ": a window of ", L,
        " tokens is outside [1, ", c.positions, "]");
  const int64_t n_states = c.layers + 1;
  const int64_t at = layer < 0 ? n_states + layer : layer;
  check(at >= 0 && at < n_states, "[clip] ", m.name, ": hidden state ", layer, " of ", n_states);
  const int64_t D = c.hidden, rows = n * L;

  Tensor all_ids = Tensor::empty({rows}, DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    const auto& t = ids[static_cast<size_t>(i)];
    check(static_cast<int64_t>(t.size()) == L, "[clip] ", m.name, ": windows of ", L, " and ",
          t.size(), " tokens in one batch");
    for (int32_t id : t)
      check(id >= 0 && id < c.vocab, "[clip] ", m.name, ": token id ", id,
            " is outside the vocabulary of ", c.vocab);
    std::memcpy(all_ids.data<int32_t>() + i * L, t.data(), t.size() * sizeof(int32_t));
  }
  Tensor x = Tensor::empty({rows, D}, DType::F32);  // x: [n * L, D]
  ops::get_rows(m.token_embedding, all_ids, x);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data<float>() + r * D;
    const float* pos = m.position_embedding.data<float>() + (r % L) * D;
    for (int64_t j = 0; j < D; ++j) row[j] += pos[j];
  }
  const std::vector<int64_t> lens(static_cast<size_t>(n), L);
  auto run_layers = [&](int64_t from, int64_t to) {
    if (from >= to) return;
    Tower part{.config = m.tower.config, .act = m.tower.act, .layers = {}};
    part.layers.assign(m.tower.layers.begin() + from, m.tower.layers.begin() + to);
    run_tower(part, x, lens, true, pool);
  };
  // hidden_states[at] is the output of the first `at` layers.
  run_layers(0, at);
  TextEncoding out;
  out.hidden = x.clone().reshape({n, L, D});
  run_layers(at, c.layers);

  // The pooled token: the first occurrence of the largest id (transformers' argmax pooling).
  Tensor pooled = Tensor::empty({n, D}, DType::F32);
  for (int64_t i = 0; i < n; ++i) {
    const auto& t = ids[static_cast<size_t>(i)];
    const int64_t p = std::max_element(t.begin(), t.end()) - t.begin();
    std::memcpy(pooled.data<float>() + i * D, x.data<float>() + (i * L + p) * D,
                static_cast<size_t>(D) * sizeof(float));
  }
  ops::layer_norm(pooled, pooled,
                  {.weight = &m.final_norm.weight,
                   .bias = &m.final_norm.bias,
                   .eps = static_cast<float>(c.eps)});
  out.pooled = m.projection.defined() ? ops::matmul(pooled, m.projection, pool) : pooled;
  return out;
}

}  // namespace eight::clip

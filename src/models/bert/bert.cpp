// BERT encoder forward pass over GGUF weights (see bert.h); tensor names as llama.cpp's
// convert_hf_to_gguf.py writes them for BertModel (gguf-py MODEL_ARCH.BERT).
#include "models/bert/bert.h"

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "models/registry.h"
#include "nn/linear.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/get_rows.h"
#include "ops/norm.h"

namespace eight::bert {

namespace {

const bool registered = (register_architecture({.name = "bert",
                                                .family = "embedding",
                                                .summary = "BERT sentence embeddings (bge, "
                                                           "all-MiniLM, e5) from llama.cpp GGUFs"}),
                         true);

struct Norm {
  Tensor weight, bias;  // f32 [n_embd]
};

struct Layer {
  nn::Linear q, k, v, o, up, down;
  Norm attn_norm, out_norm;
};

}  // namespace

struct Model::Impl {
  gguf::File file;
  Config c;
  text::Tokenizer tok;
  Tensor token_embd, position_embd, token_types;  // tables as stored
  Norm embd_norm;
  std::vector<Layer> layers;
  Impl(gguf::File f, text::Tokenizer t) : file(std::move(f)), tok(std::move(t)) {}
};

namespace {

Tensor need(const gguf::File& f, const std::string& name, const Dims& shape) {
  check(f.find_tensor(name) != nullptr, "[bert] ", f.path(), ": missing tensor '", name, "'");
  Tensor t = f.tensor(name);
  if (shape.size() == 1 && t.numel() == shape[0]) return t.reshape(shape);
  check(t.shape() == shape, "[bert] ", f.path(), ": tensor '", name, "' has shape ",
        t.shape().str(), " but the metadata implies ", shape.str());
  return t;
}

// A vector (norm weight, bias) as f32, whatever float type the file stores it in.
Tensor f32_vector(const gguf::File& f, const std::string& name, int64_t n) {
  const Tensor t = need(f, name, {n});
  if (t.dtype() == DType::F32) return t;
  Tensor out = Tensor::empty({1, n}, DType::F32);
  Tensor id = Tensor::zeros({1}, DType::I32);
  ops::get_rows(t.reshape({1, n}), id, out);
  return out.reshape({n});
}

nn::Linear linear(const gguf::File& f, const std::string& name, int64_t out, int64_t in) {
  return {need(f, name + ".weight", {out, in}), f32_vector(f, name + ".bias", out)};
}

Norm norm(const gguf::File& f, const std::string& name, int64_t n) {
  return {f32_vector(f, name + ".weight", n), f32_vector(f, name + ".bias", n)};
}

int64_t key(const gguf::File& f, const char* k) {
  const auto* v = f.find(cat("bert.", k));
  check(v != nullptr, "[bert] ", f.path(), ": missing key 'bert.", k, "'");
  const int64_t x = v->as_i64();
  check(x > 0 && x < (int64_t{1} << 24), "[bert] ", f.path(), ": bert.", k, " = ", x);
  return x;
}

void layer_norm(const Tensor& x, const Norm& n, float eps) {
  ops::layer_norm(x, x, {.weight = &n.weight, .bias = &n.bias, .eps = eps});
}

void add(const Tensor& y, const Tensor& x) {
  float* a = y.data<float>();
  const float* b = x.data<const float>();
  for (int64_t i = 0; i < y.numel(); ++i) a[i] += b[i];
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const Config& Model::config() const {
  return impl_->c;
}
const text::Tokenizer& Model::tokenizer() const {
  return impl_->tok;
}
const gguf::File& Model::file() const {
  return impl_->file;
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::None:
      return "none";
    case Pooling::Mean:
      return "mean";
    case Pooling::CLS:
      return "cls";
    case Pooling::Last:
      return "last";
  }
  return "?";
}

std::shared_ptr<const Model> Model::load(const std::string& path) {
  return from_file(gguf::File::open(path));
}

std::shared_ptr<const Model> Model::from_file(gguf::File file) {
  check(file.architecture() == "bert", "[bert] ", file.path(), " has architecture '",
        file.architecture(), "', not bert");
  text::Tokenizer tok = text::Tokenizer::from_gguf(file);
  auto m = std::make_unique<Impl>(std::move(file), std::move(tok));
  const gguf::File& f = m->file;
  Config& c = m->c;
  c.n_embd = key(f, "embedding_length");
  c.n_layer = key(f, "block_count");
  c.n_head = key(f, "attention.head_count");
  c.n_ff = key(f, "feed_forward_length");
  c.n_ctx = key(f, "context_length");
  c.eps = f.get_f32("bert.attention.layer_norm_epsilon", 1e-12f);
  check(c.n_embd % c.n_head == 0, "[bert] ", f.path(), ": embedding length ", c.n_embd,
        " is not a multiple of ", c.n_head, " heads");
  check(std::isfinite(c.eps) && c.eps > 0 && c.eps < 1, "[bert] ", f.path(),
        ": layer_norm_epsilon ", c.eps);
  check(!f.get_bool("bert.attention.causal", false), "[bert] ", f.path(),
        ": causal BERT attention is not supported");
  const int64_t pooling = f.get_u32("bert.pooling_type", 1);  // sentence-transformers: mean
  check(pooling >= 1 && pooling <= 3, "[bert] ", f.path(), ": bert.pooling_type ", pooling,
        " (1 mean, 2 CLS, 3 last are supported; 0 gives no sentence embedding)");
  c.pooling = static_cast<Pooling>(pooling);

  check(f.find_tensor("token_embd.weight") != nullptr, "[bert] ", f.path(),
        ": missing tensor 'token_embd.weight'");
  c.n_vocab = f.tensor("token_embd.weight").size(0);
  check(c.n_vocab == m->tok.size(), "[bert] ", f.path(), ": token_embd has ", c.n_vocab,
        " rows but the vocabulary ", m->tok.size(), " tokens");
  m->token_embd = need(f, "token_embd.weight", {c.n_vocab, c.n_embd});
  m->position_embd = need(f, "position_embd.weight", {c.n_ctx, c.n_embd});
  check(f.find_tensor("token_types.weight") != nullptr, "[bert] ", f.path(),
        ": missing tensor 'token_types.weight'");
  c.n_types = f.tensor("token_types.weight").size(0);
  m->token_types = need(f, "token_types.weight", {c.n_types, c.n_embd});
  m->embd_norm = norm(f, "token_embd_norm", c.n_embd);
  check(f.find_tensor("blk.0.attn_qkv.weight") == nullptr, "[bert] ", f.path(),
        ": fused attn_qkv (nomic-bert / jina layouts) is not supported");
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string p = cat("blk.", il, ".");
    Layer L;
    L.q = linear(f, p + "attn_q", c.n_embd, c.n_embd);
    L.k = linear(f, p + "attn_k", c.n_embd, c.n_embd);
    L.v = linear(f, p + "attn_v", c.n_embd, c.n_embd);
    L.o = linear(f, p + "attn_output", c.n_embd, c.n_embd);
    L.up = linear(f, p + "ffn_up", c.n_ff, c.n_embd);
    L.down = linear(f, p + "ffn_down", c.n_embd, c.n_ff);
    L.attn_norm = norm(f, p + "attn_output_norm", c.n_embd);
    L.out_norm = norm(f, p + "layer_output_norm", c.n_embd);
    m->layers.push_back(std::move(L));
  }
  return std::make_shared<const Model>(std::move(m));
}

Tensor Model::hidden_states(const std::vector<int32_t>& ids, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const Config& c = m.c;
  const auto T = static_cast<int64_t>(ids.size());
  check(T >= 1, "[bert] nothing to embed (no tokens)");
  check(T <= c.n_ctx, "[bert] ", T, " tokens but the model takes at most ", c.n_ctx);
  const int64_t D = c.n_embd, H = c.n_head, hd = D / H;

  Tensor x = Tensor::empty({T, D}, DType::F32);
  Tensor tmp = Tensor::empty({T, D}, DType::F32);
  nn::embedding(x, m.token_embd, ids.data(), T);
  std::vector<int32_t> pos(static_cast<size_t>(T)), zero(static_cast<size_t>(T), 0);
  std::iota(pos.begin(), pos.end(), 0);
  nn::embedding(tmp, m.position_embd, pos.data(), T);
  add(x, tmp);
  nn::embedding(tmp, m.token_types, zero.data(), T);  // one segment: type 0
  add(x, tmp);
  layer_norm(x, m.embd_norm, c.eps);

  Tensor q = Tensor::empty({T, D}, DType::F32), k = Tensor::empty({T, D}, DType::F32),
         v = Tensor::empty({T, D}, DType::F32), a = Tensor::empty({T, D}, DType::F32);
  Tensor h = Tensor::empty({T, c.n_ff}, DType::F32);
  for (const Layer& L : m.layers) {
    nn::linear(q, x, L.q, pool);
    nn::linear(k, x, L.k, pool);
    nn::linear(v, x, L.v, pool);
    ops::attention(q.reshape({T, H, hd}), k.reshape({T, H, hd}), v.reshape({T, H, hd}),
                   a.reshape({T, H, hd}), pool, {.scale = 0, .causal = false});
    nn::linear(tmp, a, L.o, pool);
    add(x, tmp);
    layer_norm(x, L.attn_norm, c.eps);  // post-LN
    nn::linear(h, x, L.up, pool);
    ops::activation(ops::Activation::GELU, h, h);  // erf GELU, as BERT's "gelu"
    nn::linear(tmp, h, L.down, pool);
    add(x, tmp);
    layer_norm(x, L.out_norm, c.eps);
  }
  return x;
}

std::vector<float> Model::embed(const std::vector<int32_t>& ids, ThreadPool& pool,
                                bool normalize) const {
  const Tensor hs = hidden_states(ids, pool);
  const int64_t T = hs.size(0), D = hs.size(1);
  const float* p = hs.data<const float>();
  std::vector<double> acc(static_cast<size_t>(D), 0.0);
  switch (impl_->c.pooling) {
    case Pooling::Mean:
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) acc[d] += p[t * D + d];
      for (double& s : acc) s /= static_cast<double>(T);
      break;
    case Pooling::CLS:
      for (int64_t d = 0; d < D; ++d) acc[d] = p[d];
      break;
    case Pooling::Last:
      for (int64_t d = 0; d < D; ++d) acc[d] = p[(T - 1) * D + d];
      break;
    case Pooling::None:
      fail("[bert] pooling none gives no sentence embedding");
  }
  double norm = 0;
  for (double s : acc) norm += s * s;
  norm = normalize ? std::max(std::sqrt(norm), 1e-12) : 1.0;
  std::vector<float> out(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) out[d] = static_cast<float>(acc[d] / norm);
  return out;
}

}  // namespace eight::bert

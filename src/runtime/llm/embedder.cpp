#include "runtime/llm/embedder.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/bert/bert.h"
#include "models/llm/llm.h"

namespace eight {
namespace {

class BertEmbedder final : public TextEmbedder {
 public:
  explicit BertEmbedder(std::shared_ptr<const bert::Model> m) : m_(std::move(m)) {}
  const text::Tokenizer& tokenizer() const override { return m_->tokenizer(); }
  int64_t dim() const override { return m_->config().n_embd; }
  int64_t max_tokens() const override { return m_->config().n_ctx; }
  std::string pooling() const override { return bert::pooling_name(m_->config().pooling); }
  std::string architecture() const override { return "bert"; }
  std::vector<float> embed_ids(const std::vector<int32_t>& ids, ThreadPool& pool) const override {
    return m_->embed(ids, pool);
  }

 private:
  std::shared_ptr<const bert::Model> m_;
};

// Decoder LLMs: one causal pass over the text (a fresh cache each time), and the final norm's
// output at the last position, which the forward pass hands to its observer as "result_norm".
class DecoderEmbedder final : public TextEmbedder {
 public:
  explicit DecoderEmbedder(std::shared_ptr<llm::LLM> m)
      : m_(std::move(m)), tok_(text::Tokenizer::from_gguf(m_->file())) {}
  const text::Tokenizer& tokenizer() const override { return tok_; }
  int64_t dim() const override { return m_->config().n_embd; }
  int64_t max_tokens() const override { return std::min<int64_t>(m_->config().n_ctx_train, 8192); }
  std::string pooling() const override { return "last"; }
  std::string architecture() const override { return m_->file().architecture(); }
  std::vector<float> embed_ids(const std::vector<int32_t>& ids, ThreadPool& pool) const override {
    const llm::LLMConfig& c = m_->config();
    const auto T = static_cast<int64_t>(ids.size());
    check(T >= 1, "[embed] nothing to embed (no tokens)");
    std::vector<nn::KVLayerView> kv;
    for (int64_t il = 0; il < c.n_layer; ++il)
      kv.push_back(
          {Tensor::empty({T, c.kv_dim()}, DType::F32), Tensor::empty({T, c.kv_dim()}, DType::F32)});
    llm::LLMScratch scratch(c, std::min<int64_t>(T, 512));
    std::vector<float> logits(static_cast<size_t>(c.n_vocab));
    std::vector<float> last;
    llm::ForwardOptions opt{.n_ctx = T, .all_logits = false, .observer = nullptr};
    opt.observer = [&](const char* name, int64_t, const Tensor& v) {
      if (std::strcmp(name, "result_norm") != 0) return;
      const float* r = v.data<const float>() + (v.size(0) - 1) * v.size(1);
      last.assign(r, r + v.size(1));
    };
    llm::forward(*m_, ids.data(), T, 0, kv, scratch, logits.data(), opt, pool);
    check(static_cast<int64_t>(last.size()) == c.n_embd, "[embed] no final hidden state");
    double n = 0;
    for (float x : last) n += double(x) * x;
    const double s = 1.0 / std::max(std::sqrt(n), 1e-12);
    for (float& x : last) x = static_cast<float>(x * s);
    return last;
  }

 private:
  std::shared_ptr<llm::LLM> m_;
  text::Tokenizer tok_;
};

}  // namespace

bool TextEmbedder::handles(const std::string& path) {
  const std::string arch = gguf::File::open(path).architecture();
  return arch == "bert" || llm::find_llm_architecture(arch) != nullptr;
}

std::unique_ptr<TextEmbedder> TextEmbedder::load(const std::string& path) {
  gguf::File f = gguf::File::open(path);
  const std::string arch = f.architecture();
  if (arch == "bert") return std::make_unique<BertEmbedder>(bert::Model::from_file(std::move(f)));
  check(llm::find_llm_architecture(arch) != nullptr, "[embed] ", path, ": architecture '", arch,
        "' has no text embeddings here (bert and the decoder LLMs do)");
  return std::make_unique<DecoderEmbedder>(llm::LLM::from_file(std::move(f)));
}

std::vector<int32_t> TextEmbedder::tokenize(const std::string& text) const {
  // As Hugging Face's tokenizer (sentence-transformers) and llama.cpp's embedding endpoint do:
  // the model's BOS/EOS ([CLS]/[SEP]) added, special-token text written in the input parsed.
  return tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/true);
}

Tensor TextEmbedder::embed(const std::vector<std::string>& texts, ThreadPool& pool) const {
  const int64_t d = dim();
  Tensor out = Tensor::empty({static_cast<int64_t>(texts.size()), d}, DType::F32);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int32_t> ids = tokenize(texts[i]);
    check(static_cast<int64_t>(ids.size()) <= max_tokens(), "[embed] input ", i, " has ",
          ids.size(), " tokens; this model embeds at most ", max_tokens());
    const std::vector<float> e = embed_ids(ids, pool);
    std::memcpy(out.data<float>() + static_cast<int64_t>(i) * d, e.data(),
                static_cast<size_t>(d) * sizeof(float));
  }
  return out;
}

}  // namespace eight

// BLIP's public entry points: the vision tower (transformers' BlipVisionModel: patches with a
// biased stride-p convolution, [class; patches] + positions, pre-norm encoder layers run by CLIP's
// tower, post_layernorm over every position), preprocessing, the WordPiece tokenizer, and the
// caption / answer pipelines of BlipForConditionalGeneration / BlipForQuestionAnswering.generate.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "models/blip/blip_internal.h"
#include "models/registry.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "text/wordpiece.h"

namespace eight::blip {
namespace {

const bool registered = [] {
  register_architecture({.name = "blip",
                         .family = "vision",
                         .summary = "BLIP image captioning and visual question answering"});
  return true;
}();

// transformers' generate: max_new_tokens, when given, counts from the end of the prompt.
GenerationConfig settings(const Config& c, const GenerateOptions& opt, size_t prompt_len) {
  GenerationConfig g = c.generation;
  if (opt.max_new_tokens >= 0)
    g.max_length = static_cast<int>(prompt_len) + opt.max_new_tokens;
  else if (!g.max_length_set)  // transformers 5: 20 new tokens, within the decoder's positions
    g.max_length = std::min(g.max_length + static_cast<int>(prompt_len), c.text.max_positions);
  if (opt.num_beams > 0) g.num_beams = opt.num_beams;
  check(g.num_beams <= 64, "[blip] at most 64 beams, got ", g.num_beams);
  check(g.max_length <= c.text.max_positions, "[blip] ", g.max_length,
        " tokens (prompt included) is past the decoder's ", c.text.max_positions, " positions");
  return g;
}

Generated finish(const Model& model, const std::vector<int32_t>& seq, size_t prompt_len,
                 int32_t eos) {
  Generated out;
  out.tokens.assign(seq.begin() + static_cast<std::ptrdiff_t>(prompt_len), seq.end());
  out.ended = !out.tokens.empty() && out.tokens.back() == eos;
  if (out.ended) out.tokens.pop_back();
  out.prompt_tokens = static_cast<int64_t>(prompt_len);
  out.text = model.decode(seq);
  return out;
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& dir) {
  struct Built : Model {
    explicit Built(std::unique_ptr<Impl> i) : Model(std::move(i)) {}
  };
  return std::make_shared<Built>(load_directory(dir));
}

const Config& Model::config() const {
  return impl_->config;
}
std::string Model::name() const {
  return impl_->name;
}
int64_t Model::weight_bytes() const {
  return impl_->weight_bytes;
}

int64_t Model::file_bytes() const {
  return impl_->file_bytes;
}

DType Model::matrix_type() const {
  return impl_->decoder.layers.empty() ? impl_->decoder.word_embeddings.dtype()
                                       : impl_->decoder.layers[0].fc1.weight.dtype();
}

Tensor Model::preprocess(const image::Image& img) const {
  const image::PreprocessConfig& pc = impl_->config.preprocess;
  return image::preprocess(image::resize(img, pc.crop_width, pc.crop_height), pc);
}

Tensor Model::image_embeddings(const Tensor& pixels_in, ThreadPool& pool) const {
  const Impl& m = *impl_;
  const VisionConfig& c = m.config.vision;
  const int64_t p = c.patch_size, grid = c.image_size / p, np = grid * grid, S = np + 1;
  const int64_t D = c.hidden, K = 3 * p * p;
  check(pixels_in.dim() == 3 && pixels_in.size(0) == 3 && pixels_in.size(1) == c.image_size &&
            pixels_in.size(2) == c.image_size && pixels_in.dtype() == DType::F32,
        "[blip] pixels must be f32 [3, ", c.image_size, ", ", c.image_size, "], got ",
        pixels_in.str());
  const Tensor pixels = pixels_in.contiguous();
  const int64_t W = c.image_size;
  // The stride-p convolution as a matmul over patches in (channel, y, x) order.
  Tensor patches = Tensor::empty({np, K}, DType::F32);
  pool.parallel_for(np, [&](int64_t r, int) {
    const int64_t gy = r / grid, gx = r % grid;
    float* dst = patches.data<float>() + r * K;
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t y = 0; y < p; ++y)
        std::memcpy(dst + (ch * p + y) * p,
                    pixels.data<float>() + (ch * W + gy * p + y) * W + gx * p,
                    static_cast<size_t>(p) * sizeof(float));
  });
  const Tensor emb =
      ops::matmul(patches, m.patch_embedding.weight, pool, {.bias = &m.patch_embedding.bias});
  Tensor x = Tensor::empty({S, D}, DType::F32);
  const float* pos = m.position_embedding.data<float>();
  for (int64_t j = 0; j < D; ++j) x.data<float>()[j] = m.class_embedding.data<float>()[j] + pos[j];
  for (int64_t i = 0; i < np; ++i)
    for (int64_t j = 0; j < D; ++j)
      x.data<float>()[(1 + i) * D + j] = emb.data<float>()[i * D + j] + pos[(1 + i) * D + j];
  clip::run_tower(m.tower, x, {S}, false, pool);
  ops::layer_norm(
      x, x,
      {.weight = &m.post_norm.weight, .bias = &m.post_norm.bias, .eps = static_cast<float>(c.eps)});
  return x;
}

std::vector<int32_t> Model::tokenize(const std::string& text) const {
  return encode(impl_->vocab, text);
}

std::string Model::decode(const std::vector<int32_t>& ids) const {
  return blip::decode(impl_->vocab, ids);
}

std::vector<int32_t> encode(const Vocab& v, const std::string& text) {
  std::vector<int32_t> ids{v.cls};
  // wordpiece_encode asks for word starts as "▁piece" and continuations bare: vocab.txt spells
  // them "piece" and "##piece".
  static const std::string kStart = "\xe2\x96\x81";
  text::wordpiece_encode(
      text,
      [&v](const std::string& piece) {
        const bool start = piece.starts_with(kStart);
        auto it = v.ids.find(start ? piece.substr(kStart.size()) : "##" + piece);
        return it == v.ids.end() ? -1 : it->second;
      },
      v.unk, ids);
  ids.push_back(v.sep);
  return ids;
}

std::string decode(const Vocab& v, const std::vector<int32_t>& ids) {
  // tokenizers' WordPiece decoder: "##" pieces join the previous token, others get a space (not
  // the first); then BERT's clean_up_tokenization.
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= v.tokens.size()) continue;
    if (v.special[static_cast<size_t>(id)]) continue;
    const std::string& t = v.tokens[static_cast<size_t>(id)];
    if (first)
      out += t;
    else if (t.starts_with("##"))
      out += t.substr(2);
    else
      out += " " + t;
    first = false;
  }
  for (const auto& [from, to] :
       std::initializer_list<std::pair<std::string, std::string>>{{" .", "."},
                                                                  {" ?", "?"},
                                                                  {" !", "!"},
                                                                  {" ,", ","},
                                                                  {" ' ", "'"},
                                                                  {" n't", "n't"},
                                                                  {" 'm", "'m"},
                                                                  {" 's", "'s"},
                                                                  {" 've", "'ve"},
                                                                  {" 're", "'re"}})
    for (size_t at = out.find(from); at != std::string::npos; at = out.find(from, at))
      out.replace(at, from.size(), to);
  return out;
}

Generated Model::caption(const Tensor& pixels, const GenerateOptions& opt, ThreadPool& pool) const {
  const Impl& m = *impl_;
  check(!m.config.vqa, "[blip] ", m.name,
        " is a question-answering model (BlipForQuestionAnswering): ask it a question");
  // BlipForConditionalGeneration.generate: the prompt's [CLS] becomes [DEC] and its [SEP] is cut.
  std::vector<int32_t> prompt{m.config.text.bos_token_id};
  if (!opt.prompt.empty()) {
    prompt = tokenize(opt.prompt);
    prompt[0] = m.config.text.bos_token_id;
    prompt.pop_back();
  }
  const GenerationConfig g = settings(m.config, opt, prompt.size());
  const CrossKV cross = cross_kv(m.decoder, m.config.text, image_embeddings(pixels, pool), pool);
  return finish(*this, generate(m, prompt, cross, g, pool), prompt.size(),
                m.config.text.sep_token_id);
}

Generated Model::answer(const Tensor& pixels, const std::string& question,
                        const GenerateOptions& opt, ThreadPool& pool) const {
  const Impl& m = *impl_;
  check(m.config.vqa && m.question_encoder, "[blip] ", m.name,
        " is a captioning model (BlipForConditionalGeneration), not a question-answering one");
  const TextConfig& t = m.config.text;
  const std::vector<int32_t> q = tokenize(question);
  check(static_cast<int64_t>(q.size()) <= t.max_positions, "[blip] the question has ", q.size(),
        " tokens; the model takes ", t.max_positions);
  const Tensor image = image_embeddings(pixels, pool);
  const Tensor question_states = encode_question(
      *m.question_encoder, t, q, cross_kv(*m.question_encoder, t, image, pool), pool);
  const CrossKV cross = cross_kv(m.decoder, t, question_states, pool);
  const std::vector<int32_t> prompt{t.bos_token_id};
  Generated g = finish(*this, generate(m, prompt, cross, settings(m.config, opt, 1), pool), 1,
                       t.sep_token_id);
  g.prompt_tokens += static_cast<int64_t>(q.size());
  return g;
}

}  // namespace eight::blip

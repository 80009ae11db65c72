// Prompt -> T5 -> conditioner -> MAGNeT decoding (see text_to_codes.h).
#include "models/magnet/text_to_codes.h"

#include <cmath>

#include "core/error.h"

namespace eight::magnet {

TextToCodes TextToCodes::load(const std::string& lm, const std::string& t5_dir) {
  TextToCodes m;
  m.lm_ = LM::load(lm);
  m.t5_ = t5::Encoder::load(t5_dir);
  check(text::UnigramTokenizer::handles(t5_dir), "[magnet] no spiece.model or tokenizer.json in ",
        t5_dir, " (the t5-base Hugging Face directory has both)");
  m.tok_ = std::make_shared<const text::UnigramTokenizer>(text::UnigramTokenizer::open(t5_dir));
  const Config& c = m.lm_->config();
  check(m.t5_->config().d_model == c.text_dim, "[magnet] the T5 encoder in ", t5_dir, " has width ",
        m.t5_->config().d_model, " but the LM's conditioner takes ", c.text_dim, " (",
        c.text_encoder, ")");
  check(m.tok_->size() <= m.t5_->config().vocab, "[magnet] the tokenizer in ", t5_dir, " has ",
        m.tok_->size(), " pieces, more than the encoder's ", m.t5_->config().vocab);
  return m;
}

Tensor TextToCodes::condition(const std::string& prompt, ThreadPool& pool) const {
  if (prompt.empty()) return Tensor();
  const std::vector<int32_t> ids = tok_->encode(prompt, true);
  const auto n = static_cast<int64_t>(ids.size());
  return lm_->condition(t5_->forward(ids, n, pool), n, pool);
}

int64_t TextToCodes::frames(double seconds) const {
  check(std::isfinite(seconds) && seconds > 0 && seconds <= 600, "[magnet] duration ", seconds,
        " s (0 < d <= 600)");
  return static_cast<int64_t>(std::lround(seconds * static_cast<double>(lm_->config().frame_rate)));
}

Tensor TextToCodes::generate(const std::string& prompt, double seconds, const GenerateOptions& opt,
                             ThreadPool& pool) const {
  const int64_t n = frames(seconds);
  return magnet::generate(*lm_, condition(prompt, pool), n, opt, pool);
}

}  // namespace eight::magnet

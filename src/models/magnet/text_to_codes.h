#pragma once
// Text to EnCodec codes with MAGNeT: the prompt through the T5 tokenizer and encoder (t5-base as
// a Hugging Face directory) and the LM's conditioner, then the masked decoding (generate.h).
// What `eight music` runs before the EnCodec decoder.
//
//   auto m = magnet::TextToCodes::load("magnet-small-10secs/", "t5-base/");
//   Tensor codes = m.generate("80s synth pop", 10.0, opt, pool);   // int32 [4, 498]
#include <memory>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/magnet/generate.h"
#include "models/magnet/magnet.h"
#include "models/t5/t5.h"
#include "text/unigram.h"

namespace eight::magnet {

class TextToCodes {
 public:
  // `lm`: state_dict.bin or its directory; `t5_dir`: config.json + model.safetensors and
  // spiece.model or tokenizer.json. Throws Error when the T5 width is not the conditioner's.
  static TextToCodes load(const std::string& lm, const std::string& t5_dir);

  const LM& lm() const { return *lm_; }
  // The conditioner output for `prompt` ([S, dim]); "" gives the null condition (undefined
  // Tensor), as audiocraft masks an empty description entirely.
  Tensor condition(const std::string& prompt, ThreadPool& pool) const;
  // Frames for `seconds` at the codec's frame rate (50/s), before cutting to whole spans.
  int64_t frames(double seconds) const;
  Tensor generate(const std::string& prompt, double seconds, const GenerateOptions& opt,
                  ThreadPool& pool) const;

 private:
  std::shared_ptr<const LM> lm_;
  std::shared_ptr<const t5::Encoder> t5_;
  std::shared_ptr<const text::UnigramTokenizer> tok_;
};

}  // namespace eight::magnet

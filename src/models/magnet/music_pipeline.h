#pragma once
// Prompt to audio with MAGNeT: TextToCodes (T5 + the masked-token LM) and the EnCodec decoder,
// loaded once. Both `eight music` and the server's /v1/audio/generations run this, so the
// prompt -> codes -> audio path exists once.
#include <cstdint>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/encodec/encodec.h"
#include "models/magnet/text_to_codes.h"

namespace eight::magnet {

class MusicPipeline {
 public:
  // `model`: a MAGNeT directory (state_dict.bin, compression_state_dict.bin); `t5_dir`: the
  // t5-base directory. Throws Error naming what is missing or does not fit (a codec that is not
  // mono, a directory holding only a codec).
  static MusicPipeline load(const std::string& model, const std::string& t5_dir);

  // Throws Error when `model` is a directory without the language model (a codec alone), before
  // anything (T5 included) is looked for.
  static void check_has_lm(const std::string& model);

  const TextToCodes& text_to_codes() const { return *codes_; }
  const encodec::Decoder& decoder() const { return *decoder_; }
  int64_t sample_rate() const { return decoder_->config().sample_rate; }
  // The length the LM was trained on (audiocraft generates exactly that), in seconds.
  double segment_duration() const { return codes_->lm().config().segment_duration; }

  // int32 [n_q, T] codes for `prompt` over `seconds` (logs the timings).
  Tensor codes(const std::string& prompt, double seconds, const GenerateOptions& opt,
               ThreadPool& pool) const;
  // codes -> F32 [1, T * hop] mono audio at sample_rate().
  Tensor decode(const Tensor& codes, ThreadPool& pool,
                void (*progress)(int done, int total, void* ctx) = nullptr) const;

 private:
  std::shared_ptr<const TextToCodes> codes_;
  std::shared_ptr<const encodec::Decoder> decoder_;
};

}  // namespace eight::magnet

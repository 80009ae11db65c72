// MAGNeT prompt -> codes -> audio, shared by `eight music` and the server.
#include "models/magnet/music_pipeline.h"

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"

namespace eight::magnet {

void MusicPipeline::check_has_lm(const std::string& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool dir = fs::is_directory(model, ec);
  check(!dir || fs::is_regular_file(fs::path(model) / "state_dict.bin", ec),
        "music generation needs the MAGNeT language model (state_dict.bin) in ", model,
        ", which holds only a codec: decode existing codes with eight music --codes FILE.npy");
}

MusicPipeline MusicPipeline::load(const std::string& model, const std::string& t5_dir) {
  check_has_lm(model);
  MusicPipeline p;
  p.codes_ = std::make_shared<const TextToCodes>(TextToCodes::load(model, t5_dir));
  p.decoder_ = std::make_shared<const encodec::Decoder>(encodec::Decoder::open(model));
  const encodec::Config& cfg = p.decoder_->config();
  check(cfg.channels == 1, "[encodec] ", p.decoder_->path(), " is a ", cfg.channels,
        "-channel model; MAGNeT music is mono");
  return p;
}

Tensor MusicPipeline::codes(const std::string& prompt, double seconds, const GenerateOptions& opt,
                            ThreadPool& pool) const {
  const auto t0 = std::chrono::steady_clock::now();
  const Tensor cond = codes_->condition(prompt, pool);
  const auto t1 = std::chrono::steady_clock::now();
  Tensor out = generate(codes_->lm(), cond, codes_->frames(seconds), opt, pool);
  const double t5 = std::chrono::duration<double>(t1 - t0).count();
  const double decode =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  int steps = 0;
  for (int n : opt.steps) steps += n;
  log_info("[magnet] ", out.size(1), " frames of codes: T5 ", t5, " s, decoding ", decode, " s (",
           decode / std::max(steps, 1), " s per step; seed ", opt.seed, ", ", pool.size(),
           " threads)");
  return out;
}

Tensor MusicPipeline::decode(const Tensor& codes, ThreadPool& pool,
                             void (*progress)(int done, int total, void* ctx)) const {
  decoder_->check_codes(codes);
  return decoder_->decode(codes, pool, progress);
}

}  // namespace eight::magnet

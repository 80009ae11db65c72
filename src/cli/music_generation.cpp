// The language-model half of `eight music`: MAGNeT text-to-codes (models/magnet/text_to_codes.h).
#include "cli/music_generation.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "models/magnet/text_to_codes.h"
#include "runtime/store/store.h"

namespace eight::cli {

namespace {

std::vector<double> numbers(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;  // cmd_music.cpp's validate_generation has checked the format
}

std::string t5_directory(const MusicGenerationArgs& args) {
  if (!args.t5.empty()) return args.t5;
  // Beside the model (a t5-base/ folder in the MAGNeT directory), else the store's t5-base.
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path local = fs::path(args.model) / "t5-base";
  if (fs::is_directory(local, ec)) return local.string();
  try {
    return resolve_model_path("t5-base");
  } catch (const Error& e) {
    fail("MAGNeT needs the t5-base text encoder: give its Hugging Face directory with --t5 DIR (",
         e.what(), ")");
  }
}

}  // namespace

Tensor run_music_generation(const MusicGenerationArgs& args, ThreadPool& pool) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool dir = fs::is_directory(args.model, ec);
  check(!dir || fs::is_regular_file(fs::path(args.model) / "state_dict.bin", ec),
        "eight music -p needs the MAGNeT language model (state_dict.bin) in ", args.model,
        ", which holds only a codec: decode existing codes with --codes FILE.npy");
  const std::string t5 = t5_directory(args);
  const auto t0 = std::chrono::steady_clock::now();
  const auto m = magnet::TextToCodes::load(args.model, t5);
  const double segment = m.lm().config().segment_duration;
  if (args.duration > segment + 1e-9)
    log_warn("[magnet] ", args.duration, " s is longer than the ", segment,
             " s this model was trained on (audiocraft generates exactly that length); the "
             "music may degrade past it");
  magnet::GenerateOptions opt;
  opt.steps.clear();
  for (double v : numbers(args.steps)) opt.steps.push_back(static_cast<int>(v));
  const std::vector<double> cfg = numbers(args.cfg);
  opt.max_cfg = static_cast<float>(cfg.at(0));
  opt.min_cfg = static_cast<float>(cfg.at(1));
  opt.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  const int n_q = static_cast<int>(m.lm().config().n_q);
  opt.progress = [n_q](int stage, int step, int done, int total) {
    std::fprintf(stderr, "\reight music: stage %d/%d step %d, %d/%d steps", stage + 1, n_q,
                 step + 1, done, total);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  const Tensor cond = m.condition(args.prompt, pool);
  const auto t1 = std::chrono::steady_clock::now();
  const Tensor codes = magnet::generate(m.lm(), cond, m.frames(args.duration), opt, pool);
  const double load = std::chrono::duration<double>(t1 - t0).count();
  const double decode =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  int steps = 0;
  for (int n : opt.steps) steps += n;
  log_info("[magnet] ", codes.size(1), " frames of codes: load + T5 ", load, " s, decoding ",
           decode, " s (", decode / steps, " s per step; seed ", opt.seed, ", ", pool.size(),
           " threads)");
  return codes;
}

}  // namespace eight::cli

// The language-model half of `eight music`: loading MAGNeT (models/magnet/music_pipeline.h) and
// turning the flags into its decoding options.
#include "cli/music_generation.h"

#include <cstdio>
#include <filesystem>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "runtime/store/store.h"

namespace eight::cli {

namespace {

std::vector<double> numbers(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;  // cmd_music.cpp's validate_generation has checked the format
}

}  // namespace

std::string music_t5_directory(const std::string& model, const std::string& t5) {
  if (!t5.empty()) return t5;
  // Beside the model (a t5-base/ folder in the MAGNeT directory), else the store's t5-base.
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path local = fs::path(model) / "t5-base";
  if (fs::is_directory(local, ec)) return local.string();
  try {
    return resolve_model_path("t5-base");
  } catch (const Error& e) {
    fail("MAGNeT needs the t5-base text encoder: give its Hugging Face directory with --t5 DIR (",
         e.what(), ")");
  }
}

magnet::MusicPipeline load_music_pipeline(const std::string& model, const std::string& t5) {
  magnet::MusicPipeline::check_has_lm(model);  // before looking for T5
  return magnet::MusicPipeline::load(model, music_t5_directory(model, t5));
}

magnet::GenerateOptions music_generate_options(const MusicGenerationArgs& args, int n_q) {
  magnet::GenerateOptions opt;
  opt.steps.clear();
  for (double v : numbers(args.steps)) opt.steps.push_back(static_cast<int>(v));
  const std::vector<double> cfg = numbers(args.cfg);
  opt.max_cfg = static_cast<float>(cfg.at(0));
  opt.min_cfg = static_cast<float>(cfg.at(1));
  opt.seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  opt.progress = [n_q](int stage, int step, int done, int total) {
    std::fprintf(stderr, "\reight music: stage %d/%d step %d, %d/%d steps", stage + 1, n_q,
                 step + 1, done, total);
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
  return opt;
}

}  // namespace eight::cli

#pragma once
// The language-model half of `eight music` (MAGNeT: T5 text encoder + masked-token transformer
// over EnCodec's codebooks), kept apart from cmd_music.cpp; `eight serve --music-model` loads
// through it too.
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "models/magnet/music_pipeline.h"

namespace eight::cli {

// The generation flags of `eight music`, as given on the command line.
struct MusicGenerationArgs {
  std::string model;     // -m: the MAGNeT directory (state_dict.bin, compression_state_dict.bin)
  std::string prompt;    // -p
  std::string t5;        // --t5 DIR ("" = the store's t5-base)
  double duration = 10;  // --duration, seconds
  int64_t seed = -1;     // --seed (-1: not given)
  std::string steps = "20,10,10,10";  // --steps: decoding steps per codebook stage
  std::string cfg = "10,1";           // --cfg: classifier-free guidance, annealed from..to
  int threads = 0;
};

// The t5-base directory: --t5, else a t5-base/ folder beside the model, else the store's.
std::string music_t5_directory(const std::string& model, const std::string& t5);

// Loads the model (args.model, a resolved path) and its T5 once; shared with `eight serve`.
magnet::MusicPipeline load_music_pipeline(const std::string& model, const std::string& t5);

// The decoding options of the flags (steps, cfg, seed; a random seed when none is given), with
// progress per stage on stderr.
magnet::GenerateOptions music_generate_options(const MusicGenerationArgs& args, int n_q);

}  // namespace eight::cli

#pragma once
// The language-model half of `eight music` (MAGNeT: T5 text encoder + masked-token transformer
// over EnCodec's codebooks), kept apart from cmd_music.cpp so it can be filled in on its own.
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "core/thread_pool.h"

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

// Generates int32 [n_q, T] codes at 50 frames/s for the prompt (progress per stage on stderr).
// Throws Error with the reason when it cannot.
Tensor run_music_generation(const MusicGenerationArgs& args, ThreadPool& pool);

}  // namespace eight::cli

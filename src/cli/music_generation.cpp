// Placeholder until MAGNeT's language model lands (issue 28): generation is refused with a
// clear error, while `eight music --codes` decodes given codes with EnCodec alone.
#include "cli/music_generation.h"

#include "core/error.h"

namespace eight::cli {

Tensor run_music_generation(const MusicGenerationArgs& args, ThreadPool&) {
  fail(
      "eight music -p needs the MAGNeT language model, which this build does not include yet "
      "(prompt '",
      args.prompt, "'); decode existing codes with --codes FILE.npy");
}

}  // namespace eight::cli

#pragma once
// `eight bench -m LLM --mmproj M --image IMG`: LLaVA's two latencies, measured as llama.cpp's
// llama-mtmd-cli reports them, so the two can be compared on the same files.
#include <string>

namespace eight::cli {

struct LlavaBenchArgs {
  std::string model, mmproj, image;
  std::string prompt = "<image>\nDescribe this image in detail.";
  int reps = 3, threads = 0;
  int64_t ctx = 0;
  bool json = false;
};

// Each repetition from an empty context: the image encode (anyres tiles through the vision
// tower, the projector, packing) and the time to first token (encode + the prompt's prefill with
// the image rows + the first token's argmax); medians printed. Returns the exit code.
int bench_llava(const LlavaBenchArgs& a);

}  // namespace eight::cli

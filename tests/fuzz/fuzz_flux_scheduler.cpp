// libFuzzer target for FLUX's scheduler/scheduler_config.json (runtime/diffusion/flow_match.h):
// every input must parse or throw eight::Error, and a config that parses must give a schedule
// (steps and image sequence length taken from the input's first bytes) of finite, non-increasing
// sigmas ending at 0, or throw eight::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "runtime/diffusion/flow_match.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int64_t steps = size > 0 ? data[0] % 64 : 4;
  const int64_t seq = size > 1 ? int64_t{data[1]} * 97 : 1024;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto c = eight::diffusion::flow_match_config_from_json(text);
    const auto s = eight::diffusion::flow_match_schedule(c, steps, seq);
    if (s.sigmas.size() != s.timesteps.size() + 1 || s.sigmas.back() != 0.0f) std::abort();
  } catch (const eight::Error&) {
  }
  return 0;
}

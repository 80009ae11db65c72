// libFuzzer target for EnCodec's configs (models/encodec): the input is read both as
// transformers' config.json and as audiocraft's exported xp.cfg YAML. Every input must parse or
// throw eight::Error; a config that parses must be within the checked limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "models/encodec/encodec.h"

namespace {

void use(const eight::encodec::Config& c) {
  // check_config bounds these; a hop beyond them would mean a limit was skipped.
  if (c.hop() < 1 || c.hop() > (1 << 16) || c.ratios.empty() || c.n_q < 1 || c.bins < 1)
    std::abort();
  (void)eight::encodec::pad_mode_name(c.pad_mode);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    use(eight::encodec::parse_audiocraft_config(text, "fuzz.yaml"));
  } catch (const eight::Error&) {
  }
  try {
    use(eight::encodec::parse_hf_config(text, "fuzz.json"));
  } catch (const eight::Error&) {
  }
  return 0;
}

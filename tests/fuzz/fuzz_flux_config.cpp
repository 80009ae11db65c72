// libFuzzer target for the FLUX transformer's config.json reader (models/flux): every input must
// parse or throw eight::Error; a config that parses is then built against an empty weight map,
// which must throw Error naming the first missing tensor (never allocate per the config's sizes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "models/flux/flux.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (text.empty()) return 0;  // empty text means "from the shapes", not a config
  try {
    (void)eight::flux::read_config({}, text);
  } catch (const eight::Error&) {
  }
  try {
    (void)eight::flux::Transformer::build({}, text);
  } catch (const eight::Error&) {
  }
  return 0;
}

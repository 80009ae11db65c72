// libFuzzer target for MAGNeT's config path: the YAML-subset reader (formats/yaml.h) on the
// `xp.cfg` text of audiocraft checkpoints, then magnet::parse_config on what it reads. Any input
// must parse or throw eight::Error: no crash, no sanitizer report, no hang, no unbounded
// allocation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "formats/yaml.h"
#include "models/magnet/magnet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  eight::yaml::Limits limits;
  limits.max_nodes = 100'000;
  try {
    const auto j = eight::yaml::parse(text, "fuzz.yaml", limits);
    volatile size_t sink = j.size();
    (void)sink;
    const auto c = eight::magnet::parse_config(j, "fuzz.yaml");
    sink = static_cast<size_t>(c.dim + c.card + c.ffn);
  } catch (const eight::Error&) {
  }
  return 0;
}

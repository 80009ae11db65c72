// libFuzzer target for the tool-call parser (text/tool_calls.h): the first byte picks the format,
// the rest is model output. Any input must parse without crashing, and the incremental contract
// must hold: the parse of every prefix is extended by the final parse (content and each call's
// arguments only grow, calls are only appended), which is what makes streamed deltas reassemble.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/tool_calls.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto format = static_cast<eight::ToolFormat>(data[0] % 4);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const eight::ParsedOutput whole = eight::parse_tool_output(format, text, true);
  // Every prefix of short inputs, a spread of them for long ones (bounded work per input).
  const size_t step = text.size() / 64 + 1;
  eight::ParsedOutput prev;
  for (size_t n = 0; n <= text.size(); n += step) {
    const eight::ParsedOutput p = eight::parse_tool_output(format, text.substr(0, n), false);
    if (!eight::extends(prev, p) || !eight::extends(p, whole)) std::abort();
    prev = p;
  }
  return 0;
}

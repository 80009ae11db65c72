// libFuzzer target for the unigram tokenizer's parsers: the first byte picks
//   0: a spiece.model (protobuf ModelProto), then tokenizes a fixed text with it
//   1: a precompiled charsmap (Darts double-array trie + replacement strings), then normalizes
//      the same bytes as text with it, longest and shortest rules
// Any input must parse or throw eight::Error; encoding and lookups must stay in bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "text/charsmap.h"
#include "text/unigram.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      const auto tok = eight::text::UnigramTokenizer::from_spiece(body, "fuzz.model");
      const auto ids =
          tok.encode("Hello  ＦＵＬＬ wörld e\xCC\x81 \xF0\x9F\x98\x80 \xFF<unk>", true);
      volatile size_t sink = tok.decode(ids).size();
      (void)sink;
    } else {
      const auto map = eight::text::Charsmap::parse(body, "fuzz charsmap");
      for (std::string_view s = body; !s.empty();) {
        size_t used = 0, shortest = 0;
        const std::string_view r = map.match(s, &used);
        map.match_shortest(s, &shortest);
        volatile size_t sink = r.size() + shortest;
        (void)sink;
        s.remove_prefix(used > 0 ? used : 1);
      }
    }
  } catch (const eight::Error&) {
  }
  return 0;
}

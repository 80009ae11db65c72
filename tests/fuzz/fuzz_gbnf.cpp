// libFuzzer target for the GBNF parser and the matcher: any text must parse or throw eight::Error;
// a grammar that parses is then run over a few strings (which must not crash or hang).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "text/grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto g = eight::text::Grammar::parse(text);
    // The grammar's own text and some JSON-ish and non-ASCII bytes as candidate sentences.
    for (const std::string& s : {text.substr(0, 64), std::string("{\"a\": [1, \"\xC3\xA9\"]}"),
                                 std::string("aaaa"), std::string("\xF0\x9F\x98\x80\xED\xA0\x80")})
      (void)g->matches(s);
  } catch (const eight::Error&) {
  }
  return 0;
}

// libFuzzer target for the JSON-schema compiler: any JSON must compile or throw eight::Error, and
// what compiles must be GBNF the grammar parser accepts (or refuses with an Error) and runs.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/grammar.h"
#include "text/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto schema = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  try {
    const std::string gbnf = eight::text::json_schema_to_gbnf(schema);
    auto g = eight::text::Grammar::parse(gbnf);
    for (const char* s : {"{}", "[]", "null", "\"2024-01-31\"", "{\"a\": 1}", "-12"})
      (void)g->matches(s);
  } catch (const eight::Error&) {
  }
  return 0;
}

#pragma once
// Pieces of the JSON-schema compiler that stand alone: GBNF for integer ranges, for the regex
// subset of `pattern`, and for string literals.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace eight::text {

// GBNF for the decimal integers in [lo, hi] (either end open), no leading zeros, "-" for
// negatives. Open ends stop at 16 digits so an unbounded integer stays bounded in length.
std::string gbnf_integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi);
// GBNF for the JSON-string contents (between the quotes) that match the regex, anchored at both
// ends. Throws Error "[json-schema] <path>: pattern ..." naming what is not supported.
std::string gbnf_from_regex(std::string_view regex, std::string_view char_rule,
                            std::string_view path);
// A GBNF literal for bytes ("..." with escapes).
std::string gbnf_literal(std::string_view bytes);

}  // namespace eight::text

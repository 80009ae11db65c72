#pragma once
// The compiled form of a grammar, shared by the GBNF parser and the matcher. A rule is a list of
// alternatives; an alternative is a run of elements in `elems` ending with an End element.
// Repetition, optional parts and groups are already expanded into helper rules.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace eight::text {

struct CharClass {
  bool negated = false;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive, sorted by start

  bool matches(uint32_t cp) const {
    bool in = false;
    for (const auto& [lo, hi] : ranges) in |= cp >= lo && cp <= hi;
    return in != negated;
  }
  // Whether some code point in [lo, hi] matches (used for a partial UTF-8 character).
  bool may_match(uint32_t lo, uint32_t hi) const;
};

struct GrammarElem {
  enum Kind : uint8_t { Chars, Ref, End };
  Kind kind = End;
  int32_t arg = 0;  // Chars: index into classes; Ref: rule index
};

struct GrammarRules {
  std::vector<GrammarElem> elems;
  std::vector<CharClass> classes;
  std::vector<std::vector<int32_t>> alts;  // per rule: the first element of each alternative
  std::vector<std::string> names;
  int32_t root = 0;
  // Per element: the fewest bytes that finish its alternative from there (End: 0).
  std::vector<int64_t> rest_min;
};

// Fills rest_min, and throws Error when a rule can never finish or the grammar is left-recursive
// in a way that grows the stack without reading input.
void grammar_finalize(GrammarRules& g);

// Bytes of a code point in UTF-8.
int utf8_length(uint32_t cp);

}  // namespace eight::text

// Precompiled charsmap lookup (see charsmap.h): the common-prefix search of a Darts-clone double
// array, whose units pack a label, a leaf flag and the offset to the children.
#include "text/charsmap.h"

#include <cstring>

#include "core/error.h"

namespace eight::text {

namespace {

bool has_leaf(uint32_t u) {
  return (u >> 8) & 1;
}
uint32_t value(uint32_t u) {
  return u & ((1u << 31) - 1);
}
uint32_t label(uint32_t u) {
  return u & ((1u << 31) | 0xFF);
}
uint32_t offset(uint32_t u) {
  return (u >> 10) << ((u & (1u << 9)) >> 6);
}

}  // namespace

Charsmap Charsmap::parse(std::string_view blob, const std::string& where) {
  Charsmap m;
  m.where_ = where;
  if (blob.empty()) return m;
  check(blob.size() >= 4, "[spiece] ", where, ": precompiled charsmap of ", blob.size(),
        " bytes is shorter than its 4-byte header");
  uint32_t trie_bytes = 0;
  for (int i = 3; i >= 0; --i) trie_bytes = trie_bytes << 8 | static_cast<uint8_t>(blob[i]);
  check(trie_bytes % 4 == 0 && trie_bytes >= 4 && trie_bytes <= blob.size() - 4, "[spiece] ", where,
        ": precompiled charsmap says its trie has ", trie_bytes, " bytes but ", blob.size() - 4,
        " follow (a positive multiple of 4 that fits is needed)");
  m.units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < m.units_.size(); ++i) {
    const auto* p = reinterpret_cast<const uint8_t*>(blob.data() + 4 + i * 4);
    m.units_[i] =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  }
  m.normalized_ = std::string(blob.substr(4 + trie_bytes));
  return m;
}

std::string_view Charsmap::match(std::string_view s, size_t* consumed) const {
  return search(s, consumed, false);
}

std::string_view Charsmap::match_shortest(std::string_view s, size_t* consumed) const {
  return search(s, consumed, true);
}

std::string_view Charsmap::search(std::string_view s, size_t* consumed, bool shortest) const {
  *consumed = 0;
  if (units_.empty()) return {};
  constexpr int kMaxResults = 32;  // SentencePiece's kMaxTrieResultsSize
  const size_t n = units_.size();
  size_t pos = offset(units_[0]);
  uint32_t best_value = 0;
  int results = 0;
  for (size_t i = 0; i < s.size() && results < (shortest ? 1 : kMaxResults); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    pos ^= c;
    if (pos >= n) break;
    const uint32_t unit = units_[pos];
    if (label(unit) != c) break;
    pos ^= offset(unit);
    if (has_leaf(unit)) {
      if (pos >= n) break;
      best_value = value(units_[pos]);
      *consumed = i + 1;
      ++results;
    }
  }
  if (*consumed == 0) return {};
  check(best_value < normalized_.size(), "[spiece] ", where_, ": charsmap rule points at byte ",
        best_value, " of ", normalized_.size(), " replacement bytes");
  const char* start = normalized_.data() + best_value;
  const void* end = std::memchr(start, 0, normalized_.size() - best_value);
  check(end != nullptr, "[spiece] ", where_, ": charsmap replacement at byte ", best_value,
        " is not NUL-terminated");
  return {start, static_cast<size_t>(static_cast<const char*>(end) - start)};
}

size_t utf8_valid_char_len(std::string_view s) {
  if (s.empty()) return 0;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t c = p[0];
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace eight::text

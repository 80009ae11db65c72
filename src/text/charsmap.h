#pragma once
// SentencePiece's precompiled normalization rules (NormalizerSpec.precompiled_charsmap, e.g.
// nmt_nfkc): a little-endian uint32 byte length of a Darts-clone double-array trie, the trie's
// uint32 units, then NUL-terminated replacement strings the trie's values point into. The same
// blob appears base64-encoded as Hugging Face's "Precompiled" normalizer.
//
// Untrusted: every unit index and value offset is bounds-checked; a bad blob is an Error.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eight::text {

class Charsmap {
 public:
  Charsmap() = default;
  // Throws Error naming `where` when the blob is malformed.
  static Charsmap parse(std::string_view blob, const std::string& where);
  bool empty() const { return units_.empty(); }
  // The rule for the longest prefix of `s` the trie holds (among its first 32 prefixes, as
  // SentencePiece's normalizer looks): its replacement, with *consumed set to the prefix length;
  // *consumed = 0 when no rule matches.
  std::string_view match(std::string_view s, size_t* consumed) const;
  // The rule for the shortest prefix instead (Hugging Face's Precompiled normalizer takes the
  // first result of the same search).
  std::string_view match_shortest(std::string_view s, size_t* consumed) const;

 private:
  std::string_view search(std::string_view s, size_t* consumed, bool shortest) const;
  std::vector<uint32_t> units_;
  std::string normalized_;
  std::string where_;
};

// Length of the valid UTF-8 character at the start of `s` (1..4), or 0 when it is malformed
// (overlong, surrogate, past U+10FFFF, truncated), as SentencePiece's IsValidDecodeUTF8.
size_t utf8_valid_char_len(std::string_view s);

}  // namespace eight::text

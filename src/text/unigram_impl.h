#pragma once
// Internals of the unigram tokenizer (unigram.h) shared by its loaders.
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "text/charsmap.h"
#include "text/tokenizer_impl.h"
#include "text/unigram.h"

namespace eight::text {

struct UnigramPiece {
  std::string text;
  float score = 0;
  TokenType type = TokenType::Normal;
};

struct UnigramTokenizer::Impl {
  std::string name, source;
  std::vector<UnigramPiece> pieces;
  // The pieces the Viterbi lattice may use -> id. SentencePiece: normal, user-defined and unused
  // pieces (unused ones are skipped); tokenizer.json: the whole vocabulary, as tokenizers' trie.
  TokenMap lattice;
  size_t max_piece_bytes = 0;
  int32_t unk = -1, eos = -1, pad = -1;
  bool byte_fallback = false;
  std::array<int32_t, 256> byte_ids{};  // <0xNN> -> id, -1 when absent
  float min_score = 0, max_score = 0;
  // tokenizers adds scores in double precision; SentencePiece keeps path scores as floats.
  bool double_scores = false;

  // SentencePiece normalizer spec.
  Charsmap charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  bool whitespace_suffix = false;
  std::vector<std::string> user_defined;  // matched whole, never normalized

  // tokenizer.json pipeline: normalizers in order, Metaspace, added tokens, post-processor.
  std::vector<std::function<std::string(std::string_view)>> hf_normalizers;
  bool hf_prepend_first_only = false, hf_prepend = true, hf_split = true,
       hf_whitespace_split = false;
  std::string hf_replacement = "\xE2\x96\x81";
  std::vector<std::pair<std::string, int32_t>> added;  // text -> id, longest first
  std::vector<int32_t> post_prefix, post_suffix;

  // Shared finishing step of both loaders: lattice, byte ids, score range; checks ids.
  void finish();
  // Viterbi segmentation of normalized text into ids (byte fallback applied).
  void segment(std::string_view normalized, std::vector<int32_t>& out) const;
  std::string spm_normalize(std::string_view text) const;
  void encode_hf(std::string_view text, std::vector<int32_t>& out) const;
};

// Valid UTF-8 with each malformed byte as U+FFFD (tokenizers only ever sees valid strings).
std::string valid_utf8(std::string_view s);

}  // namespace eight::text

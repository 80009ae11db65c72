#pragma once
// Unigram SentencePiece tokenization (T5, T5 v1.1, umT5, mT5, ...), exact to SentencePiece and
// Hugging Face tokenizers, from either file people have:
//   spiece.model    SentencePiece's ModelProto (protobuf): pieces with scores and types, the
//                   normalizer spec (precompiled charsmap, add_dummy_prefix,
//                   remove_extra_whitespaces), unk/bos/eos/pad ids, byte_fallback
//   tokenizer.json  {"model": {"type": "Unigram", "vocab": [[piece, score], ...], "unk_id",
//                   "byte_fallback"}}, normalizers Precompiled/Strip/Replace, the Metaspace
//                   pre-tokenizer, added (special) tokens and a TemplateProcessing post-processor
// Segmentation is SentencePiece's Viterbi over the pieces' log probabilities (unknown characters
// cost min score - 10, consecutive unknowns fuse into one <unk>, or into <0xNN> byte pieces with
// byte_fallback).
//
//   auto tok = text::UnigramTokenizer::open("t5-base/");   // or spiece.model / tokenizer.json
//   std::vector<int32_t> ids = tok.encode("A cat", /*add_eos=*/true);  // ... </s>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace eight::text {

class UnigramTokenizer {
 public:
  // A spiece.model, a tokenizer.json, or a directory holding either (tokenizer.json first, as
  // transformers' fast tokenizers prefer it). Throws Error naming the file and the problem.
  static UnigramTokenizer open(const std::string& path);
  static UnigramTokenizer from_spiece(std::string_view bytes, const std::string& name);
  static UnigramTokenizer from_tokenizer_json(std::string_view json, const std::string& name);
  // True when `path` (file or directory) holds something open() takes.
  static bool handles(const std::string& path);

  // add_eos: append </s> (spiece.model, as transformers' T5Tokenizer) or what the
  // tokenizer.json's post-processor adds.
  std::vector<int32_t> encode(std::string_view text, bool add_eos = true) const;
  // Pieces joined, "▁" as spaces, byte pieces as bytes; control pieces skipped.
  std::string decode(const std::vector<int32_t>& ids) const;
  // SentencePiece normalization alone (spiece.model only; tokenizer.json: its normalizers).
  std::string normalize(std::string_view text) const;

  int32_t size() const;
  const std::string& piece(int32_t id) const;
  TokenType type(int32_t id) const;
  int32_t unk() const;
  int32_t eos() const;  // -1 when none
  int32_t pad() const;  // -1 when none
  bool byte_fallback() const;
  const std::string& source() const;  // "spiece.model" or "tokenizer.json"

  struct Impl;
  explicit UnigramTokenizer(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace eight::text

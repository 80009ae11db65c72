#pragma once
// BERT's WordPiece encoding (BertNormalizer with lower-casing and accent stripping,
// BertPreTokenizer, greedy longest-match pieces), independent of where the vocabulary lives: the
// GGUF tokenizer and BLIP's vocab.txt / tokenizer.json reader share it.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace eight::text {

// Appends the ids of `text` to `out` (no [CLS]/[SEP]). `find(piece)` returns a piece's id or -1;
// word-initial pieces are asked for as "\xe2\x96\x81" + piece (llama.cpp's "▁piece"),
// continuations bare (vocab.txt's "##piece"). Words with no segmentation become `unk` (skipped
// when unk < 0).
void wordpiece_encode(std::string_view text, const std::function<int32_t(const std::string&)>& find,
                      int32_t unk, std::vector<int32_t>& out);

}  // namespace eight::text

// The vocabulary's byte trie, built once per model and shared by every matcher.
#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "text/grammar.h"
#include "text/tokenizer.h"

namespace eight::text {

GrammarVocab::GrammarVocab(const std::vector<std::string>& pieces,
                           const std::vector<bool>& text_token, std::vector<int32_t> eog)
    : n_vocab_(static_cast<int32_t>(pieces.size())), pieces_(pieces), eog_(std::move(eog)) {
  check(pieces.size() == text_token.size(), "[grammar] ", pieces.size(), " token pieces but ",
        text_token.size(), " token kinds");
  text_.resize(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) text_[i] = text_token[i] && !is_eog(int32_t(i));
  for (int32_t e : eog_)
    check(e >= 0 && e < n_vocab_, "[grammar] end-of-generation token ", e,
          " is outside the vocabulary of ", n_vocab_);

  // Token ids in byte order of their pieces; a token with no bytes (or absurdly long) never
  // matches, so it stays out of the trie.
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n_vocab_; ++i)
    if (text_[static_cast<size_t>(i)] && !pieces_[static_cast<size_t>(i)].empty() &&
        pieces_[static_cast<size_t>(i)].size() < 65535)
      ids.push_back(i);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return pieces_[static_cast<size_t>(a)] < pieces_[static_cast<size_t>(b)];
  });
  // Preorder construction: sorted pieces share their common prefix with the previous one's path,
  // and a piece's tokens attach to the node created last (its deepest node).
  Trie& t = trie_;
  t.byte.push_back(0);
  t.depth.push_back(0);
  t.end.push_back(0);
  t.token_first.push_back(0);
  std::vector<int32_t> path{0};
  const std::string* prev = nullptr;
  for (int32_t id : ids) {
    const std::string& p = pieces_[static_cast<size_t>(id)];
    size_t common = 0;
    if (prev)
      while (common < p.size() && common < prev->size() && p[common] == (*prev)[common]) ++common;
    while (path.size() > common + 1) {
      t.end[static_cast<size_t>(path.back())] = static_cast<int32_t>(t.byte.size());
      path.pop_back();
    }
    for (size_t k = common; k < p.size(); ++k) {
      path.push_back(static_cast<int32_t>(t.byte.size()));
      t.byte.push_back(static_cast<uint8_t>(p[k]));
      t.depth.push_back(static_cast<uint16_t>(k + 1));
      t.end.push_back(0);
      t.token_first.push_back(static_cast<int32_t>(t.token_ids.size()));
    }
    t.token_ids.push_back(id);
    prev = &p;
  }
  while (!path.empty()) {
    t.end[static_cast<size_t>(path.back())] = static_cast<int32_t>(t.byte.size());
    path.pop_back();
  }
  t.token_first.push_back(static_cast<int32_t>(t.token_ids.size()));
}

bool GrammarVocab::is_eog(int32_t id) const {
  return std::find(eog_.begin(), eog_.end(), id) != eog_.end();
}

std::shared_ptr<const GrammarVocab> GrammarVocab::from_tokenizer(const Tokenizer& tok) {
  return from_tokenizer(tok, tok.eog_ids());
}

std::shared_ptr<const GrammarVocab> GrammarVocab::from_tokenizer(const Tokenizer& tok,
                                                                 std::vector<int32_t> eog) {
  const int32_t n = tok.size();
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<bool> text(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    const TokenType type = tok.token_type(i);
    const bool is_text =
        type != TokenType::Control && type != TokenType::Unknown && type != TokenType::Unused;
    text[static_cast<size_t>(i)] = is_text;
    if (is_text) pieces[static_cast<size_t>(i)] = tok.token_to_piece(i);
  }
  return std::make_shared<const GrammarVocab>(pieces, text, std::move(eog));
}

}  // namespace eight::text

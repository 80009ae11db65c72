#pragma once
// Constrained decoding: a grammar (GBNF, llama.cpp's grammar format, or a JSON schema compiled to
// it), a token trie over a vocabulary (built once per model, shared), and a per-sequence matcher
// that says which tokens may come next.
//
//   auto g = text::Grammar::parse(gbnf_text);                     // or Grammar::from_json_schema
//   auto v = text::GrammarVocab::from_tokenizer(tokenizer);       // once per model
//   text::GrammarMatcher m(g, v);                                 // one per sequence
//   std::vector<uint32_t> mask(text::GrammarMatcher::mask_words(v->size()));
//   m.fill_mask(mask, remaining_tokens);   // bit i of mask[i / 32]: token i may come next
//   ...sample among the allowed tokens...
//   m.accept(token);                        // false (and no change) when the token is not allowed
//   if (m.is_complete()) ...                // the text so far is a whole sentence
//
// The matcher is a pushdown automaton over code points (UTF-8 bytes, partial characters carried
// across tokens): its state is the set of possible rule stacks. Stacks and stack sets are
// hash-consed, transitions and whole masks are memoized per state, and a mask is computed by one
// walk of the vocabulary's byte trie that skips every subtree the state rejects.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace eight::text {

class Tokenizer;
struct GrammarRules;  // the compiled form (grammar_impl.h)

class Grammar {
 public:
  // Parses GBNF text (rules `name ::= ...`, alternation, groups, `* + ? {m,n}`, literals with
  // escapes, character classes with ranges and negation, `.`, comments). Throws Error
  // "[gbnf] line L, column C: ..." for malformed text, undefined rules, a missing root rule or
  // left recursion.
  static std::shared_ptr<const Grammar> parse(std::string_view gbnf,
                                              std::string_view root = "root");
  // Compiles a JSON schema (see json_schema.h) and parses the result. Throws Error naming the
  // schema path and keyword for anything unsupported or malformed.
  static std::shared_ptr<const Grammar> from_json_schema(const nlohmann::json& schema);
  // Any JSON object (OpenAI's response_format {"type": "json_object"}).
  static std::shared_ptr<const Grammar> json_object();

  const std::string& source() const { return source_; }  // the GBNF text
  const GrammarRules& rules() const { return *rules_; }
  // Whether the whole of `text` is a sentence of the grammar (a test and validation helper).
  bool matches(std::string_view text) const;

  Grammar(std::string source, std::shared_ptr<const GrammarRules> rules);

 private:
  std::string source_;
  std::shared_ptr<const GrammarRules> rules_;
};

// The vocabulary as the matcher sees it: each token's bytes in a trie. Control, unknown and unused
// tokens (and tokens with no bytes) are never allowed; end-of-generation tokens are allowed only
// once the grammar is complete.
class GrammarVocab {
 public:
  // pieces[i]: the bytes token i adds to the text; text_token[i] false for special tokens.
  GrammarVocab(const std::vector<std::string>& pieces, const std::vector<bool>& text_token,
               std::vector<int32_t> eog);
  // End-of-generation tokens: the tokenizer's (eog_ids), or the list the caller stops on.
  static std::shared_ptr<const GrammarVocab> from_tokenizer(const Tokenizer& tok);
  static std::shared_ptr<const GrammarVocab> from_tokenizer(const Tokenizer& tok,
                                                            std::vector<int32_t> eog);

  int32_t size() const { return n_vocab_; }
  const std::string& piece(int32_t id) const { return pieces_[static_cast<size_t>(id)]; }
  bool is_text(int32_t id) const { return text_[static_cast<size_t>(id)] != 0; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog() const { return eog_; }

  // The trie in preorder: node k has byte[k] at depth[k] (the root, k = 0, has depth 0), its
  // subtree ends before node end[k], and tokens token_ids[token_first[k] .. token_first[k+1]).
  struct Trie {
    std::vector<uint8_t> byte;
    std::vector<uint16_t> depth;
    std::vector<int32_t> end;
    std::vector<int32_t> token_first;  // size nodes + 1
    std::vector<int32_t> token_ids;
  };
  const Trie& trie() const { return trie_; }

 private:
  int32_t n_vocab_ = 0;
  std::vector<std::string> pieces_;
  std::vector<uint8_t> text_;
  std::vector<int32_t> eog_;
  Trie trie_;
};

class GrammarMatcher {
 public:
  // `vocab` may be null for a matcher fed only with text (accept_text).
  GrammarMatcher(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const GrammarVocab> vocab);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;
  GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

  // Advances by one token. An end-of-generation token is accepted only when complete. Returns
  // false and leaves the state unchanged when the token is not allowed.
  bool accept(int32_t token);
  // Advances by raw bytes (may end inside a UTF-8 character). Same contract as accept.
  bool accept_text(std::string_view bytes);

  static size_t mask_words(int32_t n_vocab) { return (static_cast<size_t>(n_vocab) + 31) / 32; }
  // Sets bit i of mask[i / 32] when token i may come next (mask has mask_words(n_vocab) words).
  // remaining_tokens (< 0: unbounded) is how many tokens the sequence may still generate,
  // this one included: when it gets tight, only tokens after which the grammar can still be
  // completed in the tokens left (one byte per token at worst) are allowed, so a bounded output
  // always ends as a whole sentence.
  void fill_mask(std::span<uint32_t> mask, int64_t remaining_tokens = -1);

  bool is_complete() const;   // the text so far is a whole sentence of the grammar
  bool can_continue() const;  // some longer text is still possible
  // Fewest bytes that would complete the text so far (0 when complete).
  int64_t min_bytes_to_complete() const;
  void reset();  // back to the start (caches are kept)

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace eight::text

// Tokenizer: loading from GGUF metadata, special-token splitting, BOS/EOS, decoding, streaming.
#include "text/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "formats/gguf.h"
#include "text/tokenizer_impl.h"

namespace eight::text {
namespace {

const char* const kEndOfTurnTexts[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>",      "<|EOT|>",
                                       "<end_of_turn>", "<|eom_id|>", "<|endoftext|>"};

int32_t read_id(const gguf::File& f, const char* key, int32_t fallback, size_t n_vocab) {
  const auto* v = f.find(key);
  if (!v) return fallback;
  int64_t id = v->as_i64();
  // llama.cpp writes -1 (as u32 0xFFFFFFFF in some converters) for "none".
  if (id < 0 || id == 0xFFFFFFFFll) return -1;
  check(static_cast<uint64_t>(id) < n_vocab, "[tokenizer] ", key, " = ", id,
        " but the vocabulary has ", n_vocab, " tokens");
  return static_cast<int32_t>(id);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const gguf::File& f) {
  auto im = std::make_unique<Impl>();
  im->model = f.get_string("tokenizer.ggml.model", "");
  im->pre = f.get_string("tokenizer.ggml.pre", "default");
  check(!im->model.empty(), "[tokenizer] ", f.path(), " has no tokenizer.ggml.model");
  if (im->model == "llama")
    im->kind = TokenizerKind::SPM;
  else if (im->model == "gpt2")
    im->kind = TokenizerKind::BPE;
  else if (im->model == "bert")
    im->kind = TokenizerKind::WPM;
  else
    fail("[tokenizer] ", f.path(), ": tokenizer.ggml.model '", im->model,
         "' is not supported (llama, gpt2, bert are)");

  im->tokens = f.get("tokenizer.ggml.tokens").as_strings();
  const size_t n = im->tokens.size();
  check(n > 0 && n < (1u << 30), "[tokenizer] ", f.path(), ": vocabulary of ", n, " tokens");
  if (const auto* s = f.find("tokenizer.ggml.scores")) {
    im->scores = s->as_f32s();
    check(im->scores.size() == n, "[tokenizer] tokenizer.ggml.scores has ", im->scores.size(),
          " entries but there are ", n, " tokens");
  } else {
    im->scores.assign(n, 0.f);
  }
  im->types.assign(n, TokenType::Normal);
  if (const auto* t = f.find("tokenizer.ggml.token_type")) {
    std::vector<int64_t> types = t->as_i64s();
    check(types.size() == n, "[tokenizer] tokenizer.ggml.token_type has ", types.size(),
          " entries but there are ", n, " tokens");
    for (size_t i = 0; i < n; ++i) {
      check(types[i] >= 0 && types[i] <= 6, "[tokenizer] token ", i, " has type ", types[i],
            " (0..6 expected)");
      im->types[i] = static_cast<TokenType>(types[i]);
    }
  }
  im->token_to_id.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) im->token_to_id.emplace(im->tokens[i], static_cast<int32_t>(i));

  const bool spm = im->kind == TokenizerKind::SPM;
  const bool wpm = im->kind == TokenizerKind::WPM;
  im->bos = read_id(f, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
  im->eos = read_id(f, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
  im->unk = read_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
  im->sep = read_id(f, "tokenizer.ggml.seperator_token_id", -1, n);
  im->cls = read_id(f, "tokenizer.ggml.cls_token_id", -1, n);
  im->pad = read_id(f, "tokenizer.ggml.padding_token_id", -1, n);
  im->eot = read_id(f, "tokenizer.ggml.eot_token_id", -1, n);
  im->eom = read_id(f, "tokenizer.ggml.eom_token_id", -1, n);
  if (wpm) {
    // BERT: [CLS] text [SEP]
    if (im->cls >= 0) im->bos = im->cls;
    if (im->sep >= 0) im->eos = im->sep;
  }
  im->add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm || wpm);
  im->add_eos = f.get_bool("tokenizer.ggml.add_eos_token", wpm);
  im->add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", spm);
  if (im->eot < 0)
    for (const char* t : kEndOfTurnTexts) {
      int32_t id = im->find(t);
      if (id >= 0 && std::string(t) != "<|endoftext|>" && std::string(t) != "<|eom_id|>") {
        im->eot = id;
        break;
      }
    }
  for (int32_t id : {im->eos, im->eot, im->eom})
    if (id >= 0) im->eog.push_back(id);
  for (const char* t : kEndOfTurnTexts) {
    int32_t id = im->find(t);
    if (id >= 0 && im->types[id] == TokenType::Control &&
        std::find(im->eog.begin(), im->eog.end(), id) == im->eog.end())
      im->eog.push_back(id);
  }

  im->init_special(f.get_string("general.name", ""));

  if (im->kind == TokenizerKind::BPE) {
    const auto* m = f.find("tokenizer.ggml.merges");
    check(m != nullptr, "[tokenizer] ", f.path(), ": gpt2 tokenizer without tokenizer.ggml.merges");
    std::vector<std::string> merges = m->as_strings();
    im->merges.reserve(merges.size() * 2);
    for (size_t r = 0; r < merges.size(); ++r) {
      const std::string& mg = merges[r];
      // "a b": the split is at the first space after the first character (a token may itself
      // be a lone space in non-byte-level vocabularies, never in GPT-2's).
      size_t sp = mg.find(' ', 1);
      check(sp != std::string::npos, "[tokenizer] merge ", r, " '", mg, "' has no space");
      int32_t a = im->find(std::string_view(mg).substr(0, sp));
      int32_t b = im->find(std::string_view(mg).substr(sp + 1));
      std::string joined = mg.substr(0, sp) + mg.substr(sp + 1);
      int32_t c = im->find(joined);
      if (a < 0 || b < 0 || c < 0) continue;  // merges of tokens the vocabulary lacks never apply
      im->merges.emplace((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b),
                         std::make_pair(static_cast<int32_t>(r), c));
    }
    im->init_bpe();
  } else if (im->kind == TokenizerKind::SPM) {
    im->init_spm();
  }
  return Tokenizer(std::move(im));
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Impl& im = *impl_;
  check(id >= 0 && id < size(), "[tokenizer] token id ", id, " is outside the vocabulary of ",
        size());
  const std::string& t = im.tokens[id];
  TokenType type = im.types[id];
  if (type == TokenType::Control || type == TokenType::Unused)
    return render_special ? t : std::string();
  if (type == TokenType::Unknown)
    return render_special || im.kind != TokenizerKind::SPM ? t : "\xe2\x96\x85";
  if (type == TokenType::UserDefined) return t;
  switch (im.kind) {
    case TokenizerKind::SPM: {
      if (type == TokenType::Byte && t.size() == 6 && t.rfind("<0x", 0) == 0)
        return std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
      std::string out;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, 3, "\xe2\x96\x81") == 0) {
          out += ' ';
          i += 3;
        } else {
          out += t[i++];
        }
      }
      return out;
    }
    case TokenizerKind::BPE: {
      std::string out;
      for (size_t i = 0; i < t.size();) {
        unsigned char c = t[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
        for (size_t k = 1; k < len && i + k < t.size(); ++k) cp = (cp << 6) | (t[i + k] & 0x3f);
        auto it = im.unicode_to_byte.find(cp);
        if (it != im.unicode_to_byte.end())
          out += static_cast<char>(it->second);
        else
          out.append(t, i, len);
        i += len;
      }
      return out;
    }
    case TokenizerKind::WPM: {
      if (t.rfind("\xe2\x96\x81", 0) != 0) return t;
      std::string out(1, ' ');
      out.append(t, 3, std::string::npos);
      return out;
    }
  }
  return t;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) out += token_to_piece(id, render_special);
  // SentencePiece and WordPiece drop the space their first word carries.
  if ((impl_->kind == TokenizerKind::SPM && impl_->add_space_prefix) ||
      impl_->kind == TokenizerKind::WPM)
    if (!out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

TokenizerKind Tokenizer::kind() const {
  return impl_->kind;
}
const std::string& Tokenizer::model_name() const {
  return impl_->model;
}
const std::string& Tokenizer::pre_name() const {
  return impl_->pre;
}
int32_t Tokenizer::size() const {
  return static_cast<int32_t>(impl_->tokens.size());
}
const std::string& Tokenizer::token_text(int32_t id) const {
  check(id >= 0 && id < size(), "[tokenizer] token id ", id, " is outside the vocabulary of ",
        size());
  return impl_->tokens[id];
}
TokenType Tokenizer::token_type(int32_t id) const {
  check(id >= 0 && id < size(), "[tokenizer] token id ", id, " is outside the vocabulary of ",
        size());
  return impl_->types[id];
}
int32_t Tokenizer::find(std::string_view t) const {
  return impl_->find(t);
}
int32_t Tokenizer::bos() const {
  return impl_->bos;
}
int32_t Tokenizer::eos() const {
  return impl_->eos;
}
int32_t Tokenizer::eot() const {
  return impl_->eot;
}
int32_t Tokenizer::unk() const {
  return impl_->unk;
}
bool Tokenizer::add_bos() const {
  return impl_->add_bos;
}
bool Tokenizer::add_eos() const {
  return impl_->add_eos;
}
const std::vector<int32_t>& Tokenizer::eog_ids() const {
  return impl_->eog;
}
bool Tokenizer::is_eog(int32_t id) const {
  return std::find(impl_->eog.begin(), impl_->eog.end(), id) != impl_->eog.end();
}

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of a character that is not finished yet.
  size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    unsigned char c = s[n - back];
    if ((c & 0xc0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_->token_to_piece(id, render_special_);
  if (first_ && !piece.empty()) {
    first_ = false;
    if (piece[0] == ' ' &&
        (tok_->kind() == TokenizerKind::WPM ||
         (tok_->kind() == TokenizerKind::SPM && tok_->decode({id}).size() < piece.size())))
      piece.erase(0, 1);
  }
  pending_ += piece;
  size_t n = utf8_complete_prefix(pending_);
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace eight::text

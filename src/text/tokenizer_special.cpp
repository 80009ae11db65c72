// Special tokens in text: splitting them out (llama.cpp's tokenizer_st_partition, with its
// LSTRIP/RSTRIP whitespace rules), and keeping chat message content from ever producing them.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "text/tokenizer_impl.h"

namespace eight::text {
namespace {

// The mark protect_special() puts inside special-token text: U+10FFFE, a noncharacter (Unicode
// reserves it for internal use; it never means anything in interchanged text). A literal one in
// content is doubled, so every mark can be undone exactly.
constexpr std::string_view kMark = "\xf4\x8f\xbf\xbe";

bool space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;  // llama.cpp: isspace, C locale
}

size_t utf8_len(unsigned char c) {
  return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

std::string unmark(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, kMark.size(), kMark) == 0) {
      i += kMark.size();
      if (s.compare(i, kMark.size(), kMark) == 0) {  // a doubled mark: one literal U+10FFFE
        out += kMark;
        i += kMark.size();
      }
      continue;
    }
    out += s[i++];
  }
  return out;
}

}  // namespace

std::vector<Tokenizer::Impl::Fragment> Tokenizer::Impl::partition(std::string_view text,
                                                                  bool parse_special) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({-1, text});
  std::vector<Fragment> next;
  for (int32_t id : special_tokens) {
    if (!parse_special && gated[id]) continue;
    const std::string& st = tokens[id];
    next.clear();
    next.reserve(frags.size());
    for (const auto& fr : frags) {
      if (fr.token >= 0 || fr.text.size() < st.size()) {
        next.push_back(fr);
        continue;
      }
      std::string_view rest = fr.text;
      for (;;) {
        size_t at = rest.find(st);
        if (at == std::string_view::npos) break;
        std::string_view left = rest.substr(0, at);
        if (lstrip[id])
          while (!left.empty() && space(left.back())) left.remove_suffix(1);
        if (!left.empty()) next.push_back({-1, left});
        next.push_back({id, {}});
        rest = rest.substr(at + st.size());
        if (rstrip[id])
          while (!rest.empty() && space(rest.front())) rest.remove_prefix(1);
      }
      if (!rest.empty()) next.push_back({-1, rest});
    }
    frags.swap(next);
  }
  return frags;
}

void Tokenizer::Impl::encode_fragments(const std::vector<Fragment>& frags, bool add_special,
                                       bool unmark_text, std::vector<int32_t>& out) const {
  if (add_special && add_bos && bos >= 0) out.push_back(bos);
  bool prev_special = true;
  std::string owned;
  for (const auto& fr : frags) {
    if (fr.token >= 0) {
      out.push_back(fr.token);
      prev_special = true;
      continue;
    }
    std::string_view text = fr.text;
    if (unmark_text && text.find(kMark) != std::string_view::npos) {
      owned = unmark(text);
      text = owned;
    }
    switch (kind) {
      case TokenizerKind::SPM:
        // SentencePiece's space prefix goes before the text and after every special token.
        if (add_space_prefix && prev_special) {
          std::string t = " ";
          t += text;
          encode_spm(t, out);
        } else {
          encode_spm(text, out);
        }
        break;
      case TokenizerKind::BPE:
        encode_bpe(text, out);
        break;
      case TokenizerKind::WPM:
        encode_wpm(text, out);
        break;
    }
    prev_special = false;
  }
  if (add_special && add_eos && eos >= 0) out.push_back(eos);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  impl_->encode_fragments(impl_->partition(text, parse_special), add_special, false, out);
  return out;
}

std::vector<int32_t> Tokenizer::encode_chat(std::string_view rendered, bool add_special) const {
  std::vector<int32_t> out;
  impl_->encode_fragments(impl_->partition(rendered, true), add_special, true, out);
  return out;
}

std::string Tokenizer::protect_special(std::string_view content) const {
  const Impl& im = *impl_;
  bool first_byte[256] = {};
  for (int32_t id : im.special_tokens)
    if (im.gated[id]) first_byte[static_cast<unsigned char>(im.tokens[id][0])] = true;
  std::string out;
  out.reserve(content.size() + 16);
  for (size_t i = 0; i < content.size();) {
    if (content.compare(i, kMark.size(), kMark) == 0) {
      out += kMark;
      out += kMark;
      i += kMark.size();
      continue;
    }
    size_t matched = 0;
    if (first_byte[static_cast<unsigned char>(content[i])])
      for (int32_t id : im.special_tokens) {  // longest first
        const std::string& st = im.tokens[id];
        if (im.gated[id] && content.compare(i, st.size(), st) == 0) {
          matched = st.size();
          break;
        }
      }
    if (matched == 0) {
      out += content[i++];
      continue;
    }
    // The mark goes after the token's first character: inside the token text, never at an edge
    // of the content, so template filters that trim or split content keep it intact.
    const size_t head = std::min(utf8_len(static_cast<unsigned char>(content[i])), matched);
    out.append(content.substr(i, head));
    out += kMark;
    out.append(content.substr(i + head, matched - head));
    i += matched;
  }
  return out;
}

void Tokenizer::Impl::init_special(const std::string& model_name) {
  const size_t n = tokens.size();
  for (size_t i = 0; i < n; ++i)
    if ((types[i] == TokenType::Control || types[i] == TokenType::UserDefined ||
         types[i] == TokenType::Unknown) &&
        !tokens[i].empty())
      special_tokens.push_back(static_cast<int32_t>(i));
  std::stable_sort(special_tokens.begin(), special_tokens.end(),
                   [&](int32_t a, int32_t b) { return tokens[a].size() > tokens[b].size(); });
  gated.assign(n, false);
  for (size_t i = 0; i < n; ++i)
    gated[i] = types[i] == TokenType::Control || types[i] == TokenType::Unknown;
  for (int32_t id : {bos, eos, eot, eom})
    if (id >= 0) gated[id] = true;
  for (int32_t id : eog) gated[id] = true;
  // Sequence and turn boundaries by their text too, whatever their type: Phi-3 stores "</s>" as
  // user-defined (and not as its EOS), which would otherwise make "</s>" a token where "<s>" is
  // text.
  for (const char* t : {"<s>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>",
                        "<|eom_id|>", "<end_of_turn>", "<|EOT|>"})
    if (int32_t id = find(t); id >= 0) gated[id] = true;

  // llama.cpp sets these attributes from general.name / tokenizer.ggml.pre, not from anything
  // in the vocabulary, so do we.
  lstrip.assign(n, false);
  rstrip.assign(n, false);
  std::string name = model_name;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto set = [&](std::vector<bool>& attr, const char* text, bool v) {
    if (int32_t id = find(text); id >= 0) attr[id] = v;
  };
  if (pre.find("jina-v2-") != std::string::npos) {
    set(lstrip, "<mask>", true);
  } else if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_tokens) rstrip[id] = true;
    set(rstrip, "</s>", true);
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) set(rstrip, t, false);
  } else if (name.find("modern-bert") != std::string::npos) {
    set(lstrip, "[MASK]", true);
  }
}

}  // namespace eight::text

// WordPiece (BERT): Hugging Face's BertNormalizer (clean text, space around CJK characters,
// NFD + strip accents + lowercase) and BertPreTokenizer (split on whitespace, punctuation
// isolated), then greedy longest-match-first pieces. llama.cpp's GGUF layout stores word-initial
// pieces as "▁piece" and continuations ("##piece" in BERT's vocab.txt) as "piece".
#include <algorithm>

#include "core/error.h"
#include "text/jinja_value.h"
#include "text/tokenizer_impl.h"
#include "text/unicode_data.h"
#include "text/wordpiece.h"

namespace eight::text {
namespace unicode {
namespace {
bool in_ranges(const Range* r, size_t n, uint32_t cp) {
  const Range* end = r + n;
  const Range* it =
      std::upper_bound(r, end, cp, [](uint32_t c, const Range& x) { return c < x.first; });
  return it != r && cp <= (it - 1)->last;
}
}  // namespace

bool is_punct(uint32_t cp) {
  return in_ranges(kPunct, kPunctCount, cp);
}
bool is_space(uint32_t cp) {
  return in_ranges(kSpace, kSpaceCount, cp);
}
bool is_control(uint32_t cp) {
  return in_ranges(kControl, kControlCount, cp);
}

int fold(uint32_t cp, uint32_t out[3]) {
  if (cp >= 0xac00 && cp <= 0xd7a3) {  // Hangul syllable: canonical decomposition by formula
    uint32_t s = cp - 0xac00;
    out[0] = 0x1100 + s / 588;
    out[1] = 0x1161 + (s % 588) / 28;
    if (s % 28 == 0) return 2;
    out[2] = 0x11a7 + s % 28;
    return 3;
  }
  const Fold* end = kFold + kFoldCount;
  const Fold* it =
      std::lower_bound(kFold, end, cp, [](const Fold& f, uint32_t c) { return f.cp < c; });
  if (it == end || it->cp != cp) {
    out[0] = cp;
    return 1;
  }
  int n = 0;
  for (uint32_t c : it->out)
    if (c) out[n++] = c;
  return n;
}
}  // namespace unicode

namespace {
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
         (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
         (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
         (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}
}  // namespace

void Tokenizer::Impl::encode_wpm(std::string_view text, std::vector<int32_t>& out) const {
  wordpiece_encode(
      text, [this](const std::string& piece) { return find(piece); }, unk, out);
}

void wordpiece_encode(std::string_view text, const std::function<int32_t(const std::string&)>& find,
                      int32_t unk, std::vector<int32_t>& out) {
  // Normalize and split into words (each a vector of code points).
  std::vector<std::vector<uint32_t>> words(1);
  auto end_word = [&] {
    if (!words.back().empty()) words.emplace_back();
  };
  for (uint32_t cp : jinja::utf8_decode(std::string(text))) {
    if (cp == 0 || cp == 0xfffd || unicode::is_control(cp)) continue;
    if (unicode::is_space(cp)) {
      end_word();
      continue;
    }
    uint32_t f[3];
    int nf = unicode::fold(cp, f);
    for (int k = 0; k < nf; ++k) {
      uint32_t c = f[k];
      if (unicode::is_punct(c) || is_cjk(c)) {
        end_word();
        words.back().push_back(c);
        end_word();
      } else if (unicode::is_space(c)) {
        end_word();
      } else {
        words.back().push_back(c);
      }
    }
  }
  for (const auto& w : words) {
    if (w.empty()) continue;
    if (w.size() > 100) {  // HF's max_input_chars_per_word
      if (unk >= 0) out.push_back(unk);
      continue;
    }
    std::vector<std::string> chars;
    for (uint32_t c : w) {
      std::string s;
      jinja::utf8_append(s, c);
      chars.push_back(s);
    }
    std::vector<int32_t> pieces;
    size_t start = 0;
    bool bad = false;
    while (start < chars.size()) {
      int32_t best = -1;
      size_t best_end = start;
      std::string cand = start == 0 ? "\xe2\x96\x81" : "";
      size_t base = cand.size();
      for (size_t e = start; e < chars.size(); ++e) cand += chars[e];
      // longest first: shrink from the end
      for (size_t e = chars.size(); e > start; --e) {
        int32_t id = find(cand);
        if (id >= 0) {
          best = id;
          best_end = e;
          break;
        }
        cand.resize(cand.size() - chars[e - 1].size());
        if (cand.size() <= base) break;
      }
      if (best < 0) {
        bad = true;
        break;
      }
      pieces.push_back(best);
      start = best_end;
    }
    if (bad) {
      if (unk >= 0) out.push_back(unk);
    } else {
      out.insert(out.end(), pieces.begin(), pieces.end());
    }
  }
}

}  // namespace eight::text

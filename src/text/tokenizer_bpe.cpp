// Byte-level BPE (GPT-2 family): regex pre-tokenization, GPT-2's byte-to-unicode alphabet, and
// merges applied lowest rank first (ties: leftmost first), as Hugging Face's BPE model does.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <queue>

#include "core/error.h"
#include "core/log.h"
#include "text/tokenizer_impl.h"

namespace eight::text {

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* re =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("[tokenizer] bad pre-tokenizer regex at offset ", off, ": ",
         reinterpret_cast<const char*>(msg), " in ", pattern);
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is absent
  code_ = re;
}

Regex::Regex(Regex&& o) noexcept : code_(o.code_), pattern_(std::move(o.pattern_)) {
  o.code_ = nullptr;
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::split(std::string_view text, std::vector<std::string_view>& out) const {
  auto* re = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  check(md != nullptr, "[tokenizer] out of memory for regex match data");
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, gap = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(re, subject, text.size(), pos, 0, md, nullptr);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      pcre2_match_data_free(md);
      fail("[tokenizer] regex match failed with PCRE2 error ", rc);
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e == b) {  // empty match: step over one character
      pos = b + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xc0) == 0x80) ++pos;
      continue;
    }
    if (b > gap) out.push_back(text.substr(gap, b - gap));
    out.push_back(text.substr(b, e - b));
    gap = pos = e;
  }
  if (gap < text.size()) out.push_back(text.substr(gap));
  pcre2_match_data_free(md);
}

void Tokenizer::Impl::init_bpe() {
  // GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves, the others to
  // U+0100 upwards in byte order.
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + next++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    byte_to_unicode[b] = s;
    unicode_to_byte[cp] = static_cast<uint8_t>(b);
  }
  ignore_merges = pre_tokenizer_ignores_merges(pre);
  for (const auto& p : pre_tokenizer_patterns(pre)) pre_regexes.emplace_back(p);
}

void Tokenizer::Impl::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words{text}, next;
  for (const auto& re : pre_regexes) {
    next.clear();
    for (auto w : words) re.split(w, next);
    words.swap(next);
  }
  for (auto w : words) encode_bpe_word(w, out);
}

void Tokenizer::Impl::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::string mapped;
  mapped.reserve(word.size() * 2);
  for (unsigned char c : word) mapped += byte_to_unicode[c];

  std::vector<int32_t> ids;
  int32_t whole = ignore_merges ? find(mapped) : -1;
  if (whole >= 0) {
    ids.push_back(whole);
  } else {
    // Symbols are the byte-level characters; a linked list lets merges run in O(n log n).
    std::vector<int32_t> sym, prev, nxt;
    for (size_t i = 0; i < mapped.size();) {
      unsigned char c = mapped[i];
      size_t len = c < 0x80 ? 1 : 2;  // the byte-level alphabet is at most U+0143
      sym.push_back(find(std::string_view(mapped).substr(i, len)));
      i += len;
    }
    const int n = static_cast<int>(sym.size());
    prev.resize(n);
    nxt.resize(n);
    for (int i = 0; i < n; ++i) {
      prev[i] = i - 1;
      nxt[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Cand {
      int32_t rank, left, left_id, right_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
    auto consider = [&](int l) {
      if (l < 0) return;
      int r = nxt[l];
      if (r < 0 || sym[l] < 0 || sym[r] < 0) return;
      auto it = merges.find((static_cast<uint64_t>(sym[l]) << 32) | static_cast<uint32_t>(sym[r]));
      if (it != merges.end()) heap.push({it->second.first, l, sym[l], sym[r]});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      int l = c.left, r = nxt[l];
      if (r < 0 || sym[l] != c.left_id || sym[r] != c.right_id) continue;  // stale
      auto it = merges.find((static_cast<uint64_t>(sym[l]) << 32) | static_cast<uint32_t>(sym[r]));
      sym[l] = it->second.second;
      sym[r] = -2;  // dead
      nxt[l] = nxt[r];
      if (nxt[r] >= 0) prev[nxt[r]] = l;
      consider(prev[l]);
      consider(l);
    }
    for (int i = 0; i >= 0 && i < n; i = nxt[i]) {
      if (sym[i] >= 0)
        ids.push_back(sym[i]);
      else if (unk >= 0)
        ids.push_back(unk);
    }
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (cache.size() > 100000) cache.clear();
  cache.emplace(std::move(key), std::move(ids));
}

}  // namespace eight::text

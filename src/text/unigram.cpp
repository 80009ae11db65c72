// Unigram SentencePiece tokenization (see unigram.h): SentencePiece's normalizer
// (normalizer.cc: Normalize / NormalizePrefix) and its optimized Viterbi
// (unigram_model.cc: EncodeOptimized), shared by the spiece.model and tokenizer.json loaders.
#include "text/unigram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/storage.h"
#include "text/unigram_impl.h"

namespace eight::text {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁"

// SentencePiece's OneCharLen: the length a UTF-8 lead byte announces (1 for stray bytes).
size_t one_char_len(char c) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(c) >> 4];
}

}  // namespace

void UnigramTokenizer::Impl::finish() {
  const auto n = static_cast<int32_t>(pieces.size());
  check(n > 0, "[tokenizer] ", name, " has no pieces");
  check(unk >= 0 && unk < n, "[tokenizer] ", name, ": unk id ", unk, " is not one of the ", n,
        " pieces");
  check(eos < n && pad < n, "[tokenizer] ", name, ": eos id ", eos, " / pad id ", pad,
        " outside the ", n, " pieces");
  byte_ids.fill(-1);
  min_score = 0;
  max_score = 0;
  bool first = true;
  for (int32_t id = 0; id < n; ++id) {
    const UnigramPiece& p = pieces[static_cast<size_t>(id)];
    check(!p.text.empty(), "[tokenizer] ", name, ": piece ", id, " is empty");
    if (p.type == TokenType::Byte ||
        (double_scores && p.text.size() == 6 && p.text.rfind("<0x", 0) == 0 && p.text[5] == '>')) {
      unsigned v = 0;
      if (std::sscanf(p.text.c_str(), "<0x%2X>", &v) == 1 && v < 256) byte_ids[v] = id;
    }
    const bool in_lattice =
        double_scores || p.type == TokenType::Normal || p.type == TokenType::UserDefined;
    if (in_lattice) {
      auto [it, fresh] = lattice.emplace(p.text, id);
      check(fresh || double_scores, "[tokenizer] ", name, ": piece '", p.text, "' appears twice (",
            it->second, " and ", id, ")");
      max_piece_bytes = std::max(max_piece_bytes, p.text.size());
    }
    // SentencePiece takes the score range over normal pieces, tokenizers over all of them.
    if (double_scores || p.type == TokenType::Normal) {
      check(std::isfinite(p.score), "[tokenizer] ", name, ": piece ", id, " has score ", p.score);
      min_score = first ? p.score : std::min(min_score, p.score);
      max_score = first ? p.score : std::max(max_score, p.score);
      first = false;
    }
  }
  // SentencePiece starts its maximum at FLT_MIN (the smallest positive float), not at -inf.
  if (!double_scores) max_score = std::max(max_score, std::numeric_limits<float>::min());
}

void UnigramTokenizer::Impl::segment(std::string_view s, std::vector<int32_t>& out) const {
  struct Node {
    int32_t id = -1;
    double score = 0;
    int64_t start = -1;
  };
  const size_t n = s.size();
  std::vector<Node> best(n + 1);
  // Unknown characters cost the lowest score minus 10 (kUnkPenalty); SentencePiece adds path
  // scores in float, tokenizers in double: ties resolve exactly as each does.
  const float unk_f = min_score - 10.0f;
  const double unk_d = static_cast<double>(min_score) - 10.0;
  auto round = [&](double x) {
    return double_scores ? x : static_cast<double>(static_cast<float>(x));
  };
  for (size_t start = 0; start < n;) {
    const double here = best[start].score;
    const size_t mblen = std::min(one_char_len(s[start]), n - start);
    const size_t limit = std::min(max_piece_bytes, n - start);
    bool single = false;
    for (size_t len = 1; len <= limit; ++len) {
      const auto it = lattice.find(s.substr(start, len));
      if (it == lattice.end()) continue;
      const UnigramPiece& p = pieces[static_cast<size_t>(it->second)];
      // User-defined pieces get a bonus so that they always win (unigram_model.cc).
      const double score = p.type == TokenType::UserDefined && !double_scores
                               ? static_cast<double>(static_cast<float>(len) * max_score) - 0.1
                               : static_cast<double>(p.score);
      const double cand = score + here;
      Node& t = best[start + len];
      if (t.start < 0 || cand > t.score) t = {it->second, round(cand), static_cast<int64_t>(start)};
      if (len == mblen) single = true;
    }
    if (!single) {
      const double cand =
          double_scores ? unk_d + here : static_cast<double>(unk_f + static_cast<float>(here));
      Node& t = best[start + mblen];
      if (t.start < 0 || cand > t.score) t = {unk, cand, static_cast<int64_t>(start)};
    }
    start += mblen;
  }
  // Backtrack; runs of unknown characters fuse into one unknown piece.
  std::vector<std::pair<size_t, int32_t>> path;  // (start, id)
  for (size_t end = n; end > 0;) {
    const Node& node = best[end];
    path.emplace_back(static_cast<size_t>(node.start), node.id);
    end = static_cast<size_t>(node.start);
  }
  std::reverse(path.begin(), path.end());
  for (size_t i = 0; i < path.size(); ++i) {
    const int32_t id = path[i].second;
    if (id != unk) {
      out.push_back(id);
      continue;
    }
    size_t j = i;
    while (j + 1 < path.size() && path[j + 1].second == unk) ++j;
    const size_t begin = path[i].first, end = j + 1 < path.size() ? path[j + 1].first : n;
    i = j;
    // tokenizers keeps a fused run that is itself a piece (the text "<unk>").
    if (double_scores) {
      const auto it = lattice.find(s.substr(begin, end - begin));
      if (it != lattice.end()) {
        out.push_back(it->second);
        continue;
      }
    }
    if (!byte_fallback) {
      out.push_back(unk);
      continue;
    }
    // SentencePiece maps each byte on its own (a missing <0xNN> is <unk>); tokenizers falls
    // back to <unk> for the whole piece unless every byte has its piece.
    bool all = true;
    for (size_t b = begin; b < end; ++b) all = all && byte_ids[static_cast<uint8_t>(s[b])] >= 0;
    if (double_scores && !all) {
      out.push_back(unk);
      continue;
    }
    for (size_t b = begin; b < end; ++b) {
      const int32_t bid = byte_ids[static_cast<uint8_t>(s[b])];
      out.push_back(bid >= 0 ? bid : unk);
    }
  }
}

std::string UnigramTokenizer::Impl::spm_normalize(std::string_view input) const {
  // NormalizePrefix: a user-defined piece as it is, else the longest charsmap rule, else one
  // UTF-8 character (a malformed byte becomes U+FFFD).
  auto prefix = [&](std::string_view s, size_t* used) -> std::string_view {
    size_t best = 0;
    for (const std::string& u : user_defined)
      if (u.size() > best && s.substr(0, u.size()) == u) best = u.size();
    if (best > 0) return *used = best, s.substr(0, best);
    std::string_view r = charsmap.match(s, used);
    if (*used > 0) return r;
    const size_t len = utf8_valid_char_len(s);
    if (len == 0) return *used = 1, std::string_view("\xEF\xBF\xBD");
    return *used = len, s.substr(0, len);
  };
  size_t used = 0;
  if (remove_extra_whitespaces) {
    while (!input.empty() && prefix(input, &used) == " ") input.remove_prefix(used);
  }
  std::string out;
  if (input.empty()) return out;
  const std::string_view space = escape_whitespaces ? kSpace : std::string_view(" ");
  if (!whitespace_suffix && add_dummy_prefix) out += space;
  bool prev_space = remove_extra_whitespaces;
  while (!input.empty()) {
    std::string_view sp = prefix(input, &used);
    while (prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
    if (!sp.empty()) {
      for (char c : sp) {
        if (escape_whitespaces && c == ' ')
          out += kSpace;
        else
          out += c;
      }
      prev_space = sp.back() == ' ';
    }
    input.remove_prefix(used);
    if (!remove_extra_whitespaces) prev_space = false;
  }
  if (remove_extra_whitespaces) {
    while (out.size() >= space.size() &&
           out.compare(out.size() - space.size(), space.size(), space) == 0)
      out.resize(out.size() - space.size());
  }
  if (whitespace_suffix && add_dummy_prefix) out += space;
  return out;
}

UnigramTokenizer::UnigramTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

std::vector<int32_t> UnigramTokenizer::encode(std::string_view text, bool add_eos) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  if (m.source == "tokenizer.json") {
    if (add_eos) out = m.post_prefix;
    m.encode_hf(text, out);
    if (add_eos) out.insert(out.end(), m.post_suffix.begin(), m.post_suffix.end());
    return out;
  }
  m.segment(m.spm_normalize(text), out);
  if (add_eos && m.eos >= 0) out.push_back(m.eos);
  return out;
}

std::string UnigramTokenizer::normalize(std::string_view text) const {
  const Impl& m = *impl_;
  if (m.source == "spiece.model") return m.spm_normalize(text);
  std::string s = valid_utf8(text);  // the normalizers' regexes need valid UTF-8
  for (const auto& f : m.hf_normalizers) s = f(s);
  return s;
}

std::string UnigramTokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  std::string s;
  for (int32_t id : ids) {
    check(id >= 0 && id < size(), "[tokenizer] id ", id, " is not one of the ", size(), " pieces");
    const UnigramPiece& p = m.pieces[static_cast<size_t>(id)];
    if (p.type == TokenType::Control) continue;
    unsigned v = 0;
    if (p.type == TokenType::Byte && std::sscanf(p.text.c_str(), "<0x%2X>", &v) == 1) {
      s += static_cast<char>(v);
      continue;
    }
    s += p.text;
  }
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, kSpace.size(), kSpace) == 0) {
      if (!out.empty()) out += ' ';
      i += kSpace.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

int32_t UnigramTokenizer::size() const {
  return static_cast<int32_t>(impl_->pieces.size());
}
const std::string& UnigramTokenizer::piece(int32_t id) const {
  check(id >= 0 && id < size(), "[tokenizer] id ", id, " is not one of the ", size(), " pieces");
  return impl_->pieces[static_cast<size_t>(id)].text;
}
TokenType UnigramTokenizer::type(int32_t id) const {
  check(id >= 0 && id < size(), "[tokenizer] id ", id, " is not one of the ", size(), " pieces");
  return impl_->pieces[static_cast<size_t>(id)].type;
}
int32_t UnigramTokenizer::unk() const {
  return impl_->unk;
}
int32_t UnigramTokenizer::eos() const {
  return impl_->eos;
}
int32_t UnigramTokenizer::pad() const {
  return impl_->pad;
}
bool UnigramTokenizer::byte_fallback() const {
  return impl_->byte_fallback;
}
const std::string& UnigramTokenizer::source() const {
  return impl_->source;
}

bool UnigramTokenizer::handles(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return fs::exists(fs::path(path) / "tokenizer.json", ec) ||
           fs::exists(fs::path(path) / "spiece.model", ec);
  const std::string ext = fs::path(path).extension().string();
  return ext == ".model" || ext == ".json";
}

UnigramTokenizer UnigramTokenizer::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    const fs::path json = fs::path(path) / "tokenizer.json", spm = fs::path(path) / "spiece.model";
    check(fs::exists(json, ec) || fs::exists(spm, ec), "[tokenizer] ", path,
          " holds neither tokenizer.json nor spiece.model");
    file = (fs::exists(json, ec) ? json : spm).string();
  }
  const std::string bytes = read_small_file(file, "[tokenizer]");
  const size_t first = bytes.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && bytes[first] == '{') return from_tokenizer_json(bytes, file);
  return from_spiece(bytes, file);
}

}  // namespace eight::text

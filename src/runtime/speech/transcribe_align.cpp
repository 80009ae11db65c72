// Word timestamps by cross-attention alignment (OpenAI's whisper/timing.py).
#include "runtime/speech/transcribe_align.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/tensor.h"
#include "text/tokenizer.h"

namespace eight::whisper {

namespace {

constexpr int kMedianWidth = 7;
constexpr double kTokensPerSecond = 50.0;  // encoder positions per second

bool is_space_free_language(const std::string& lang) {
  return lang == "zh" || lang == "ja" || lang == "th" || lang == "lo" || lang == "my" ||
         lang == "yue";
}

std::string strip(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r\f\v");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\n\r\f\v");
  return s.substr(b, e - b + 1);
}

// Python's `a in b` for strings: substring test ("" is in every string).
bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

double round2(double x) {
  return std::nearbyint(x * 100.0) / 100.0;
}

}  // namespace

DtwPath dtw(const float* x, int n, int m) {
  check(n >= 1 && m >= 1, "[whisper dtw] empty cost matrix [", n, ", ", m, "]");
  const size_t w = static_cast<size_t>(m) + 1;
  const double inf = std::numeric_limits<double>::infinity();
  Tensor cost_buf = Tensor::empty({n + 1, m + 1}, DType::F64);
  Tensor trace_buf = Tensor::empty({n + 1, m + 1}, DType::I8);
  double* cost = cost_buf.data<double>();
  int8_t* trace = trace_buf.data<int8_t>();
  std::fill(cost, cost + (n + 1) * w, inf);
  std::fill(trace, trace + (n + 1) * w, int8_t{-1});
  cost[0] = 0;
  for (int j = 1; j <= m; ++j)
    for (int i = 1; i <= n; ++i) {
      const double c0 = cost[(i - 1) * w + j - 1], c1 = cost[(i - 1) * w + j],
                   c2 = cost[i * w + j - 1];
      double c;
      int8_t t;
      if (c0 < c1 && c0 < c2) {
        c = c0;
        t = 0;
      } else if (c1 < c0 && c1 < c2) {
        c = c1;
        t = 1;
      } else {
        c = c2;
        t = 2;
      }
      const float v = x[static_cast<size_t>(i - 1) * m + (j - 1)];
      cost[i * w + j] = (std::isfinite(v) ? v : 0.0) + c;
      trace[i * w + j] = t;
    }
  for (int j = 0; j <= m; ++j) trace[j] = 2;
  for (int i = 0; i <= n; ++i) trace[i * w] = 1;
  DtwPath path;
  int i = n, j = m;
  while (i > 0 || j > 0) {
    path.text.push_back(i - 1);
    path.time.push_back(j - 1);
    const int8_t t = trace[i * w + j];
    if (t == 0) {
      --i;
      --j;
    } else if (t == 1) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(path.text.begin(), path.text.end());
  std::reverse(path.time.begin(), path.time.end());
  return path;
}

void median_filter(float* x, int rows, int cols, int width) {
  check(width >= 1 && width % 2 == 1, "[whisper median] width must be odd, got ", width);
  const int pad = width / 2;
  if (cols <= pad) return;
  std::vector<float> padded(static_cast<size_t>(cols + 2 * pad)), win(static_cast<size_t>(width));
  for (int r = 0; r < rows; ++r) {
    float* row = x + static_cast<size_t>(r) * cols;
    // Reflect padding without repeating the edge: [3 2 1 | 0 1 2 3 ... | n-2 n-3].
    for (int k = 0; k < cols + 2 * pad; ++k) {
      int src = k - pad;
      if (src < 0) src = -src;
      if (src >= cols) src = 2 * (cols - 1) - src;
      padded[k] = row[std::clamp(src, 0, cols - 1)];
    }
    for (int c = 0; c < cols; ++c) {
      std::copy(padded.begin() + c, padded.begin() + c + width, win.begin());
      std::nth_element(win.begin(), win.begin() + pad, win.end());
      row[c] = win[pad];
    }
  }
}

WordSplit split_to_word_tokens(const WhisperTokenizer& tok, std::span<const int32_t> tokens,
                               const std::string& language) {
  // Pieces that decode to whole UTF-8 characters (a token may carry half of one).
  WordSplit pieces;
  std::string bytes;
  std::vector<int32_t> current;
  for (int32_t t : tokens) {
    current.push_back(t);
    bytes += tok.is_text(t) ? std::string(tok.piece(t)) : tok.special_name(t);
    if (text::utf8_complete_prefix(bytes) == bytes.size()) {
      pieces.words.push_back(bytes);
      pieces.tokens.push_back(current);
      bytes.clear();
      current.clear();
    }
  }
  if (!current.empty()) {
    pieces.words.push_back(bytes);
    pieces.tokens.push_back(current);
  }
  if (is_space_free_language(language)) return pieces;

  static const std::string kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  WordSplit out;
  for (size_t i = 0; i < pieces.words.size(); ++i) {
    const std::string& w = pieces.words[i];
    const bool special = pieces.tokens[i][0] >= tok.special().eot;
    const bool with_space = !w.empty() && w[0] == ' ';
    const bool punctuation = contains(kPunctuation, strip(w));
    if (special || with_space || punctuation || out.words.empty()) {
      out.words.push_back(w);
      out.tokens.push_back(pieces.tokens[i]);
    } else {
      out.words.back() += w;
      out.tokens.back().insert(out.tokens.back().end(), pieces.tokens[i].begin(),
                               pieces.tokens[i].end());
    }
  }
  return out;
}

void merge_punctuations(std::vector<AlignedWord>& a, const std::string& prepended,
                        const std::string& appended) {
  if (a.size() < 2) return;
  // Prepended marks (with their leading space) move onto the following word, right to left.
  int i = static_cast<int>(a.size()) - 2, j = static_cast<int>(a.size()) - 1;
  while (i >= 0) {
    AlignedWord& prev = a[i];
    AlignedWord& next = a[j];
    if (!prev.word.empty() && prev.word[0] == ' ' && contains(prepended, strip(prev.word))) {
      next.word = prev.word + next.word;
      next.tokens.insert(next.tokens.begin(), prev.tokens.begin(), prev.tokens.end());
      prev.word.clear();
      prev.tokens.clear();
    } else {
      j = i;
    }
    --i;
  }
  // Appended marks join the previous word unless it ends with a space, left to right.
  i = 0;
  j = 1;
  while (j < static_cast<int>(a.size())) {
    AlignedWord& prev = a[i];
    AlignedWord& next = a[j];
    if ((prev.word.empty() || prev.word.back() != ' ') && contains(appended, next.word)) {
      prev.word += next.word;
      prev.tokens.insert(prev.tokens.end(), next.tokens.begin(), next.tokens.end());
      next.word.clear();
      next.tokens.clear();
    } else {
      i = j;
    }
    ++j;
  }
}

std::vector<AlignedWord> words_from_path(const WhisperTokenizer& tok,
                                         std::span<const int32_t> text_tokens,
                                         std::span<const float> token_probs, const DtwPath& path,
                                         const std::string& language) {
  check(token_probs.size() == text_tokens.size(), "[whisper align] ", token_probs.size(),
        " token probabilities for ", text_tokens.size(), " tokens");
  std::vector<int32_t> with_eot(text_tokens.begin(), text_tokens.end());
  with_eot.push_back(tok.special().eot);
  const WordSplit split = split_to_word_tokens(tok, with_eot, language);
  if (split.tokens.size() <= 1) return {};
  // Times (s) where the path first reaches each text row.
  std::vector<double> jump_times;
  for (size_t k = 0; k < path.text.size(); ++k)
    if (k == 0 || path.text[k] != path.text[k - 1])
      jump_times.push_back(path.time[k] / kTokensPerSecond);
  check(!jump_times.empty(), "[whisper align] empty alignment path");
  std::vector<size_t> boundaries = {0};
  for (size_t w = 0; w + 1 < split.tokens.size(); ++w)
    boundaries.push_back(boundaries.back() + split.tokens[w].size());
  auto time_at = [&](size_t b) { return jump_times[std::min(b, jump_times.size() - 1)]; };
  std::vector<AlignedWord> out;
  for (size_t w = 0; w + 1 < boundaries.size(); ++w) {
    AlignedWord a;
    a.word = split.words[w];
    a.tokens = split.tokens[w];
    a.start = time_at(boundaries[w]);
    a.end = time_at(boundaries[w + 1]);
    double sum = 0;
    const size_t b = boundaries[w], e = std::min(boundaries[w + 1], token_probs.size());
    for (size_t k = b; k < e; ++k) sum += token_probs[k];
    a.probability = e > b ? sum / static_cast<double>(e - b) : 0.0;
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<TokenTiming> token_times_from_path(std::span<const int32_t> text_tokens,
                                               std::span<const float> token_probs,
                                               const DtwPath& path) {
  // first[r]: the first path step on row r.
  std::vector<double> first(text_tokens.size() + 1, -1.0);
  for (size_t k = 0; k < path.text.size(); ++k) {
    const int r = path.text[k];
    if (r >= 0 && static_cast<size_t>(r) < first.size() && first[r] < 0)
      first[r] = path.time[k] / kTokensPerSecond;
  }
  std::vector<TokenTiming> out;
  for (size_t k = 0; k < text_tokens.size(); ++k) {
    const double start = std::max(0.0, first[k]);
    out.push_back({text_tokens[k], start, std::max(start, first[k + 1]),
                   k < token_probs.size() ? token_probs[k] : 0.0});
  }
  return out;
}

Alignment find_alignment(DecoderModel& model, int seq, const WhisperTokenizer& tok,
                         std::span<const int32_t> sot_sequence,
                         std::span<const int32_t> text_tokens, int num_frames,
                         const std::vector<std::pair<int, int>>& heads,
                         const std::string& language) {
  if (text_tokens.empty() || heads.empty()) return {};
  const SpecialTokens& s = tok.special();
  std::vector<int32_t> tokens(sot_sequence.begin(), sot_sequence.end());
  tokens.push_back(s.notimestamps);
  tokens.insert(tokens.end(), text_tokens.begin(), text_tokens.end());
  tokens.push_back(s.eot);
  const int n_tok = static_cast<int>(tokens.size());
  check(n_tok <= model.max_tokens(), "[whisper align] ", n_tok,
        " tokens exceed the decoder context of ", model.max_tokens());
  const int nv = model.n_vocab();
  Tensor logits_buf = Tensor::empty({n_tok, nv}, DType::F32);
  CrossAttentionCapture capture;
  capture.heads = heads;
  model.truncate(seq, 0);
  model.decode(seq, tokens, logits_buf.data<float>(), &capture);
  check(capture.weights.size() == heads.size(), "[whisper align] captured ", capture.weights.size(),
        " attention maps for ", heads.size(), " heads");

  // Probability of each text token, from a softmax over text tokens only (as OpenAI).
  const int first = static_cast<int>(sot_sequence.size());
  std::vector<float> probs(text_tokens.size());
  for (size_t k = 0; k < text_tokens.size(); ++k) {
    const float* row = logits_buf.data<float>() + static_cast<size_t>(first + k) * nv;
    probs[k] = static_cast<float>(std::exp(row[text_tokens[k]] - logsumexp(row, s.eot)));
  }

  const int64_t n_ctx = capture.weights[0].size(-1);
  const int frames = static_cast<int>(std::clamp<int64_t>(num_frames / 2, 1, n_ctx));
  const int rows = static_cast<int>(text_tokens.size()) + 1;  // <|notimestamps|> + text
  Tensor matrix_buf = Tensor::zeros({rows, frames}, DType::F32);
  Tensor head_buf = Tensor::empty({n_tok, frames}, DType::F32);
  float* matrix = matrix_buf.data<float>();
  float* w = head_buf.data<float>();
  for (const Tensor& att : capture.weights) {
    check(att.dim() == 2 && att.size(0) == n_tok && att.size(1) == n_ctx,
          "[whisper align] attention map ", att.shape().str(), " for ", n_tok, " tokens");
    const Tensor a = att.contiguous();
    // Softmax restricted to the window's real frames = the full softmax renormalized there.
    for (int r = 0; r < n_tok; ++r) {
      const float* src = a.data<float>() + static_cast<size_t>(r) * n_ctx;
      double sum = 0;
      for (int c = 0; c < frames; ++c) sum += src[c];
      for (int c = 0; c < frames; ++c)
        w[static_cast<size_t>(r) * frames + c] = sum > 0 ? static_cast<float>(src[c] / sum) : 0.f;
    }
    // Standardize each frame over the tokens.
    for (int c = 0; c < frames; ++c) {
      double mean = 0, var = 0;
      for (int r = 0; r < n_tok; ++r) mean += w[static_cast<size_t>(r) * frames + c];
      mean /= n_tok;
      for (int r = 0; r < n_tok; ++r) {
        const double d = w[static_cast<size_t>(r) * frames + c] - mean;
        var += d * d;
      }
      const double sd = std::sqrt(var / n_tok);
      for (int r = 0; r < n_tok; ++r) {
        float& v = w[static_cast<size_t>(r) * frames + c];
        v = sd > 0 ? static_cast<float>((v - mean) / sd) : 0.f;
      }
    }
    median_filter(w, n_tok, frames, kMedianWidth);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < frames; ++c)
        matrix[static_cast<size_t>(r) * frames + c] +=
            w[static_cast<size_t>(first + r) * frames + c] / static_cast<float>(heads.size());
  }
  for (int64_t k = 0; k < static_cast<int64_t>(rows) * frames; ++k) matrix[k] = -matrix[k];
  const DtwPath path = dtw(matrix, rows, frames);
  return {words_from_path(tok, text_tokens, probs, path, language),
          token_times_from_path(text_tokens, probs, path)};
}

void add_word_timestamps(std::span<Segment> segments, DecoderModel& model, int seq,
                         const WhisperTokenizer& tok, std::span<const int32_t> sot_sequence,
                         int num_frames, const std::vector<std::pair<int, int>>& heads,
                         const TranscribeOptions& options, const std::string& language,
                         double& last_speech_timestamp) {
  if (segments.empty()) return;
  std::vector<std::vector<int32_t>> per_segment;
  std::vector<int32_t> text_tokens;
  for (const Segment& seg : segments) {
    per_segment.emplace_back();
    for (int32_t t : seg.tokens)
      if (tok.is_text(t)) per_segment.back().push_back(t);
    text_tokens.insert(text_tokens.end(), per_segment.back().begin(), per_segment.back().end());
  }
  Alignment aligned =
      find_alignment(model, seq, tok, sot_sequence, text_tokens, num_frames, heads, language);
  std::vector<AlignedWord>& alignment = aligned.words;
  const double window_start = static_cast<double>(segments[0].seek) / kFramesPerSecond;
  size_t next_token = 0;
  for (size_t si = 0; si < segments.size(); ++si) {
    segments[si].token_times.clear();
    for (size_t k = 0; k < per_segment[si].size() && next_token < aligned.tokens.size(); ++k) {
      TokenTiming t = aligned.tokens[next_token++];
      t.start = round2(window_start + t.start);
      t.end = round2(window_start + t.end);
      segments[si].token_times.push_back(t);
    }
  }

  std::vector<double> durations;
  for (const AlignedWord& a : alignment)
    if (a.end - a.start != 0) durations.push_back(a.end - a.start);
  double median = 0;
  if (!durations.empty()) {
    std::sort(durations.begin(), durations.end());
    const size_t n = durations.size();
    median = n % 2 ? durations[n / 2] : 0.5 * (durations[n / 2 - 1] + durations[n / 2]);
  }
  median = std::min(0.7, median);
  const double max_duration = median * 2;
  // Long words at sentence boundaries are truncated (OpenAI's hack for pauses after a period).
  if (!durations.empty()) {
    static const std::string kSentenceEnd = ".。!！?？";
    for (size_t i = 1; i < alignment.size(); ++i)
      if (alignment[i].end - alignment[i].start > max_duration) {
        if (contains(kSentenceEnd, alignment[i].word))
          alignment[i].end = alignment[i].start + max_duration;
        else if (contains(kSentenceEnd, alignment[i - 1].word))
          alignment[i].start = alignment[i].end - max_duration;
      }
  }
  merge_punctuations(alignment, options.prepend_punctuations, options.append_punctuations);

  const double time_offset = static_cast<double>(segments[0].seek) / kFramesPerSecond;
  size_t word_index = 0;
  for (size_t si = 0; si < segments.size(); ++si) {
    Segment& seg = segments[si];
    size_t saved = 0;
    std::vector<WordTiming> words;
    while (word_index < alignment.size() && saved < per_segment[si].size()) {
      const AlignedWord& a = alignment[word_index];
      if (!a.word.empty())
        words.push_back(
            {a.word, round2(time_offset + a.start), round2(time_offset + a.end), a.probability});
      saved += a.tokens.size();
      ++word_index;
    }
    if (!words.empty()) {
      // After a pause, the first word(s) must not stretch over the silence.
      if (words[0].end - last_speech_timestamp > median * 4 &&
          (words[0].end - words[0].start > max_duration ||
           (words.size() > 1 && words[1].end - words[0].start > max_duration * 2))) {
        if (words.size() > 1 && words[1].end - words[1].start > max_duration) {
          const double boundary = std::max(words[1].end / 2, words[1].end - max_duration);
          words[0].end = words[1].start = boundary;
        }
        words[0].start = std::max(0.0, words[0].end - max_duration);
      }
      // Prefer the segment's own start/end when the first/last word is too long.
      if (seg.start < words[0].end && seg.start - 0.5 > words[0].start)
        words[0].start = std::max(0.0, std::min(words[0].end - median, seg.start));
      else
        seg.start = words[0].start;
      if (seg.end > words.back().start && seg.end + 0.5 < words.back().end)
        words.back().end = std::max(words.back().start + median, seg.end);
      else
        seg.end = words.back().end;
      last_speech_timestamp = seg.end;
    }
    seg.words = std::move(words);
  }
}

}  // namespace eight::whisper

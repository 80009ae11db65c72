#pragma once
// Test doubles for the Whisper decoding loop: a synthetic vocabulary (byte tokens, a few words,
// filler) with OpenAI's multilingual special-token layout, and a scripted DecoderModel whose
// "speech" is whatever loud frames the window's mel holds. For each loud run in the window it
// prefers <|start|> " hello" <|end|>; a run cut by the window's end gets only <|start|> " hello",
// as Whisper does with an unfinished sentence. It follows whatever tokens the search actually
// chose, so the logit rules and the search stay in charge.
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/whisper_ggml.h"
#include "runtime/speech/transcribe_search.h"
#include "runtime/speech/whisper_tokenizer.h"

namespace eight::testing {

inline constexpr int32_t kFakeVocab = 51865;  // multilingual layout
inline constexpr int32_t kHello = 256;        // " hello"
inline constexpr int32_t kWorld = 257;        // " world"

inline std::vector<std::string> fake_vocab() {
  const whisper::SpecialTokens sp = whisper::special_tokens_for(kFakeVocab);
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.emplace_back(1, static_cast<char>(b));
  v.push_back(" hello");
  v.push_back(" world");
  v.push_back(" -");
  v.push_back(" '");
  while (static_cast<int32_t>(v.size()) < sp.eot)
    v.push_back("<pad" + std::to_string(v.size()) + ">");
  return v;
}

inline const whisper::WhisperTokenizer& fake_tokenizer() {
  static const whisper::WhisperTokenizer tok(fake_vocab(), whisper::special_tokens_for(kFakeVocab));
  return tok;
}

class ScriptedModel : public whisper::DecoderModel {
 public:
  explicit ScriptedModel(int max_seq = 8, int max_tokens = 448)
      : max_seq_(max_seq), max_tokens_(max_tokens), seqs_(static_cast<size_t>(max_seq)) {}
  int n_vocab() const override { return kFakeVocab; }
  int max_sequences() const override { return max_seq_; }
  int max_tokens() const override { return max_tokens_; }

  void encode(const Tensor& mel) override {
    ++encodes;
    // Loud frames: any mel bin above 0.5 (silence after normalization sits near -0.5 or at
    // the zero padding).
    const int64_t n_mels = mel.size(0), n = mel.size(1);
    loud_.assign(static_cast<size_t>(n), false);
    for (int64_t f = 0; f < n; ++f)
      for (int64_t m = 0; m < n_mels; ++m)
        if (mel.data<float>()[m * n + f] > 0.5f) loud_[f] = true;
    for (auto& s : seqs_) s.clear();
  }
  void decode(int seq, std::span<const int32_t> tokens, float* logits,
              whisper::CrossAttentionCapture* capture) override {
    check(seq >= 0 && seq < max_seq_, "[fake] bad seq ", seq);
    for (size_t i = 0; i < tokens.size(); ++i) {
      seqs_[seq].push_back(tokens[i]);
      check(static_cast<int>(seqs_[seq].size()) <= max_tokens_, "[fake] context overflow");
      next_logits(seqs_[seq], logits + i * kFakeVocab);
    }
    if (capture) {
      // Attention in blocks of frames: tokens before <|notimestamps|> look at [0, 50), the
      // <|notimestamps|> row (which predicts the first word) at [50, 200), later ones at
      // [200, 500). Alignment must put the first word's end at frame 200 = 4.0 s.
      capture->weights.clear();
      for (size_t h = 0; h < capture->heads.size(); ++h) {
        Tensor w = Tensor::zeros({static_cast<int64_t>(tokens.size()), 1500}, DType::F32);
        for (size_t k = 0; k < tokens.size(); ++k) {
          const size_t b = k < 3 ? 0 : k == 3 ? 50 : 200, e = k < 3 ? 50 : k == 3 ? 200 : 500;
          for (size_t f = b; f < e; ++f) w.data<float>()[k * 1500 + f] = 1.f / float(e - b);
        }
        capture->weights.push_back(w);
      }
    }
  }
  void decode_batch(std::span<const int> seqs, std::span<const int32_t> tokens,
                    float* logits) override {
    for (size_t i = 0; i < seqs.size(); ++i)
      decode(seqs[i], tokens.subspan(i, 1), logits + i * kFakeVocab, nullptr);
  }
  void truncate(int seq, int n) override { seqs_[seq].resize(static_cast<size_t>(n)); }
  void copy_sequence(int src, int dst) override { seqs_[dst] = seqs_[src]; }
  const std::vector<int32_t>& history(int seq) const { return seqs_[seq]; }

  int encodes = 0;
  int32_t detected_language_token = -1;  // preferred after <|sot|> alone
  float nospeech_logit = -5.f;           // <|nospeech|> after <|sot|>: high = "silence"

 private:
  // The loud runs of the window as (start, end) in timestamp steps (two mel frames each).
  std::vector<std::pair<int, int>> runs() const {
    std::vector<std::pair<int, int>> r;
    const int n = static_cast<int>(loud_.size());
    for (int f = 0; f < n;) {
      if (!loud_[f]) {
        ++f;
        continue;
      }
      int e = f;
      while (e < n && loud_[e]) ++e;
      // Runs under 0.1 s are the STFT window's spill over a cut at a burst's edge.
      if (e - f >= 10) r.emplace_back(f / 2, e < n ? e / 2 : -1);  // -1: past the window
      f = e;
    }
    return r;
  }

  void next_logits(const std::vector<int32_t>& hist, float* out) const {
    const whisper::SpecialTokens sp = whisper::special_tokens_for(kFakeVocab);
    std::fill(out, out + kFakeVocab, 0.f);
    if (hist.back() == sp.sot) {
      if (detected_language_token >= 0) out[detected_language_token] = 20.f;
      out[sp.nospeech] = nospeech_logit;
    }
    // Tokens sampled since the task token (sot, lang, task).
    size_t begin = hist.size();
    for (size_t i = 0; i < hist.size(); ++i)
      if (hist[i] == sp.sot) begin = i + 3;
    if (begin > hist.size()) return;
    std::vector<int32_t> script;
    for (auto [b, e] : runs()) {
      script.push_back(sp.timestamp_begin + b);
      script.push_back(kHello);
      if (e < 0) break;
      script.push_back(sp.timestamp_begin + e);
    }
    script.push_back(sp.eot);
    const size_t pos = hist.size() - begin;
    const int32_t want = pos < script.size() ? script[pos] : sp.eot;
    out[want] = 20.f;
  }

  int max_seq_, max_tokens_;
  std::vector<std::vector<int32_t>> seqs_;
  std::vector<bool> loud_;
};

}  // namespace eight::testing

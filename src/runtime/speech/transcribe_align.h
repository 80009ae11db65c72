#pragma once
// Word-level timestamps as OpenAI's whisper/timing.py computes them: the decoder is run once more
// over <|sot|> lang task <|notimestamps|> text <|endoftext|>, the cross-attention of the alignment
// heads (restricted to the window's real frames) is standardized per frame, median-filtered over
// time (width 7) and averaged over heads; dynamic time warping over -attention pairs each text
// token with encoder frames (20 ms each), and words take the times where their first and next
// word's tokens begin. Punctuation is merged into neighbouring words the way OpenAI does.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "runtime/speech/transcribe.h"
#include "runtime/speech/transcribe_search.h"

namespace eight::whisper {

// The monotonic path of minimum total cost through x [n, m] (row-major), steps (1,1), (1,0),
// (0,1), with OpenAI's tie order (diagonal, then up, then left) and backtrace. The path runs from
// (0, 0) to (n - 1, m - 1); non-finite costs are treated as 0 so it always does.
struct DtwPath {
  std::vector<int> text;  // row index per step
  std::vector<int> time;  // column index per step
};
DtwPath dtw(const float* x, int n, int m);

// In place along each row of x [rows, cols]: median over a window of odd `width` with reflect
// padding; rows no longer than width / 2 are left unchanged (as OpenAI's median_filter).
void median_filter(float* x, int rows, int cols, int width);

// OpenAI's split_to_word_tokens: tokens grouped into whole UTF-8 pieces, then into words that
// start with a space (or are punctuation / special tokens); languages written without spaces
// (zh, ja, th, lo, my, yue) keep each UTF-8 piece as a word.
struct WordSplit {
  std::vector<std::string> words;
  std::vector<std::vector<int32_t>> tokens;
};
WordSplit split_to_word_tokens(const WhisperTokenizer& tok, std::span<const int32_t> tokens,
                               const std::string& language);

struct AlignedWord {
  std::string word;
  std::vector<int32_t> tokens;
  double start = 0, end = 0;  // seconds from the window start
  double probability = 0;
};

// merge_punctuations of timing.py: prepended marks join the following word, appended ones the
// previous word; the emptied entries keep their place (word "" and no tokens).
void merge_punctuations(std::vector<AlignedWord>& words, const std::string& prepended,
                        const std::string& appended);

// Words with times from a DTW path over [text tokens + 1, frames] (see find_alignment).
// token_probs: probability of each text token. Drops the trailing <|endoftext|> "word".
std::vector<AlignedWord> words_from_path(const WhisperTokenizer& tok,
                                         std::span<const int32_t> text_tokens,
                                         std::span<const float> token_probs, const DtwPath& path,
                                         const std::string& language);

// Token-level times from a DTW path: text token k spans from the frame where the path reaches
// row k (the row of the token that predicts it) to where it reaches row k + 1 (seconds).
std::vector<TokenTiming> token_times_from_path(std::span<const int32_t> text_tokens,
                                               std::span<const float> token_probs,
                                               const DtwPath& path);

struct Alignment {
  std::vector<AlignedWord> words;
  std::vector<TokenTiming> tokens;  // per text token, seconds from the window start
};

// Runs the alignment pass on sequence `seq` (the window's encoder output must be loaded).
// sot_sequence = <|sot|> lang task. Words are [] for fewer than one word.
Alignment find_alignment(DecoderModel& model, int seq, const WhisperTokenizer& tok,
                         std::span<const int32_t> sot_sequence,
                         std::span<const int32_t> text_tokens, int num_frames,
                         const std::vector<std::pair<int, int>>& heads,
                         const std::string& language);

// add_word_timestamps of transcribe.py: aligns the text of `segments` (one window's, starting at
// mel frame segments[0].seek), clamps over-long words, merges punctuation and assigns words
// back to their segments, adjusting segment starts/ends; also sets each segment's token_times.
// last_speech_timestamp carries over.
void add_word_timestamps(std::span<Segment> segments, DecoderModel& model, int seq,
                         const WhisperTokenizer& tok, std::span<const int32_t> sot_sequence,
                         int num_frames, const std::vector<std::pair<int, int>>& heads,
                         const TranscribeOptions& options, const std::string& language,
                         double& last_speech_timestamp);

}  // namespace eight::whisper

// The grammar engine's per-token cost with Qwen2's 151,646-token vocabulary (the golden
// vocabulary GGUF of ../shared/golden/tokenizer) for a JSON-schema grammar. A request's matcher
// starts with empty caches, so "request" replays a whole JSON answer token by token (mask, then
// accept) with a fresh matcher each iteration: the per-token cost a server request sees.
// "reused" keeps the matcher's caches across iterations (the steady state), "string_cold" is the
// single most expensive step: the first mask inside a string, where nearly every token is allowed
// and the whole trie is walked.
//   build/bin/bench_grammar [--benchmark_filter=request]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "text/grammar.h"
#include "text/tokenizer.h"

namespace {

using namespace eight;

const char* kSchema = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 40},
    "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "email": {"type": "string"},
    "born": {"type": "string", "format": "date"},
    "role": {"enum": ["admin", "user", "guest"]},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
    "address": {"type": "object", "properties": {"street": {"type": "string"},
                "city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["street", "city"], "additionalProperties": false}
  },
  "required": ["name", "age", "role"],
  "additionalProperties": false
})";

// A valid answer, as a model would write it (keys in the compiler's order: sorted).
const char* kAnswer =
    "{\"address\": {\"city\": \"Springfield\", \"street\": \"742 Evergreen Terrace\", \"zip\": "
    "\"49007\"}, \"age\": 39, \"born\": \"1985-05-12\", \"email\": \"homer.j@example.com\", "
    "\"name\": \"Homer Jay Simpson\", \"role\": \"user\", \"tags\": [\"safety\", \"nuclear\", "
    "\"donuts\", \"bowling\"]}";

struct Setup {
  std::shared_ptr<const text::Grammar> grammar;
  std::shared_ptr<const text::GrammarVocab> vocab;
  std::vector<int32_t> answer;
  std::string error;
};

const Setup& setup() {
  static const Setup s = [] {
    Setup out;
    namespace fs = std::filesystem;
    const char* env = std::getenv("EIGHT_SHARED_DIR");
    const std::string gz =
        std::string(env ? env : "../shared") + "/golden/tokenizer/ggml-vocab-qwen2.gguf.gz";
    const std::string path =
        (fs::temp_directory_path() / "eight-bench-grammar-qwen2.gguf").string();
    if (!fs::exists(path) &&
        std::system(("gzip -dc '" + gz + "' > '" + path + "' 2>/dev/null").c_str()) != 0) {
      out.error = "needs " + gz + " (set EIGHT_SHARED_DIR)";
      return out;
    }
    const auto tok = text::Tokenizer::from_gguf(gguf::File::open(path));
    out.vocab = text::GrammarVocab::from_tokenizer(tok);
    out.grammar = text::Grammar::from_json_schema(nlohmann::json::parse(kSchema));
    out.answer = tok.encode(kAnswer, /*add_special=*/false, /*parse_special=*/false);
    return out;
  }();
  return s;
}

void replay(benchmark::State& state, text::GrammarMatcher& m, std::vector<uint32_t>& mask) {
  const Setup& s = setup();
  m.reset();
  for (size_t i = 0; i < s.answer.size(); ++i) {
    m.fill_mask(mask, static_cast<int64_t>(s.answer.size() - i) + 64);
    if (!((mask[static_cast<size_t>(s.answer[i]) / 32] >> (s.answer[i] % 32)) & 1u) ||
        !m.accept(s.answer[i])) {
      state.SkipWithError("the answer's token was not allowed");
      return;
    }
  }
}

void request(benchmark::State& state) {
  const Setup& s = setup();
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  std::vector<uint32_t> mask(text::GrammarMatcher::mask_words(s.vocab->size()));
  for (auto _ : state) {
    text::GrammarMatcher m(s.grammar, s.vocab);
    replay(state, m, mask);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(s.answer.size()));
  state.counters["tokens"] = static_cast<double>(s.answer.size());
  state.counters["vocab"] = s.vocab->size();
}
BENCHMARK(request)->Unit(benchmark::kMillisecond)->MinTime(2.0);

void reused(benchmark::State& state) {
  const Setup& s = setup();
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  std::vector<uint32_t> mask(text::GrammarMatcher::mask_words(s.vocab->size()));
  text::GrammarMatcher m(s.grammar, s.vocab);
  for (auto _ : state) replay(state, m, mask);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(s.answer.size()));
}
BENCHMARK(reused)->Unit(benchmark::kMillisecond);

void string_cold(benchmark::State& state) {
  const Setup& s = setup();
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  std::vector<uint32_t> mask(text::GrammarMatcher::mask_words(s.vocab->size()));
  for (auto _ : state) {
    state.PauseTiming();
    text::GrammarMatcher m(s.grammar, s.vocab);
    m.accept_text("{\"address\": {\"city\": \"");
    state.ResumeTiming();
    m.fill_mask(mask, -1);
  }
}
BENCHMARK(string_cold)->Unit(benchmark::kMillisecond);

void vocab_build(benchmark::State& state) {
  const Setup& s = setup();
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  std::vector<std::string> pieces;
  std::vector<bool> text;
  for (int32_t i = 0; i < s.vocab->size(); ++i) {
    pieces.push_back(s.vocab->piece(i));
    text.push_back(s.vocab->is_text(i));
  }
  for (auto _ : state) benchmark::DoNotOptimize(text::GrammarVocab(pieces, text, s.vocab->eog()));
}
BENCHMARK(vocab_build)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// Byte-level BPE pre-tokenizers by tokenizer.ggml.pre name: eight's PCRE2 splits equal Hugging
// Face tokenizers' on a varied corpus for every family (tests/data/pretokenizer_splits.json, made
// by tools/reference/make_pretokenizer_fixture.py), every name llama.cpp's converter writes is
// either mapped or refused by name, and an unregistered name still falls back to GPT-2.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace eight::text {
namespace {

std::vector<size_t> split_ends(const std::string& pre, const std::string& text) {
  std::vector<size_t> ends;
  for (auto p : pre_tokenize(pre, text))
    if (!p.empty()) ends.push_back(static_cast<size_t>(p.data() + p.size() - text.data()));
  return ends;
}

TEST(PreTokenizers, SplitLikeHuggingFaceTokenizers) {
  std::ifstream f(std::string(EIGHT_SOURCE_DIR) + "/tests/data/pretokenizer_splits.json");
  ASSERT_TRUE(f) << "missing tests/data/pretokenizer_splits.json";
  const auto j = nlohmann::json::parse(f);
  const auto& texts = j.at("texts");
  size_t checked = 0;
  for (const auto& [name, c] : j.at("cases").items()) {
    const auto& rows = c.at("ends");
    ASSERT_EQ(rows.size(), texts.size()) << name;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i].is_null()) continue;  // falcon's byte-level digit quirk (see the script)
      const std::string text = texts[i].get<std::string>();
      EXPECT_EQ(split_ends(name, text), rows[i].get<std::vector<size_t>>())
          << name << " on: " << text;
      ++checked;
    }
  }
  EXPECT_GT(checked, 2500u);
}

TEST(PreTokenizers, EveryConverterNameIsMappedOrRefusedByName) {
  // The names llama.cpp's convert_hf_to_gguf.py writes as tokenizer.ggml.pre for current models.
  const std::vector<std::string> mapped = {
      "llama-bpe",   "deepseek-llm",  "deepseek-coder", "falcon",      "mpt",
      "starcoder",   "gpt-2",         "stablelm2",      "refact",      "command-r",
      "qwen2",       "olmo",          "dbrx",           "jina-v1-en",  "jina-v2-en",
      "jina-v2-es",  "jina-v2-de",    "smaug-bpe",      "poro-chat",   "jina-v2-code",
      "viking",      "jais",          "codeshell",      "tekken",      "smollm",
      "bloom",       "gpt3-finnish",  "exaone",         "phi-2",       "chameleon",
      "roberta-bpe", "gigachat",      "megrez",         "deepseek-v3", "deepseek-r1-qwen",
      "gpt-4o",      "trillion",      "bailingmoe",     "llama4",      "pixtral",
      "seed-coder",  "a.x-4.0",       "midm-2.0",       "lfm2",        "exaone4",
      "mellum",      "hunyuan",       "kimi-k2",        "grok-2",      "glm4",
      "minerva-7b",  "hunyuan-dense", "falcon-h1",      "falcon3",     "chatglm-bpe",
      "qwen35",      "superbpe",      "tiny_aya"};
  const std::set<std::string> refused = {"kimi-k2", "superbpe", "gemma4", "afmoe", "whitespace"};
  const auto known = known_pre_tokenizers();
  for (const auto& name : mapped) {
    if (refused.count(name)) {
      try {
        pre_tokenizer_patterns(name);
        ADD_FAILURE() << name << " should be refused";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'" + name + "' is not supported"), std::string::npos)
            << e.what();
      }
      continue;
    }
    // jina-v2-en is a WordPiece model in llama.cpp (never BPE); every other one is in the table.
    if (name == "jina-v2-en") continue;
    EXPECT_NE(std::find(known.begin(), known.end(), name), known.end()) << name;
  }
  for (const auto& name : known)
    for (const auto& pat : pre_tokenizer_patterns(name)) EXPECT_NO_THROW(Regex{pat}) << name;
}

TEST(PreTokenizers, UnregisteredNameFallsBackToGpt2) {
  EXPECT_EQ(pre_tokenizer_patterns("no-such-model-2031"), pre_tokenizer_patterns("gpt-2"));
  EXPECT_TRUE(pre_tokenizer_ignores_merges("llama-bpe"));
  EXPECT_TRUE(pre_tokenizer_ignores_merges("tekken"));
  EXPECT_FALSE(pre_tokenizer_ignores_merges("smollm"));
}

}  // namespace
}  // namespace eight::text

// Ctrl-C while a long prompt is being read stops between chunks of the prompt, not after it.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "llm_random_model.h"
#include "runtime/llm/generate.h"
#include "runtime/llm/session.h"
#include "test_util.h"

namespace eight {
namespace {

TEST(LLMCancel, FlagStopsPromptProcessingBetweenChunks) {
  testing::TempDir dir;
  testing::RandomLLM s{.n_ctx = 1024};
  testing::write_random_llm(s, dir.file("m.gguf"), 11);
  LLMSession session(llm::LLM::load(dir.file("m.gguf")), {.n_threads = 2}, 1024);
  std::vector<int32_t> prompt(3 * LLMSession::kCancelChunk + 5);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i % 90) + 1;

  // Already set: nothing runs.
  std::atomic<bool> cancel{true};
  EXPECT_EQ(session.sync(prompt, &cancel), nullptr);
  EXPECT_EQ(session.n_past(), 0);

  // Set after one chunk has run: the context keeps that chunk and nothing more.
  cancel = false;
  std::span<const int32_t> head(prompt.data(), LLMSession::kCancelChunk);
  ASSERT_NE(session.sync(head, &cancel), nullptr);
  cancel = true;
  EXPECT_EQ(session.sync(prompt, &cancel), nullptr);
  EXPECT_EQ(session.n_past(), static_cast<int64_t>(LLMSession::kCancelChunk));

  // generate reports it and produces nothing.
  GenerateParams gp;
  gp.max_tokens = 4;
  const GenerateResult r = generate(
      session, prompt, gp, [](int32_t) { return std::string("x"); }, {}, &cancel);
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_TRUE(r.tokens.empty());

  // Without the flag the whole prompt runs, reusing what was already read.
  cancel = false;
  const GenerateResult full = generate(
      session, prompt, gp, [](int32_t) { return std::string("x"); }, {}, &cancel);
  EXPECT_EQ(full.n_prompt, static_cast<int64_t>(prompt.size() - LLMSession::kCancelChunk));
  EXPECT_EQ(full.tokens.size(), 4u);
}

}  // namespace
}  // namespace eight

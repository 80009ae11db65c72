// The decode loop allocates nothing: after a warm-up token, running one more token through a
// session makes no heap allocation at all (operator new is counted for the whole process, so this
// covers the model, the nn blocks, the kernels and the thread pool).
//
// This found two allocations per matrix product in ops: std::function's heap storage for a large
// parallel_for capture (the pool now calls the lambda through a plain pointer) and a bias check
// that formatted its message before knowing it failed.
#include <gtest/gtest.h>

#include "llm_random_model.h"
#include "new_counter.h"
#include "runtime/llm/session.h"
#include "test_util.h"

namespace eight {
namespace {

TEST(LLMDecode, AllocatesNothingPerToken) {
  testing::TempDir dir;
  for (const char* arch : {"llama", "phi3", "qwen2"}) {
    SCOPED_TRACE(arch);
    testing::RandomLLM s{
        .arch = arch, .n_embd = 128, .n_head = 4, .n_head_kv = 2, .wtype = DType::Q8_0};
    testing::write_random_llm(s, dir.file("m.gguf"), 5);
    LLMSession session(llm::LLM::load(dir.file("m.gguf")), {.n_threads = 2}, 64);
    const int32_t prompt[3] = {1, 5, 9};
    session.eval(prompt);
    int32_t tok[1] = {7};
    session.eval(tok);  // warm-up: first decode step sizes every buffer
    const int64_t before = testing::heap_news();
    for (int i = 0; i < 8; ++i) session.eval(tok);
    EXPECT_EQ(testing::heap_news() - before, 0) << "heap allocations in 8 decode steps";
  }
}

}  // namespace
}  // namespace eight

// Golden logits on the CPU: every model in ../shared/golden/llm/ against llama.cpp's (see
// llm_golden_util.h for the bounds).
#include "llm_golden_util.h"

namespace eight {
namespace {

TEST(LLMGolden, LogitsAndGreedyMatchReference) {
  EIGHT_REQUIRE_SHARED();
  const auto models = testing::golden_models();
  ASSERT_FALSE(models.empty()) << "no golden LLMs found under ../shared/golden/llm";
  for (const auto& g : models) {
    SCOPED_TRACE(g.name);
    const auto model = llm::LLM::load(g.dir + "/" + g.meta["model"].get<std::string>());
    testing::check_golden(*model, g, "cpu");
  }
}

}  // namespace
}  // namespace eight

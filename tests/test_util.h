#pragma once
// Helpers shared by the C++ tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace eight::testing {

// ../shared beside the project (EIGHT_SHARED_DIR overrides); empty when absent.
inline std::string shared_dir() {
  const char* env = std::getenv("EIGHT_SHARED_DIR");
  std::string dir = env && *env ? env : EIGHT_SHARED_DIR;
  return std::filesystem::is_directory(dir) ? dir : std::string();
}

inline std::string source_dir() {
  return EIGHT_SOURCE_DIR;
}
inline std::string cli_path() {
  return EIGHT_CLI;
}

// A fresh temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "eight-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A random generator seeded freshly each run (the seed is printed so a failure can be replayed
// with EIGHT_TEST_SEED).
inline std::mt19937_64& rng() {
  static std::mt19937_64 gen = [] {
    uint64_t seed = std::random_device{}();
    if (const char* env = std::getenv("EIGHT_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
    std::fprintf(stderr, "[eight-test] random seed %llu (set EIGHT_TEST_SEED to replay)\n",
                 static_cast<unsigned long long>(seed));
    return std::mt19937_64(seed);
  }();
  return gen;
}

inline std::vector<float> random_floats(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}

// Runs a shell command and captures stdout (stderr goes to the test log). Returns the exit code.
int run_command(const std::string& cmd, std::string* out = nullptr);

#ifdef EIGHT_PYTHON
// The start of a command line that runs the test suite's Python (tools/test_python.sh, which
// picks the interpreter when the test runs) after checking that `modules` (comma-separated import
// names) are there: when one is missing, the command prints the interpreter and the missing
// modules and fails before running anything.
inline std::string python_with(const std::string& modules) {
  return std::string(EIGHT_PYTHON) + " --require " + modules;
}
#endif

}  // namespace eight::testing

// Skips the current test with a loud message when ../shared is absent.
#define EIGHT_REQUIRE_SHARED()                                                             \
  do {                                                                                     \
    if (::eight::testing::shared_dir().empty())                                            \
      GTEST_SKIP() << "SKIPPED: ../shared (golden files) is not beside the project; this " \
                      "test needs it";                                                     \
  } while (0)

#include <cstdio>
inline int eight::testing::run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  std::string acc;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) acc.append(buf, n);
  const int status = ::pclose(p);
  if (out) *out = acc;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

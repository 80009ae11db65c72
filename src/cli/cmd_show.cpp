// `eight show NAME`: one store entry in full.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("show", "NAME", "Show a model in the store: its file, hash, source and metadata.");
  bool json = false;
  p.flag("--json", &json, "print JSON");
  p.positional_count(1, 1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  const Store store;
  const std::string& name = p.positionals()[0];
  const StoreEntry e = store.resolve(name);  // throws with close names
  std::string path, problem;
  try {
    path = store.model_file(e);
  } catch (const Error& err) {
    problem = err.what();
  }
  if (json) {
    nlohmann::json j = {{"name", e.name},
                        {"digest", "sha256:" + e.digest},
                        {"size", e.size},
                        {"format", e.format},
                        {"architecture", e.architecture},
                        {"quant", e.quant},
                        {"source", e.source},
                        {"url", e.url},
                        {"pulled", e.pulled},
                        {"last_used", e.last_used},
                        {"path", path}};
    if (!problem.empty()) j["problem"] = problem;
    std::printf("%s\n", j.dump(2).c_str());
    return problem.empty() ? 0 : 1;
  }
  std::printf("name:          %s\n", e.name.c_str());
  std::printf("file:          %s\n", path.empty() ? "(missing)" : path.c_str());
  std::printf("size:          %s (%llu bytes)\n", format_bytes(int64_t(e.size)).c_str(),
              static_cast<unsigned long long>(e.size));
  std::printf("sha256:        %s\n", e.digest.c_str());
  std::printf("format:        %s\n", e.format.empty() ? "-" : e.format.c_str());
  std::printf("architecture:  %s\n", e.architecture.empty() ? "-" : e.architecture.c_str());
  std::printf("quant:         %s\n", e.quant.empty() ? "-" : e.quant.c_str());
  std::printf("source:        %s\n", e.source.c_str());
  if (!e.url.empty()) std::printf("url:           %s\n", e.url.c_str());
  if (!e.external.empty()) std::printf("reference to:  %s\n", e.external.c_str());
  std::printf("pulled:        %s\n", format_time(e.pulled).c_str());
  std::printf("last used:     %s\n", format_time(e.last_used).c_str());
  if (!problem.empty()) std::fprintf(stderr, "problem: %s\n", problem.c_str());
  return problem.empty() ? 0 : 1;
}

const Registration reg(
    {.name = "show", .summary = "show a model in the store", .run = run, .order = 63});

}  // namespace
}  // namespace eight::cli

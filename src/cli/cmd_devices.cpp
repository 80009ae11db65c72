// `eight devices [--json]`: the Vulkan devices this build sees, as a table or as JSON
// {"devices": [{"index", "name", "type", "backend", "memory_bytes", "features"}]}.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backend/vulkan/vulkan.h"
#include "cli/args.h"
#include "core/memory.h"

namespace eight::cli {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : " ") + s;
  return out;
}

int run(int argc, char** argv) {
  ArgParser p("devices", "", "List the GPUs (Vulkan devices) eight can run on.");
  bool json = false;
  p.flag("--json", &json, "print JSON");
  p.epilog(
      "Automatic selection (--device vulkan or auto) takes a discrete GPU, then an integrated\n"
      "one, never a CPU-type device such as lavapipe: name that one with --device vulkan:N.");
  if (auto rc = p.parse(argc, argv)) return *rc;

  const auto list = vulkan::devices();
  if (json) {
    nlohmann::ordered_json out = {{"devices", nlohmann::ordered_json::array()}};
    for (const auto& d : list)
      out["devices"].push_back({{"index", d.index},
                                {"name", d.name},
                                {"type", d.type},
                                {"backend", "vulkan"},
                                {"memory_bytes", d.memory_bytes},
                                {"features", d.features}});
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (list.empty()) {
    std::printf("%s\n", vulkan::built() ? vulkan::describe_devices().c_str()
                                        : "no devices: vulkan not built (the CPU runs everything)");
    return 0;
  }
  std::printf("%-9s %-36s %-10s %10s %10s  %s\n", "device", "name", "type", "memory", "free",
              "features");
  for (const auto& d : list)
    std::printf("%-9s %-36s %-10s %10s %10s  %s\n", ("vulkan:" + std::to_string(d.index)).c_str(),
                d.name.c_str(), d.type.c_str(), format_bytes(d.memory_bytes).c_str(),
                d.free_bytes >= 0 ? format_bytes(d.free_bytes).c_str() : "?",
                join(d.features).c_str());
  return 0;
}

const Registration reg({.name = "devices",
                        .summary = "list the GPUs (Vulkan devices) and their memory",
                        .run = run,
                        .order = 25});

}  // namespace
}  // namespace eight::cli

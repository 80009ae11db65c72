// `eight version`: the same as `eight --version`, as a command (for scripts that list commands).
#include <cstdio>

#include "backend/vulkan/vulkan.h"
#include "cli/args.h"
#include "core/cpu_features.h"
#include "core/log.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("version", "", "Print the version, the CPU features in use and the backends built.");
  if (auto rc = p.parse(argc, argv)) return *rc;
  const auto& f = cpu_features();
  std::printf("eight %s\n", eight_version().c_str());
  std::printf("cpu: %s, kernels: %s (best available: %s)%s%s%s%s\n", f.brand.c_str(),
              isa_name(active_isa()), isa_name(best_isa()), f.avx512vnni ? ", vnni" : "",
              f.avx_vnni ? ", avx-vnni" : "", f.avx512bf16 ? ", avx512-bf16" : "",
              f.amx_tile ? ", amx" : "");
  std::printf("backends: cpu %s\n", vulkan::built() ? "vulkan" : "(vulkan not built)");
  if (vulkan::built()) std::printf("vulkan: %s\n", vulkan::describe_devices().c_str());
  return 0;
}

const Registration reg(
    {.name = "version", .summary = "print version and backends", .run = run, .order = 900});

}  // namespace
}  // namespace eight::cli

// The `eight` command: dispatches to the registered subcommands (one file per command in src/cli).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/args.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/log.h"
#include "ops/backends.h"

using eight::cli::commands;

namespace {

void print_usage() {
  std::printf(
      "eight — run the best open models that fit an 8 GB GPU (or a CPU)\n\n"
      "usage: eight <command> [options]\n       eight <command> --help\n\ncommands:\n");
  for (const auto& c : commands()) std::printf("  %-18s %s\n", c.name, c.summary);
  std::printf(
      "\noptions:\n  --version    print the version and the backends built in\n"
      "  -h, --help   show this help\n\nenvironment:\n"
      "  EIGHT_THREADS   default thread count      EIGHT_ISA   force generic|avx2|avx2vnni|avx512\n"
      "  EIGHT_LOG       debug|info|warn|error|quiet\n");
}

void print_version() {
  const auto& f = eight::cpu_features();
  std::printf("eight %s\n", eight::eight_version().c_str());
  std::printf("backends: cpu %s\n",
              eight::vulkan_backend_built() ? "vulkan" : "(vulkan not built)");
  std::printf("cpu: %s%s\n", eight::isa_name(eight::active_isa()),
              f.brand.empty() ? "" : (", " + f.brand).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage();
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    print_usage();
    return 0;
  }
  if (cmd == "--version" || cmd == "-v") {
    print_version();
    return 0;
  }
  for (const auto& c : commands()) {
    if (cmd != c.name) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const eight::Error& e) {
      std::fprintf(stderr, "eight %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "eight %s: internal error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "eight: unknown command '%s'. Run 'eight --help' for the list.\n",
               cmd.c_str());
  return 2;
}

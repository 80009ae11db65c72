// `eight rm NAME...`: remove models from the store (a blob goes when no name refers to it).
#include <cstdio>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("rm", "NAME...", "Remove models from the store.");
  bool partial = false;
  p.flag("--partial", &partial, "delete interrupted downloads (those no pull is writing)");
  p.positional_count(0, -1);
  if (auto rc = p.parse(argc, argv)) return *rc;
  const Store store;
  if (partial) {
    const uint64_t freed = store.remove_partial_downloads();
    std::printf("removed interrupted downloads (freed %s)\n", format_bytes(int64_t(freed)).c_str());
  }
  check(partial || !p.positionals().empty(), "name a model to remove (see 'eight list')");
  for (const auto& name : p.positionals()) {
    check_model_name(name);
    const StoreEntry e = store.resolve(name);  // throws with close names
    check(e.name == name, "'", name, "' is short for '", e.name, "'; rm takes the full name");
    const bool freed = store.remove(name);
    if (freed)
      std::printf("removed %s (freed %s)\n", name.c_str(), format_bytes(int64_t(e.size)).c_str());
    else
      std::printf("removed %s (its file is still used by another name or lives elsewhere)\n",
                  name.c_str());
  }
  return 0;
}

const Registration reg(
    {.name = "rm", .summary = "remove a model from the store", .run = run, .order = 62});

}  // namespace
}  // namespace eight::cli

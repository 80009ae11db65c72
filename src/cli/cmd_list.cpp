// `eight list`: the models in the store, and with --found those other tools downloaded.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/memory.h"
#include "runtime/store/found.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

// A note about downloads an interrupted pull left behind, so their space is not a mystery.
void print_partials(const Store& store) {
  uint64_t partial_bytes = 0;
  size_t partial_count = 0;
  for (const auto& pd : store.partial_downloads()) {
    if (pd.in_progress) continue;  // a pull is running
    partial_bytes += pd.size;
    ++partial_count;
  }
  if (partial_count)
    std::printf(
        "\n%zu interrupted download%s (%s) in %s: 'eight pull' the same source resumes, "
        "'eight rm --partial' deletes\n",
        partial_count, partial_count == 1 ? "" : "s", format_bytes(int64_t(partial_bytes)).c_str(),
        store.tmp_dir().c_str());
}

int run(int argc, char** argv) {
  ArgParser p("list", "", "List the models in the store.");
  bool json = false, found = false;
  p.flag("--found", &found,
         "also list GGUF files in the Hugging Face cache and the Ollama store (import them with "
         "'eight import ID'), and CTranslate2 Whisper directories (faster-whisper's; use them in "
         "place: eight transcribe -m PATH)");
  p.flag("--json", &json, "print JSON");
  p.positional_count(0, 0);
  if (auto rc = p.parse(argc, argv)) return *rc;
  const Store store;
  const auto entries = store.list();
  const auto foreign = found ? find_foreign_models() : std::vector<FoundModel>{};
  if (json) {
    nlohmann::json out = {{"store", store.root()}, {"models", nlohmann::json::array()}};
    for (const auto& e : entries)
      out["models"].push_back({{"name", e.name},
                               {"digest", "sha256:" + e.digest},
                               {"size", e.size},
                               {"format", e.format},
                               {"architecture", e.architecture},
                               {"quant", e.quant},
                               {"source", e.source},
                               {"pulled", e.pulled},
                               {"last_used", e.last_used}});
    if (found) {
      out["found"] = nlohmann::json::array();
      for (const auto& m : foreign)
        out["found"].push_back({{"tool", m.tool},
                                {"id", m.id},
                                {"name", m.name},
                                {"path", m.path},
                                {"size", m.size},
                                {"format", m.format},
                                {"digest", m.digest}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (entries.empty() && !found) {
    std::printf("no models in %s; fetch one with 'eight pull', or see 'eight list --found'\n",
                store.root().c_str());
    print_partials(store);
    return 0;
  }
  if (!entries.empty()) {
    std::printf("%-36s %-12s %-8s %10s  %s\n", "NAME", "ARCH", "QUANT", "SIZE", "LAST USED");
    for (const auto& e : entries)
      std::printf("%-36s %-12s %-8s %10s  %s\n", e.name.c_str(), or_dash(e.architecture).c_str(),
                  or_dash(e.quant).c_str(), format_bytes(int64_t(e.size)).c_str(),
                  format_age(e.last_used).c_str());
  }
  print_partials(store);
  if (found) {
    std::printf("%sfound on disk (import with 'eight import ID'):\n", entries.empty() ? "" : "\n");
    if (foreign.empty())
      std::printf("  none in %s or %s\n", hf_hub_cache_dir().c_str(), ollama_models_dir().c_str());
    for (const auto& m : foreign)
      std::printf("  %-12s %-60s %10s  %s\n", m.tool.c_str(), m.id.c_str(),
                  format_bytes(int64_t(m.size)).c_str(), m.path.c_str());
  }
  return 0;
}

const Registration reg(
    {.name = "list", .summary = "list the models in the store", .run = run, .order = 61});

}  // namespace
}  // namespace eight::cli

// `eight pull SOURCE`: download a model into the store (resumable, verified, registered only
// when complete).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/memory.h"
#include "runtime/store/pull.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("pull", "SOURCE", "Download a model into the store and register it under a name.");
  std::string name, sha256;
  bool json = false, quiet = false;
  p.option("--name", &name, "NAME", "store name (default: from the source)");
  p.option("--sha256", &sha256, "HEX", "required SHA-256 of the file");
  p.flag("-q,--quiet", &quiet, "no progress output");
  p.flag("--json", &json, "print the registered entry as JSON");
  p.positional_count(1, 1);
  p.epilog(
      "sources:\n"
      "  NAME:QUANT                          a catalog model, e.g. phi-3-mini:Q4_K_M\n"
      "  hf:OWNER/REPO/PATH/FILE[@REVISION]  a file in a Hugging Face repository\n"
      "  https://...                         any URL\n\n"
      "environment:\n"
      "  EIGHT_HOME            the store (default ~/.local/share/eight)\n"
      "  HF_TOKEN              bearer token for gated Hugging Face repositories (else the\n"
      "                        token file of huggingface-cli login)\n"
      "  HF_ENDPOINT           Hugging Face host (default https://huggingface.co)\n"
      "  EIGHT_STALL_TIMEOUT   seconds without data before an attempt fails (default 30)\n"
      "  EIGHT_PULL_RETRIES    attempts after a failure without progress (default 5)\n\n"
      "An interrupted pull resumes where it stopped when run again.");
  if (auto rc = p.parse(argc, argv)) return *rc;
  const Store store;
  const PullSpec spec = resolve_pull_source(p.positionals()[0], name);
  const StoreEntry e = pull_model(store, spec, {.sha256 = sha256, .quiet = quiet});
  if (json) {
    std::printf("%s\n", nlohmann::json{{"name", e.name},
                                       {"digest", "sha256:" + e.digest},
                                       {"size", e.size},
                                       {"format", e.format},
                                       {"architecture", e.architecture},
                                       {"quant", e.quant},
                                       {"path", store.model_file(e)}}
                            .dump(2)
                            .c_str());
  } else {
    std::printf("%s  %s  sha256:%s\n", e.name.c_str(), format_bytes(int64_t(e.size)).c_str(),
                e.digest.c_str());
  }
  return 0;
}

const Registration reg(
    {.name = "pull", .summary = "download a model into the store", .run = run, .order = 60});

}  // namespace
}  // namespace eight::cli

// `eight import FILE|ID [--name NAME]`: register a model file already on disk, hard-linked (or, in
// another tool's cache on another filesystem, referenced in place) rather than copied.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "core/error.h"
#include "core/memory.h"
#include "runtime/store/found.h"
#include "runtime/store/store.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("import", "FILE|ID", "Register a model file already on disk in the store.");
  std::string name;
  p.option("--name", &name, "NAME", "store name (default: from the file name)");
  p.positional_count(1, 1);
  p.epilog(
      "FILE is a path; ID is what 'eight list --found' shows for a file another tool downloaded:\n"
      "  hf:OWNER/REPO/PATH[@REVISION]   from the Hugging Face cache\n"
      "  ollama:NAME[:TAG]               from Ollama's store\n"
      "The file is hard-linked into the store when it is on the same filesystem, else copied;\n"
      "files in those caches are referenced in place instead of copied.");
  if (auto rc = p.parse(argc, argv)) return *rc;
  const std::string& arg = p.positionals()[0];
  const Store store;
  std::error_code ec;
  StoreEntry e;
  FoundModel m;
  if (!std::filesystem::exists(arg, ec) &&
      (arg.rfind("hf:", 0) == 0 || arg.rfind("ollama:", 0) == 0)) {
    check(find_foreign_model(arg, &m), "no '", arg, "' in the Hugging Face cache (",
          hf_hub_cache_dir(), ") or the Ollama store (", ollama_models_dir(),
          "); see 'eight list --found'");
    check(m.format != "ct2", "'", arg,
          "' is a CTranslate2 Whisper directory, used in place: ", "eight transcribe -m ", m.path);
    e = store.import_file(m.path, name.empty() ? m.name : name, /*allow_reference=*/true, arg);
  } else {
    check(std::filesystem::exists(arg, ec), "no file '", arg, "'");
    const std::string stem = std::filesystem::path(arg).stem().string();
    e = store.import_file(arg, name.empty() ? sanitize_model_name(stem) : name,
                          /*allow_reference=*/true);
  }
  std::printf("%s  %s  sha256:%s%s\n", e.name.c_str(), format_bytes(int64_t(e.size)).c_str(),
              e.digest.c_str(), e.external.empty() ? "" : "  (referenced in place)");
  return 0;
}

const Registration reg({.name = "import",
                        .summary = "register a model file already on disk",
                        .run = run,
                        .order = 64});

}  // namespace
}  // namespace eight::cli

#pragma once
// `eight pull SOURCE`: turning a source into a URL and a store name, and fetching it into the
// store so that a killed pull leaves nothing registered and the next pull resumes it, and two
// pulls of the same source at once download it once.
//
// SOURCE is one of
//   NAME:QUANT                          a catalog model ("phi-3-mini:Q4_K_M")
//   hf:OWNER/REPO/PATH/FILE[@REVISION]  https://huggingface.co/OWNER/REPO/resolve/REVISION/PATH
//                                       ($HF_ENDPOINT replaces the host; REVISION defaults to main)
//   https://...                         any URL (http:// only to loopback addresses, for tests)
#include <string>

#include "runtime/store/store.h"

namespace eight {

struct PullSpec {
  std::string source;  // as given
  std::string url;
  std::string name;             // store name it is registered under
  std::string expected_sha256;  // from the catalog or --sha256, "" when unknown
  bool needs_token = false;     // a Hugging Face URL: send HF_TOKEN when set
};

// Parses a source. `name` overrides the default store name (checked). Throws Error naming what
// is wrong (unknown catalog name, a path segment with "..", a plain http URL, ...).
PullSpec resolve_pull_source(const std::string& source, const std::string& name = "");

// The URL of a file in a Hugging Face repository: ENDPOINT/OWNER/REPO/resolve/REVISION/PATH.
std::string hf_resolve_url(const std::string& repo_id, const std::string& path,
                           const std::string& revision = "main");

struct PullOptions {
  std::string sha256;  // --sha256: required hash of the file
  bool quiet = false;  // no progress output
};

// Fetches the source into the store (or finds it already there) and returns its entry.
StoreEntry pull_model(const Store& store, const PullSpec& spec, const PullOptions& options = {});

}  // namespace eight

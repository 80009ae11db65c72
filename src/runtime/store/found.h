#pragma once
// Discovery of model files other tools already downloaded, so they are reused rather than fetched
// again:
//   Hugging Face hub cache ($HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
//   $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub):
//     models--OWNER--REPO/blobs/<etag>                  the bytes (etag = sha256 for LFS files)
//     models--OWNER--REPO/refs/<branch>                 a commit hash
//     models--OWNER--REPO/snapshots/<commit>/<path>     relative symlinks to ../../blobs/<etag>
//   a snapshot holding config.json and a WhisperSpec model.bin is a CTranslate2 (faster-whisper)
//   Whisper directory: found as format "ct2", id "hf:OWNER/REPO", path the snapshot directory,
//   which `eight transcribe -m` / `eight serve --whisper` read in place (`eight import` takes
//   single files only).
//   Ollama ($OLLAMA_MODELS, else ~/.ollama/models):
//     manifests/<registry>/<namespace>/<model>/<tag>    JSON, layers[] with mediaType
//                                                       application/vnd.ollama.image.model and
//                                                       digest "sha256:<hex>"
//     blobs/sha256-<hex>                                the bytes
// Links are followed only when they stay inside the cache they belong to.
#include <cstdint>
#include <string>
#include <vector>

namespace eight {

struct FoundModel {
  std::string tool;  // "huggingface" or "ollama"
  std::string id;    // what `eight import` accepts: "hf:OWNER/REPO/PATH@REV", "ollama:NAME:TAG"
  std::string name;  // suggested store name
  std::string path;  // the file to read (resolved, inside the cache)
  uint64_t size = 0;
  std::string digest;  // sha256 hex when the cache names the blob by it, else ""
  std::string format;  // "gguf", "ggml", "safetensors", "ct2" (a directory)
};

std::string hf_hub_cache_dir();
std::string ollama_models_dir();

// GGUF (and other supported) files in the Hugging Face cache / the Ollama store; missing folders
// give an empty list.
std::vector<FoundModel> find_hf_cache_models(const std::string& hub_dir = hf_hub_cache_dir());
std::vector<FoundModel> find_ollama_models(const std::string& models_dir = ollama_models_dir());
std::vector<FoundModel> find_foreign_models();

// Looks up an `eight import` argument of the form "hf:OWNER/REPO/PATH[@REV]" or "ollama:NAME[:TAG]"
// among the found models; nullopt-like empty path when absent.
bool find_foreign_model(const std::string& id, FoundModel* out);

// True when `path` (after resolving links) lies inside the Hugging Face cache or the Ollama store,
// the only places a store manifest may reference in place.
bool is_in_foreign_cache(const std::string& path);

}  // namespace eight

// Finding models that the Hugging Face hub client and Ollama already downloaded (layouts in
// found.h).
#include "runtime/store/found.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "runtime/store/sha256.h"
#include "runtime/store/store.h"

namespace eight {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

// Canonical form of a path that exists, or "" (so a missing cache matches nothing).
std::string canonical_or_empty(const std::string& p) {
  std::error_code ec;
  auto c = fs::canonical(p, ec);
  return ec ? std::string() : c.string();
}

bool is_inside(const std::string& path, const std::string& dir) {
  return !dir.empty() && path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::string read_small_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > max_bytes) return "";
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  return s;
}

bool ends_with_ci(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return true;
}

// One snapshot of one repository: every *.gguf whose link stays inside the repository's blobs/.
void scan_hf_snapshot(const std::string& repo_id, const fs::path& repo_dir, const fs::path& snap,
                      const std::string& main_rev, std::vector<FoundModel>* out) {
  const std::string blobs = canonical_or_empty((repo_dir / "blobs").string());
  const std::string snap_real = canonical_or_empty(snap.string());
  const std::string rev = snap.filename().string();
  std::error_code ec;
  // Directory links are not followed: the hub client never makes them.
  for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path& p = it->path();
    if (!ends_with_ci(p.filename().string(), ".gguf")) continue;
    std::error_code ec2;
    if (!it->is_symlink(ec2) && !it->is_regular_file(ec2)) continue;
    const std::string real = canonical_or_empty(p.string());
    // Snapshot entries are links into blobs/; a plain file (copied caches) must stay in the
    // snapshot.
    if (real.empty() || !(is_inside(real, blobs) || is_inside(real, snap_real))) {
      log_warn("[found] ignoring '", p.string(), "': it leads outside ", repo_dir.string());
      continue;
    }
    struct stat st;
    if (::stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    FoundModel m;
    m.tool = "huggingface";
    m.path = real;
    m.size = static_cast<uint64_t>(st.st_size);
    m.format = detect_model_format_file(real);
    if (m.format.empty()) continue;
    // Lexical: fs::relative would follow the link into blobs/.
    const std::string rel = p.lexically_relative(snap).generic_string();
    m.id = "hf:" + repo_id + "/" + rel + (rev == main_rev ? "" : "@" + rev);
    m.name = sanitize_model_name(p.stem().string());
    const std::string blob_name = fs::path(real).filename().string();
    if (is_sha256_hex(blob_name)) m.digest = blob_name;
    out->push_back(std::move(m));
  }
}

// A CTranslate2 Whisper model (faster-whisper's Systran/faster-whisper-* snapshots): a directory
// with config.json and a model.bin whose header names WhisperSpec (u32 version >= 2, then the
// spec name as u16 length + bytes). Used in place, as a directory.
void scan_hf_ct2_whisper(const std::string& repo_id, const fs::path& repo_dir, const fs::path& snap,
                         const std::string& main_rev, std::vector<FoundModel>* out) {
  std::error_code ec;
  const fs::path bin = snap / "model.bin";
  if (!fs::exists(snap / "config.json", ec) || !fs::exists(bin, ec)) return;
  const std::string real = canonical_or_empty(bin.string());
  const std::string blobs = canonical_or_empty((repo_dir / "blobs").string());
  if (real.empty() || !(is_inside(real, blobs) || is_inside(real, canonical_or_empty(snap))))
    return;
  char head[4 + 2 + 11] = {};
  std::ifstream in(real, std::ios::binary);
  if (!in.read(head, sizeof head) || std::string(head + 6, 11) != "WhisperSpec") return;
  struct stat st;
  if (::stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  FoundModel m;
  m.tool = "huggingface";
  m.path = snap.string();
  m.size = static_cast<uint64_t>(st.st_size);
  m.format = "ct2";
  const std::string rev = snap.filename().string();
  m.id = "hf:" + repo_id + (rev == main_rev ? "" : "@" + rev);
  m.name = sanitize_model_name(repo_id.substr(repo_id.find('/') + 1));
  const std::string blob_name = fs::path(real).filename().string();
  if (is_sha256_hex(blob_name)) m.digest = blob_name;
  out->push_back(std::move(m));
}

}  // namespace

std::string hf_hub_cache_dir() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return v + "/hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return v + "/huggingface/hub";
  if (auto v = env("HOME"); !v.empty()) return v + "/.cache/huggingface/hub";
  return "";
}

std::string ollama_models_dir() {
  if (auto v = env("OLLAMA_MODELS"); !v.empty()) return v;
  if (auto v = env("HOME"); !v.empty()) return v + "/.ollama/models";
  return "";
}

std::vector<FoundModel> find_hf_cache_models(const std::string& hub_dir) {
  std::vector<FoundModel> out;
  std::error_code ec;
  if (hub_dir.empty() || !fs::is_directory(hub_dir, ec)) return out;
  for (const auto& repo : fs::directory_iterator(hub_dir, ec)) {
    const std::string dir = repo.path().filename().string();
    if (dir.rfind("models--", 0) != 0 || !repo.is_directory()) continue;
    // models--OWNER--REPO (the repo id with '/' written as "--").
    const std::string rest = dir.substr(8);
    const size_t sep = rest.find("--");
    const std::string repo_id =
        sep == std::string::npos ? rest : rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    const std::string main_rev = trim(read_small_file((repo.path() / "refs/main").string(), 256));
    std::error_code ec2;
    const fs::path snaps = repo.path() / "snapshots";
    if (!fs::is_directory(snaps, ec2)) continue;
    for (const auto& snap : fs::directory_iterator(snaps, ec2))
      if (snap.is_directory()) {
        scan_hf_snapshot(repo_id, repo.path(), snap.path(), main_rev, &out);
        scan_hf_ct2_whisper(repo_id, repo.path(), snap.path(), main_rev, &out);
      }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

std::vector<FoundModel> find_ollama_models(const std::string& models_dir) {
  std::vector<FoundModel> out;
  std::error_code ec;
  const fs::path manifests = fs::path(models_dir) / "manifests";
  if (models_dir.empty() || !fs::is_directory(manifests, ec)) return out;
  const std::string blobs = canonical_or_empty(models_dir + "/blobs");
  // manifests/<registry>/<namespace>/<model>/<tag>: files at depth 3.
  for (auto it = fs::recursive_directory_iterator(manifests, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it.depth() != 3 || !it->is_regular_file()) continue;
    const fs::path& p = it->path();
    const std::string tag = p.filename().string();
    const std::string model = p.parent_path().filename().string();
    const std::string ns = p.parent_path().parent_path().filename().string();
    const std::string host = p.parent_path().parent_path().parent_path().filename().string();
    nlohmann::json j = nlohmann::json::parse(read_small_file(p.string(), 1 << 20), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("layers") || !j["layers"].is_array())
      continue;
    // Field by field, so a manifest with a wrong type is skipped rather than throwing.
    auto text = [](const nlohmann::json& obj, const char* key) {
      auto it = obj.find(key);
      return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    for (const auto& layer : j["layers"]) {
      if (!layer.is_object() || text(layer, "mediaType") != "application/vnd.ollama.image.model")
        continue;
      const std::string digest = text(layer, "digest");
      if (digest.rfind("sha256:", 0) != 0 || !is_sha256_hex(digest.substr(7))) {
        log_warn("[found] ignoring Ollama manifest '", p.string(), "': bad digest '", digest, "'");
        continue;
      }
      const std::string real = canonical_or_empty(models_dir + "/blobs/sha256-" + digest.substr(7));
      struct stat st;
      if (real.empty() || !is_inside(real, blobs) || ::stat(real.c_str(), &st) != 0 ||
          !S_ISREG(st.st_mode))
        continue;
      FoundModel m;
      m.tool = "ollama";
      m.path = real;
      m.size = static_cast<uint64_t>(st.st_size);
      m.digest = digest.substr(7);
      m.format = detect_model_format_file(real);
      if (m.format.empty()) continue;
      const bool library = host == "registry.ollama.ai" && ns == "library";
      m.id = "ollama:" + (library ? model : host + "/" + ns + "/" + model) + ":" + tag;
      m.name = sanitize_model_name((library ? model : ns + "-" + model) + ":" + tag);
      out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

std::vector<FoundModel> find_foreign_models() {
  auto out = find_hf_cache_models();
  auto ollama = find_ollama_models();
  out.insert(out.end(), ollama.begin(), ollama.end());
  return out;
}

bool find_foreign_model(const std::string& id, FoundModel* out) {
  std::string want = id;
  // "ollama:NAME" means the tag "latest", as in Ollama itself.
  if (want.rfind("ollama:", 0) == 0 && want.find(':', 7) == std::string::npos) want += ":latest";
  for (const auto& m : find_foreign_models()) {
    if (m.id == want) {
      *out = m;
      return true;
    }
  }
  return false;
}

bool is_in_foreign_cache(const std::string& path) {
  const std::string real = canonical_or_empty(path);
  if (real.empty()) return false;
  return is_inside(real, canonical_or_empty(hf_hub_cache_dir())) ||
         is_inside(real, canonical_or_empty(ollama_models_dir()));
}

}  // namespace eight

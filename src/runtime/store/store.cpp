// The content-addressed model store (see store.h for the layout and the safety rules).
#include "runtime/store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "runtime/store/found.h"
#include "runtime/store/sha256.h"

namespace eight {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

json entry_to_json(const StoreEntry& e) {
  json j = {{"schema", 1},        {"name", e.name},          {"digest", "sha256:" + e.digest},
            {"size", e.size},     {"format", e.format},      {"architecture", e.architecture},
            {"quant", e.quant},   {"source", e.source},      {"url", e.url},
            {"pulled", e.pulled}, {"last_used", e.last_used}};
  if (!e.external.empty()) j["external"] = e.external;
  return j;
}

// Parses and validates a manifest; `file_name` is the name its file says it holds.
StoreEntry entry_from_json(const json& j, const std::string& file_name, const std::string& where) {
  check(j.is_object(), "[store] ", where, ": a manifest must be a JSON object");
  auto str = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::string();
    check(it->is_string(), "[store] ", where, ": '", key, "' must be a string");
    return it->get<std::string>();
  };
  auto num = [&](const char* key) -> int64_t {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return 0;
    check(it->is_number_integer(), "[store] ", where, ": '", key, "' must be an integer");
    return it->get<int64_t>();
  };
  StoreEntry e;
  e.name = str("name");
  check(e.name == file_name, "[store] ", where, ": holds name '", e.name, "' but its file says '",
        file_name, "'");
  check_model_name(e.name);
  const std::string digest = str("digest");
  check(digest.rfind("sha256:", 0) == 0 && is_sha256_hex(digest.substr(7)), "[store] ", where,
        ": digest '", digest, "' is not sha256:<64 hex digits>");
  e.digest = digest.substr(7);
  const int64_t size = num("size");
  check(size >= 0, "[store] ", where, ": negative size ", size);
  e.size = static_cast<uint64_t>(size);
  e.format = str("format");
  e.architecture = str("architecture");
  e.quant = str("quant");
  e.source = str("source");
  e.url = str("url");
  e.external = str("external");
  e.pulled = num("pulled");
  e.last_used = num("last_used");
  return e;
}

// Regular file (not a link) of the given size at `path`?
bool is_plain_file(const std::string& path, uint64_t* size = nullptr) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return true;
}

void copy_file_to(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  check(!ec, "[store] cannot copy '", from, "' to '", to, "': ", ec.message());
}

}  // namespace

std::string store_root() {
  if (auto home = env("EIGHT_HOME"); !home.empty()) return home;
  if (auto xdg = env("XDG_DATA_HOME"); !xdg.empty()) return xdg + "/eight";
  auto home = env("HOME");
  check(!home.empty(), "[store] neither EIGHT_HOME nor HOME is set; cannot place the model store");
  return home + "/.local/share/eight";
}

bool is_valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == '-' || c == ':' || c == '+';
    if (!ok) return false;
  }
  return name.find("..") == std::string::npos;
}

void check_model_name(const std::string& name) {
  check(!name.empty(), "[store] empty model name");
  check(name.size() <= 128, "[store] model name is ", name.size(), " characters; at most 128");
  check(std::isalnum(static_cast<unsigned char>(name[0])), "[store] model name '", name,
        "' must start with a letter or digit");
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    check(std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '+',
          "[store] model name '", name, "' has character ", (c >= 32 && c < 127 ? "'" : ""),
          (c >= 32 && c < 127 ? std::string(1, char(c)) : cat("0x", std::hex, int(c))),
          (c >= 32 && c < 127 ? "'" : ""), " at position ", i,
          "; names use letters, digits and . _ - : +");
  }
  check(name.find("..") == std::string::npos, "[store] model name '", name,
        "' must not contain '..'");
}

std::string sanitize_model_name(const std::string& text) {
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    const bool ok = std::isalnum(u) || c == '.' || c == '_' || c == '-' || c == ':' || c == '+';
    const char mapped = ok ? static_cast<char>(std::tolower(u)) : '-';
    if (mapped == '.' && !out.empty() && out.back() == '.') continue;
    out += mapped;
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(0, 1);
  if (out.size() > 128) out.resize(128);
  if (out.empty()) out = "model";
  return out;
}

FileLock::FileLock(const std::string& path, const std::string& waiting) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  check(fd_ >= 0, "[store] cannot open lock file '", path, "': ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (!waiting.empty()) log_info(waiting);
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd_);
    fail("[store] cannot lock '", path, "': ", std::strerror(err));
  }
}

FileLock FileLock::try_lock(const std::string& path) {
  FileLock lock;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return lock;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0)
    lock.fd_ = fd;
  else
    ::close(fd);
  return lock;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

std::string detect_model_format(const uint8_t* head, size_t n, uint64_t size) {
  auto le32 = [&](size_t at) {
    return uint32_t(head[at]) | (uint32_t(head[at + 1]) << 8) | (uint32_t(head[at + 2]) << 16) |
           (uint32_t(head[at + 3]) << 24);
  };
  if (n >= 8 && std::memcmp(head, "GGUF", 4) == 0) {
    const uint32_t version = le32(4);
    return version >= 1 && version <= 3 ? "gguf" : "";
  }
  // whisper.cpp's ggml files start with the uint32 0x67676d6c ("ggml"), little-endian "lmgg".
  if (n >= 4 && le32(0) == 0x67676d6cu) return "ggml";
  // safetensors: uint64 header length N, then N bytes of JSON starting with '{'.
  if (n >= 9) {
    const uint64_t header = uint64_t(le32(0)) | (uint64_t(le32(4)) << 32);
    if (header >= 2 && header <= (uint64_t{100} << 20) && 8 + header <= size && head[8] == '{')
      return "safetensors";
  }
  return "";
}

std::string detect_model_format_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "[store] cannot open '", path, "'");
  uint8_t head[16] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const size_t n = static_cast<size_t>(in.gcount());
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  return detect_model_format(head, n, ec ? 0 : size);
}

Store::Store(std::string root) : root_(std::move(root)) {
  check(!root_.empty(), "[store] empty store root");
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string Store::blob_path(const std::string& digest) const {
  check(is_sha256_hex(digest), "[store] digest '", digest, "' is not 64 lowercase hex digits");
  return root_ + "/blobs/sha256-" + digest;
}

std::string Store::manifest_path(const std::string& name) const {
  check_model_name(name);
  return root_ + "/manifests/" + name + ".json";
}

std::string Store::lock_path(const std::string& key) const {
  check(!key.empty() && key.size() <= 100 &&
            std::all_of(key.begin(), key.end(),
                        [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                        }),
        "[store] bad lock key '", key, "'");
  return root_ + "/locks/" + key + ".lock";
}

void Store::ensure_layout() const {
  for (const char* sub : {"blobs", "manifests", "tmp", "locks"}) {
    std::error_code ec;
    fs::create_directories(root_ + "/" + sub, ec);
    check(!ec, "[store] cannot create '", root_, "/", sub, "': ", ec.message());
  }
}

std::vector<StoreEntry> Store::list() const {
  std::vector<StoreEntry> out;
  std::error_code ec;
  const std::string dir = root_ + "/manifests";
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    const std::string file = de.path().filename().string();
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
    const std::string name = file.substr(0, file.size() - 5);
    if (!is_valid_model_name(name)) {
      log_warn("[store] skipping manifest with an invalid name: '", file, "'");
      continue;
    }
    try {
      out.push_back(get(name));
    } catch (const Error& e) {
      log_warn(e.what());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const StoreEntry& a, const StoreEntry& b) { return a.name < b.name; });
  return out;
}

std::optional<StoreEntry> Store::find(const std::string& name) const {
  if (!is_valid_model_name(name)) return std::nullopt;
  if (!is_plain_file(manifest_path(name))) return std::nullopt;
  return get(name);
}

StoreEntry Store::get(const std::string& name) const {
  const std::string path = manifest_path(name);
  uint64_t size = 0;
  check(is_plain_file(path, &size), "[store] no model named '", name, "' in ", root_);
  check(size <= (1u << 20), "[store] manifest '", path, "' is ", size, " bytes; at most 1 MiB");
  std::ifstream in(path);
  json j;
  try {
    in >> j;
  } catch (const json::exception& e) {
    fail("[store] manifest '", path, "' is not valid JSON: ", e.what());
  }
  return entry_from_json(j, name, path);
}

std::string Store::model_file(const StoreEntry& e) const {
  if (!e.external.empty()) {
    check(is_in_foreign_cache(e.external), "[store] model '", e.name, "' refers to '", e.external,
          "', which is outside the Hugging Face cache and the Ollama store; refusing it");
    std::error_code ec;
    const std::string real = fs::canonical(e.external, ec).string();
    uint64_t size = 0;
    check(!ec && is_plain_file(real, &size) && size == e.size, "[store] model '", e.name,
          "' refers to '", e.external, "', which is gone or changed (expected ", e.size,
          " bytes); run 'eight rm ", e.name, "' and import it again");
    return real;
  }
  const std::string blob = blob_path(e.digest);
  uint64_t size = 0;
  check(is_plain_file(blob, &size), "[store] model '", e.name, "': blob ", blob,
        " is missing; run 'eight rm ", e.name, "' and pull it again");
  check(size == e.size, "[store] model '", e.name, "': blob ", blob, " has ", size,
        " bytes but the manifest says ", e.size);
  return blob;
}

void Store::put(const StoreEntry& e) const {
  check_model_name(e.name);
  check(is_sha256_hex(e.digest), "[store] digest '", e.digest, "' is not 64 hex digits");
  ensure_layout();
  FileLock lock(lock_path("store"));
  write_manifest(e);
}

void Store::write_manifest(const StoreEntry& e) const {
  const std::string tmp = cat(tmp_dir(), "/manifest-", e.name, ".", ::getpid(), ".json");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << entry_to_json(e).dump(2) << "\n";
    out.close();
    check(out.good(), "[store] cannot write '", tmp, "'");
  }
  const std::string dst = manifest_path(e.name);
  if (std::rename(tmp.c_str(), dst.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("[store] cannot write manifest '", dst, "': ", std::strerror(err));
  }
}

StoreEntry Store::add(StoreEntry e, const std::string& file, bool owned) const {
  check_model_name(e.name);
  const std::string blob = blob_path(e.digest);
  ensure_layout();
  FileLock lock(lock_path("store"));
  if (!file.empty()) {
    if (is_plain_file(blob)) {
      std::remove(file.c_str());  // the same bytes are already here
    } else {
      if (std::rename(file.c_str(), blob.c_str()) != 0)
        fail("[store] cannot move '", file, "' to '", blob, "': ", std::strerror(errno));
      // Blobs are immutable (their name is their content); a hard link keeps the user's mode.
      if (owned) ::chmod(blob.c_str(), 0444);
    }
  }
  const std::string bytes = e.external.empty() ? blob : e.external;
  uint64_t size = 0;
  check(e.external.empty() ? is_plain_file(blob, &size) : fs::is_regular_file(bytes), "[store] ",
        bytes, " vanished while '", e.name, "' was being registered");
  if (e.external.empty()) e.size = size;
  const ModelFileInfo info = read_model_file_info(bytes);
  e.format = info.format;
  e.architecture = info.architecture;
  e.quant = info.quant;
  write_manifest(e);
  return e;
}

void Store::touch(const std::string& name) const {
  try {
    StoreEntry e = get(name);
    e.last_used = now_unix();
    put(e);
  } catch (const Error& err) {
    // A read-only store still serves models; the time is only informational.
    log_debug("[store] could not update last-used time of '", name, "': ", err.what());
  }
}

bool Store::remove(const std::string& name) const {
  const std::string path = manifest_path(name);
  check(is_plain_file(path), "[store] no model named '", name, "' in ", root_);
  ensure_layout();
  FileLock lock(lock_path("store"));
  std::string digest;
  bool external = false;
  try {
    const StoreEntry e = get(name);
    digest = e.digest;
    external = !e.external.empty();
  } catch (const Error& err) {
    log_warn(err.what(), "; removing the manifest only");
  }
  check(std::remove(path.c_str()) == 0, "[store] cannot remove '", path,
        "': ", std::strerror(errno));
  if (digest.empty() || external) return false;
  for (const auto& other : list())
    if (other.digest == digest && other.external.empty()) return false;
  const std::string blob = blob_path(digest);
  if (!is_plain_file(blob)) return false;
  check(std::remove(blob.c_str()) == 0, "[store] cannot remove '", blob,
        "': ", std::strerror(errno));
  return true;
}

StoreEntry Store::import_file(const std::string& path, const std::string& name,
                              bool allow_reference, const std::string& source) const {
  check_model_name(name);
  std::error_code ec;
  const std::string real = fs::canonical(path, ec).string();
  check(!ec, "[store] cannot import '", path, "': ", ec.message());
  uint64_t size = 0;
  check(is_plain_file(real, &size), "[store] cannot import '", path, "': not a regular file");
  const std::string format = detect_model_format_file(real);
  check(!format.empty(), "[store] cannot import '", path,
        "': not a GGUF, whisper.cpp ggml or safetensors file");
  log_info("[store] hashing ", real, " (", size, " bytes)");
  const std::string digest = sha256_file(real);
  if (auto existing = find(name); existing && existing->digest != digest)
    fail("[store] the name '", name, "' is taken by ", existing->source, " (sha256 ",
         existing->digest.substr(0, 12), "...); choose another with --name or run 'eight rm ", name,
         "' first");
  ensure_layout();

  StoreEntry e;
  e.name = name;
  e.digest = digest;
  e.size = size;
  e.format = format;
  e.source = source.empty() ? path : source;
  e.pulled = now_unix();
  // Stage a hard link (shares the bytes; fails across filesystems with EXDEV) or a copy in tmp/,
  // which add() moves into blobs/ under the store lock.
  std::string staged;
  bool owned = false;
  if (!is_plain_file(blob_path(digest))) {
    staged = cat(tmp_dir(), "/import-", digest, ".", ::getpid());
    std::remove(staged.c_str());
    if (::link(real.c_str(), staged.c_str()) != 0) {
      const int err = errno;
      if (allow_reference && is_in_foreign_cache(real)) {
        e.external = real;
        staged.clear();
      } else {
        log_info("[store] cannot hard-link (", std::strerror(err), "); copying ", size, " bytes");
        copy_file_to(real, staged);
        check(sha256_file(staged) == digest, "[store] '", real, "' changed while being imported");
        owned = true;
      }
    }
  }
  return add(e, staged, owned);
}

std::vector<PartialDownload> Store::partial_downloads() const {
  std::vector<PartialDownload> out;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(tmp_dir(), ec)) {
    const std::string file = de.path().filename().string();
    // pull-<key>.partial is written under locks/pull-<key>.lock.
    if (file.rfind("pull-", 0) != 0 || file.size() <= 13 ||
        file.compare(file.size() - 8, 8, ".partial") != 0)
      continue;
    PartialDownload p;
    p.path = de.path().string();
    if (!is_plain_file(p.path, &p.size)) continue;
    const std::string key = file.substr(0, file.size() - 8);
    try {
      p.in_progress = !FileLock::try_lock(lock_path(key)).held();
    } catch (const Error&) {
      continue;  // not a name this store writes
    }
    out.push_back(p);
  }
  return out;
}

uint64_t Store::remove_partial_downloads() const {
  uint64_t freed = 0;
  for (const auto& p : partial_downloads()) {
    const std::string file = fs::path(p.path).filename().string();
    // Hold the pull's lock while deleting, so a pull starting now cannot append to a dead file.
    FileLock lock = FileLock::try_lock(lock_path(file.substr(0, file.size() - 8)));
    if (!lock.held()) continue;
    if (std::remove(p.path.c_str()) == 0) freed += p.size;
  }
  return freed;
}

std::vector<std::string> Store::close_names(const std::string& query, size_t max) const {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& e : list()) {
    size_t d = edit_distance(query, e.name);
    const std::string stem = e.name.substr(0, e.name.find(':'));
    d = std::min(d, edit_distance(query, stem));
    if (e.name.find(query) != std::string::npos || query.find(stem) != std::string::npos) d = 0;
    if (d <= std::max<size_t>(3, query.size() / 3)) scored.emplace_back(d, e.name);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < max; ++i) out.push_back(scored[i].second);
  return out;
}

StoreEntry Store::resolve(const std::string& name) const {
  if (is_valid_model_name(name)) {
    if (auto e = find(name)) return *e;
    // A bare name matches a single tagged one ("phi-3-mini" -> "phi-3-mini:Q4_K_M").
    if (name.find(':') == std::string::npos) {
      std::vector<StoreEntry> tagged;
      for (auto& e : list())
        if (e.name.rfind(name + ":", 0) == 0) tagged.push_back(e);
      if (tagged.size() == 1) return tagged[0];
      if (tagged.size() > 1) {
        std::string names;
        for (const auto& e : tagged) names += (names.empty() ? "" : ", ") + e.name;
        fail("[store] '", name, "' matches several models: ", names, "; name one");
      }
    }
  }
  std::string hint;
  for (const auto& n : close_names(name)) hint += (hint.empty() ? "" : ", ") + n;
  fail("[store] '", name, "' is neither a file nor a model in the store (", root_, ")",
       hint.empty() ? std::string("; see 'eight list', or fetch one with 'eight pull'")
                    : "; did you mean: " + hint + "?");
}

std::string resolve_model_path(const std::string& name_or_path) {
  std::error_code ec;
  if (fs::exists(name_or_path, ec)) return name_or_path;
  const Store store;
  const StoreEntry e = store.resolve(name_or_path);
  const std::string file = store.model_file(e);
  store.touch(e.name);
  return file;
}

int64_t now_unix() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string format_time(int64_t t) {
  if (t <= 0) return "-";
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string format_age(int64_t t) {
  if (t <= 0) return "never";
  const int64_t d = std::max<int64_t>(0, now_unix() - t);
  if (d < 60) return "just now";
  if (d < 3600) return cat(d / 60, " minute", d / 60 == 1 ? "" : "s", " ago");
  if (d < 86400) return cat(d / 3600, " hour", d / 3600 == 1 ? "" : "s", " ago");
  return cat(d / 86400, " day", d / 86400 == 1 ? "" : "s", " ago");
}

}  // namespace eight

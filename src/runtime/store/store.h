#pragma once
// The model store: a content-addressed folder under $EIGHT_HOME (default $XDG_DATA_HOME/eight or
// ~/.local/share/eight) holding
//   blobs/sha256-<hex>        model files, named by the SHA-256 of their bytes
//   manifests/<name>.json     name -> blob digest, size, source, architecture, quant, times
//   tmp/                      partial downloads (resumed by the next pull) and files being written
//   locks/                    flock files serializing pulls of one source and manifest updates
// Nothing read from a manifest or the network becomes a path directly: names are checked against
// a strict character set and blob paths are rebuilt from a validated digest.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eight {

struct StoreEntry {
  std::string name;          // "phi-3-mini:Q4_K_M"
  std::string digest;        // 64 hex digits (without the "sha256:" prefix)
  uint64_t size = 0;         // bytes
  std::string format;        // "gguf", "ggml", "safetensors"
  std::string architecture;  // general.architecture, "" when unknown
  std::string quant;         // from general.file_type ("Q4_K_M"), "" when unknown
  std::string source;        // what the user pulled or imported ("hf:...", a URL, a path)
  std::string url;           // the URL it came from, "" for imports
  std::string external;      // for a reference to another tool's cache: the file's path there
  int64_t pulled = 0;        // unix seconds
  int64_t last_used = 0;     // unix seconds, 0 when never used
};

// The store root: $EIGHT_HOME, else $XDG_DATA_HOME/eight, else $HOME/.local/share/eight.
std::string store_root();

// Model names: 1..128 characters of [A-Za-z0-9._:+-], starting with a letter or digit, without
// "..". Throws Error naming the offending character otherwise. (No '/', so a name is one file.)
void check_model_name(const std::string& name);
bool is_valid_model_name(const std::string& name);
// Turns arbitrary text (a file name, a repo) into a valid model name: lowercased, other characters
// replaced by '-'.
std::string sanitize_model_name(const std::string& text);

// An exclusive advisory lock (flock) on a file; released by the destructor or when the process
// dies, so a killed pull never leaves a stale lock.
class FileLock {
 public:
  // Blocks until the lock is held. `waiting` is logged once when another process holds it.
  explicit FileLock(const std::string& path, const std::string& waiting = "");
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  // Takes the lock only when it is free; held() tells whether it did.
  static FileLock try_lock(const std::string& path);
  bool held() const { return fd_ >= 0; }

 private:
  FileLock() = default;
  int fd_ = -1;
};

// A download an interrupted pull left in tmp/ (resumed by pulling the same source again).
struct PartialDownload {
  std::string path;
  uint64_t size = 0;
  bool in_progress = false;  // a pull is writing it right now
};

// Detected container format of a model file from its first bytes: "gguf", "ggml" (whisper.cpp's
// 'lmgg' magic), "safetensors", or "" when none matches. `size` is the file's total size.
std::string detect_model_format(const uint8_t* head, size_t n, uint64_t size);
std::string detect_model_format_file(const std::string& path);

// Architecture and quant of a model file (from GGUF metadata; empty for other formats).
struct ModelFileInfo {
  std::string format, architecture, quant;
};
ModelFileInfo read_model_file_info(const std::string& path);

class Store {
 public:
  explicit Store(std::string root = store_root());
  const std::string& root() const { return root_; }

  std::string blob_path(const std::string& digest) const;    // checks the digest
  std::string manifest_path(const std::string& name) const;  // checks the name
  std::string tmp_dir() const { return root_ + "/tmp"; }
  std::string lock_path(const std::string& key) const;  // key: [a-z0-9-]+
  // Creates blobs/, manifests/, tmp/ and locks/ when missing.
  void ensure_layout() const;

  // All valid manifests, sorted by name. Malformed manifests are skipped with a warning.
  std::vector<StoreEntry> list() const;
  std::optional<StoreEntry> find(const std::string& name) const;
  // Reads one manifest; throws Error when it is missing or malformed.
  StoreEntry get(const std::string& name) const;
  // The file holding the model's bytes (the blob, or the validated external reference).
  std::string model_file(const StoreEntry& entry) const;

  // Writes a manifest atomically (temporary file + rename) under the store lock.
  void put(const StoreEntry& entry) const;
  void touch(const std::string& name) const;  // sets last_used to now
  // Removes the manifest; the blob too when no other manifest refers to it. Returns whether the
  // blob was removed.
  bool remove(const std::string& name) const;

  // Registers `entry` under the store lock, so a concurrent rm never deletes a blob that is being
  // registered: moves `file` (when given; a complete, verified file on the store's filesystem)
  // into blobs/ as entry.digest (dropping it when that blob exists), fills size, format,
  // architecture and quant from the bytes, and writes the manifest. `owned`: the file is the
  // store's own (a download or a copy), so the blob is made read-only.
  StoreEntry add(StoreEntry entry, const std::string& file = "", bool owned = true) const;

  // Registers a file already on disk: hashes it, hard-links it into blobs/ (copying when the
  // filesystems differ, or referencing it in place when `allow_reference` and it lies in another
  // tool's cache), reads its metadata and writes the manifest. `source` is recorded (default:
  // the path). Returns the entry.
  StoreEntry import_file(const std::string& path, const std::string& name,
                         bool allow_reference = false, const std::string& source = "") const;

  // The entry for `name`, or for a bare name with a single tagged match ("phi-3-mini" for
  // "phi-3-mini:Q4_K_M"); throws Error listing close names otherwise.
  StoreEntry resolve(const std::string& name) const;

  // Partial downloads in tmp/, and removing those no pull is writing (returns bytes freed).
  std::vector<PartialDownload> partial_downloads() const;
  uint64_t remove_partial_downloads() const;

  // Store names closest to `query` (edit distance, substrings), best first.
  std::vector<std::string> close_names(const std::string& query, size_t max = 5) const;

 private:
  void write_manifest(const StoreEntry& entry) const;  // caller holds the store lock
  std::string root_;
};

// For `-m MODEL`: a path that exists wins; else a store name (also a bare name with a single
// tagged match, "phi-3-mini" for "phi-3-mini:Q4_K_M"), whose last-used time is updated; else an
// Error listing close names.
std::string resolve_model_path(const std::string& name_or_path);

// Formats unix seconds as "2026-11-24 05:22" (local time), "-" for 0; and as "3 hours ago".
std::string format_time(int64_t unix_seconds);
std::string format_age(int64_t unix_seconds);
int64_t now_unix();

}  // namespace eight

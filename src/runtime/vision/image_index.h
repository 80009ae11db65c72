#pragma once
// An image index for `eight index` / `eight search`: one normalized embedding per image file, the
// files' paths (relative to the indexed folder), sizes and modification times (so a rebuild only
// embeds new or changed files), and which model made the embeddings (so a search embeds its query
// with the same model).
//
// File format (little endian), written to a temporary file and renamed into place:
//   bytes 0..7    magic "EIGHTIDX"
//   8..11         u32 version (1)
//   12..15        u32 dim: embedding width
//   16..23        u64 count: number of images
//   24..31        u64 meta_bytes: length of the JSON that follows
//   32..          JSON: {"model": name, "model_path": path, "root": folder (absolute),
//                        "files": [{"path": relative path, "size": bytes, "mtime_ns": ns}, ...],
//                        "skipped": [same, for files that could not be read]}
//                 ("files" has count entries, in row order; "skipped" may be absent)
//   then zero padding to a multiple of 64 bytes, then float32 [count, dim] embeddings, row-major,
//   each row L2-normalized.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::image_index {

struct FileInfo {
  std::string path;  // relative to Index::root
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileInfo&) const = default;
};

struct Index {
  std::string model;       // the model's name (Model::name())
  std::string model_path;  // what it was loaded from, for `eight search` without -m
  std::string root;        // the indexed folder
  int dim = 0;
  std::vector<FileInfo> files;
  std::vector<FileInfo> skipped;  // unreadable images, not retried until they change
  Tensor embeddings;              // F32 [files.size(), dim] (undefined when empty)
};

void save(const Index& index, const std::string& path);
// Throws Error naming the file and what is wrong (bad magic, version, sizes, truncated data). The
// embeddings are a read-only view of the file mapping (nothing copied).
Index load(const std::string& path);
// The same from bytes in memory (copies the embeddings); `name` is used in messages.
Index parse(const uint8_t* bytes, size_t size, const std::string& name);

// Image files under `root` (recursively; .jpg .jpeg .png .webp .bmp .gif, any case), sorted by
// path, with their sizes and modification times. Unreadable folders are skipped.
std::vector<FileInfo> scan_images(const std::string& root);

struct Hit {
  int64_t row = 0;
  float score = 0;  // cosine similarity (rows and queries are normalized)
};

// The k rows of `embeddings` (F32 [n, dim]) closest to each query (F32 [q, dim]) by dot product,
// best first: one scan of the matrix for all queries (ops::matmul for up to 3 queries; from 4, an
// AVX-512 kernel blocking 4 rows × 4 queries when the CPU has it and dim is a multiple of 16),
// then a per-chunk partial sort merged across threads. Result [q][min(k, n)].
std::vector<std::vector<Hit>> search(const Tensor& embeddings, const Tensor& queries, int k,
                                     ThreadPool& pool);

}  // namespace eight::image_index

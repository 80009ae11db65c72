#include "runtime/vision/image_index.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <sys/stat.h>

#include <immintrin.h>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/storage.h"
#include "ops/matmul.h"

namespace eight::image_index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kMagic[8] = {'E', 'I', 'G', 'H', 'T', 'I', 'D', 'X'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 32;
constexpr uint32_t kMaxDim = 1 << 16;

uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint32_t read_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
}

size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" ||
         ext == ".gif";
}

// One chunk's best k, kept as a min-heap on score (ties: the lower row wins, so results do not
// depend on how the rows were chunked).
bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.row < b.row);
}

void top_k(const float* scores, int64_t begin, int64_t end, int k, std::vector<Hit>* out) {
  std::vector<Hit>& heap = *out;
  heap.clear();
  for (int64_t r = begin; r < end; ++r) {
    const Hit h{r, scores[r]};
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back(h);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better(h, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = h;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
}

// scores[j, r] = queries[j] · rows[r] for 4 rows x[0..3] and QB queries y[0..QB): 4·QB
// accumulators, so each 64-byte row load feeds QB FMAs and each query load 4.
template <int QB>
__attribute__((target("avx512f"))) inline void dot_block(const float* const* x,
                                                         const float* const* y, int64_t d,
                                                         __m512 (&acc)[4][4]) {
  for (auto& a : acc)
    for (auto& v : a) v = _mm512_setzero_ps();
  for (int64_t c = 0; c < d; c += 16) {
    const __m512 x0 = _mm512_loadu_ps(x[0] + c), x1 = _mm512_loadu_ps(x[1] + c);
    const __m512 x2 = _mm512_loadu_ps(x[2] + c), x3 = _mm512_loadu_ps(x[3] + c);
    for (int j = 0; j < QB; ++j) {
      const __m512 v = _mm512_loadu_ps(y[j] + c);
      acc[0][j] = _mm512_fmadd_ps(x0, v, acc[0][j]);
      acc[1][j] = _mm512_fmadd_ps(x1, v, acc[1][j]);
      acc[2][j] = _mm512_fmadd_ps(x2, v, acc[2][j]);
      acc[3][j] = _mm512_fmadd_ps(x3, v, acc[3][j]);
    }
  }
}

// scores[j, r] = queries[j] · rows[r] for r in [r0, r1): blocks of 4 rows, their queries 4 at a
// time (then one at a time for the rest), the 4 rows staying in L1 across query blocks so each
// row is read from memory once per scan. d must be a multiple of 16. Compiled for AVX-512 here
// (the runtime layer is built for the baseline ISA) and chosen at run time.
__attribute__((target("avx512f"))) void scan_avx512(const float* rows, const float* queries,
                                                    int64_t d, int64_t q, int64_t r0, int64_t r1,
                                                    int64_t n, float* scores) {
  __m512 acc[4][4];
  alignas(64) float lanes[16];
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t nr = std::min<int64_t>(4, r1 - r);
    const float* x[4];
    for (int i = 0; i < 4; ++i) x[i] = rows + (r + std::min<int64_t>(i, nr - 1)) * d;
    for (int64_t j0 = 0; j0 < q;) {
      const int64_t nq = q - j0 >= 4 ? 4 : 1;
      const float* y[4] = {};
      for (int64_t j = 0; j < nq; ++j) y[j] = queries + (j0 + j) * d;
      if (nq == 4)
        dot_block<4>(x, y, d, acc);
      else
        dot_block<1>(x, y, d, acc);
      // Horizontal sums through memory (GCC 12 warns falsely inside _mm512_reduce_add_ps).
      for (int64_t i = 0; i < nr; ++i)
        for (int64_t j = 0; j < nq; ++j) {
          _mm512_store_ps(lanes, acc[i][j]);
          float sum = 0;
          for (float v : lanes) sum += v;
          scores[(j0 + j) * n + r + i] = sum;
        }
      j0 += nq;
    }
  }
}

// scores [q, n]. One to three queries are a memory-bound matrix-vector product (ops::matmul's
// kernels stream the rows at full bandwidth); from four on, the register-blocked AVX-512 scan,
// where the CPU has it and d suits it, does 4× fewer loads per FMA than separate products.
Tensor all_scores(const Tensor& embeddings, const Tensor& queries, ThreadPool& pool) {
  const int64_t n = embeddings.size(0), d = embeddings.size(1), q = queries.size(0);
  if (q < 4 || active_isa() != ISA::AVX512 || d % 16 != 0 || embeddings.dtype() != DType::F32 ||
      queries.dtype() != DType::F32)
    return ops::matmul(queries, embeddings, pool);
  const Tensor e = embeddings.contiguous(), x = queries.contiguous();
  Tensor scores = Tensor::empty({q, n}, DType::F32);
  constexpr int64_t kRows = 1024;  // rows per task
  pool.parallel_for((n + kRows - 1) / kRows, [&](int64_t task, int) {
    scan_avx512(e.data<const float>(), x.data<const float>(), d, q, task * kRows,
                std::min(n, (task + 1) * kRows), n, scores.data<float>());
  });
  return scores;
}

}  // namespace

void save(const Index& index, const std::string& path) {
  const int64_t n = static_cast<int64_t>(index.files.size());
  check(index.dim > 0 && static_cast<uint32_t>(index.dim) <= kMaxDim, "[image_index] dim ",
        index.dim, " is out of range");
  if (n > 0)
    check(index.embeddings.defined() && index.embeddings.dtype() == DType::F32 &&
              index.embeddings.is_contiguous() && index.embeddings.dim() == 2 &&
              index.embeddings.size(0) == n && index.embeddings.size(1) == index.dim,
          "[image_index] embeddings must be F32 [", n, ", ", index.dim, "], got ",
          index.embeddings.defined() ? index.embeddings.str() : "none");
  auto list = [](const std::vector<FileInfo>& v) {
    json a = json::array();
    for (const FileInfo& f : v)
      a.push_back({{"path", f.path}, {"size", f.size}, {"mtime_ns", f.mtime_ns}});
    return a;
  };
  const std::string meta = json{
      {"model", index.model},
      {"model_path", index.model_path},
      {"root", index.root},
      {"files", list(index.files)},
      {"skipped",
       list(index.skipped)}}.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string head(kMagic, kMagic + 8);
  put_u32(head, kVersion);
  put_u32(head, static_cast<uint32_t>(index.dim));
  put_u64(head, static_cast<uint64_t>(n));
  put_u64(head, meta.size());
  head += meta;
  head.resize(align64(head.size()), '\0');

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), "[image_index] cannot write '", tmp, "'");
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    if (n > 0)
      out.write(static_cast<const char*>(index.embeddings.raw()),
                static_cast<std::streamsize>(n * index.dim * 4));
    out.flush();
    check(out.good(), "[image_index] writing '", tmp, "' failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  check(!ec, "[image_index] cannot rename '", tmp, "' to '", path, "': ", ec.message());
}

namespace {

// Everything but the embeddings; *data_at receives where they start.
Index parse_header(const uint8_t* b, size_t size, const std::string& name, size_t* data_at_out) {
  check(size >= kHeader, "[image_index] '", name, "' is ", size,
        " bytes, too short for the 32-byte header");
  check(std::memcmp(b, kMagic, 8) == 0, "[image_index] '", name,
        "' is not an eight image index (bad magic)");
  const uint32_t version = read_u32(b + 8), dim = read_u32(b + 12);
  const uint64_t count = read_u64(b + 16), meta_bytes = read_u64(b + 24);
  check(version == kVersion, "[image_index] '", name, "' has version ", version,
        "; this eight reads version ", kVersion);
  check(dim >= 1 && dim <= kMaxDim, "[image_index] '", name, "' has dim ", dim, " (must be 1..",
        kMaxDim, ")");
  check(meta_bytes <= size - kHeader, "[image_index] '", name, "' says its metadata is ",
        meta_bytes, " bytes but only ", size - kHeader, " follow the header");
  const size_t data_at = align64(kHeader + meta_bytes);
  const uint64_t row_bytes = uint64_t{dim} * 4;
  check(data_at <= size && count <= (size - data_at) / row_bytes &&
            data_at + count * row_bytes == size,
        "[image_index] '", name, "' holds ", count, " embeddings of ", dim, " floats from byte ",
        data_at, ", which does not match its size of ", size, " bytes");
  json meta;
  try {
    meta = json::parse(b + kHeader, b + kHeader + meta_bytes);
  } catch (const json::exception& e) {
    fail("[image_index] '", name, "' has malformed metadata: ", e.what());
  }
  Index index;
  index.dim = static_cast<int>(dim);
  try {
    index.model = meta.at("model").get<std::string>();
    index.model_path = meta.at("model_path").get<std::string>();
    index.root = meta.at("root").get<std::string>();
    const json& files = meta.at("files");
    check(files.is_array() && files.size() == count, "[image_index] '", name, "' lists ",
          files.is_array() ? files.size() : 0, " files for ", count, " embeddings");
    index.files.reserve(count);
    auto entry = [](const json& f) {
      return FileInfo{f.at("path").get<std::string>(), f.at("size").get<int64_t>(),
                      f.at("mtime_ns").get<int64_t>()};
    };
    for (const json& f : files) index.files.push_back(entry(f));
    if (meta.contains("skipped"))
      for (const json& f : meta.at("skipped")) index.skipped.push_back(entry(f));
  } catch (const json::exception& e) {
    fail("[image_index] '", name, "' has malformed metadata: ", e.what());
  }
  *data_at_out = data_at;
  return index;
}

}  // namespace

Index parse(const uint8_t* b, size_t size, const std::string& name) {
  size_t data_at = 0;
  Index index = parse_header(b, size, name, &data_at);
  const auto n = static_cast<int64_t>(index.files.size());
  if (n > 0) {
    index.embeddings = Tensor::empty({n, index.dim}, DType::F32);
    std::memcpy(index.embeddings.raw(), b + data_at, index.embeddings.nbytes());
  }
  return index;
}

Index load(const std::string& path) {
  // The embeddings stay in the file mapping (64-byte aligned there): a million-image index is
  // searched without first copying its 3 GB.
  auto file = std::make_shared<MappedFile>(path);
  size_t data_at = 0;
  Index index = parse_header(file->bytes(), file->size(), path, &data_at);
  const auto n = static_cast<int64_t>(index.files.size());
  if (n > 0) index.embeddings = Tensor::from_storage(file, data_at, {n, index.dim}, DType::F32);
  return index;
}

std::vector<FileInfo> scan_images(const std::string& root) {
  std::error_code ec;
  check(fs::is_directory(root, ec), "[image_index] '", root, "' is not a folder");
  std::vector<FileInfo> out;
  const auto opts = fs::directory_options::skip_permission_denied;
  for (auto it = fs::recursive_directory_iterator(root, opts, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2) || !is_image_name(it->path())) continue;
    // stat() for the modification time: unix nanoseconds, whatever epoch file_clock uses.
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) continue;
    out.push_back({fs::relative(it->path(), root, e2).generic_string(),
                   static_cast<int64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  }
  check(!ec, "[image_index] cannot list '", root, "': ", ec.message());
  std::sort(out.begin(), out.end(),
            [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
  return out;
}

std::vector<std::vector<Hit>> search(const Tensor& embeddings, const Tensor& queries, int k,
                                     ThreadPool& pool) {
  check(embeddings.dim() == 2 && queries.dim() == 2 && embeddings.size(1) == queries.size(1),
        "[image_index.search] embeddings ", embeddings.str(), " and queries ", queries.str(),
        " must be [n, d] and [q, d]");
  check(k >= 1, "[image_index.search] k must be at least 1, got ", k);
  const int64_t n = embeddings.size(0), q = queries.size(0);
  std::vector<std::vector<Hit>> result(static_cast<size_t>(q));
  if (n == 0 || q == 0) return result;
  // scores [q, n]: one pass over the embeddings serves every query.
  const Tensor scores = all_scores(embeddings, queries, pool);
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int kk = static_cast<int>(std::min<int64_t>(k, n));
  std::vector<std::vector<Hit>> partial(static_cast<size_t>(q * chunks));
  pool.parallel_for(q * chunks, [&](int64_t task, int) {
    const int64_t qi = task / chunks, c = task % chunks;
    top_k(scores.data<const float>() + qi * n, c * kChunk, std::min(n, (c + 1) * kChunk), kk,
          &partial[static_cast<size_t>(task)]);
  });
  for (int64_t qi = 0; qi < q; ++qi) {
    std::vector<Hit>& all = result[static_cast<size_t>(qi)];
    for (int64_t c = 0; c < chunks; ++c) {
      auto& p = partial[static_cast<size_t>(qi * chunks + c)];
      all.insert(all.end(), p.begin(), p.end());
    }
    std::partial_sort(all.begin(), all.begin() + kk, all.end(), better);
    all.resize(static_cast<size_t>(kk));
  }
  return result;
}

}  // namespace eight::image_index

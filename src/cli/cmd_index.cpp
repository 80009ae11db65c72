// `eight index -m CLIP DIR -o INDEX`: embeds every image under DIR into an index file for
// `eight search`. Incremental: files whose size and modification time are unchanged keep their
// embedding, new or changed files are embedded, removed files are dropped. Unreadable images are
// reported and skipped. The index is saved every few hundred images, so an interrupted run loses
// little.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

#include "cli/clip_common.h"
#include "cli/llm_common.h"
#include "core/error.h"
#include "runtime/vision/image_index.h"

namespace eight::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A one-line progress bar on stderr (a terminal) or a line every 10% (a log file).
class Progress {
 public:
  explicit Progress(size_t total) : total_(total), tty_(::isatty(2) != 0), t0_(Clock::now()) {}
  void update(size_t done) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    if (!tty_) {
      const size_t tenth = total_ >= 10 ? total_ / 10 : 1;
      if (done != total_ && done % tenth != 0) return;
      std::fprintf(stderr, "eight index: %zu/%zu images (%.1f/s)\n", done, total_, rate);
      return;
    }
    constexpr int kWidth = 30;
    const int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
    char bar[kWidth + 1];
    for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
    bar[kWidth] = 0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
    std::fprintf(stderr, "\r[%s] %zu/%zu images  %.1f/s  ETA %dm%02ds ", bar, done, total_, rate,
                 static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    if (done == total_) std::fprintf(stderr, "\n");
  }

 private:
  size_t total_;
  bool tty_;
  Clock::time_point t0_;
};

int run(int argc, char** argv) {
  ArgParser p("index", "-m CLIP DIR -o INDEX",
              "Build or update an image index of every image under DIR (JPEG, PNG, WebP, BMP, "
              "GIF) for `eight search`.");
  ClipArgs clip_args;
  std::string out;
  clip_args.add_to(p);
  p.option("-o,--output", &out, "INDEX", "index file to create or update (required)");
  p.positional_count(1, 1);
  p.epilog(
      "Only new or changed files (by size and modification time) are embedded again; files no\n"
      "longer under DIR are dropped. The file format is described in "
      "src/runtime/vision/image_index.h.\n\n"
      "example:\n  eight index -m openai/clip-vit-large-patch14 ~/Pictures -o pictures.idx");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(!out.empty(), "an output index is required (-o INDEX)");
  const std::string root = fs::absolute(p.positionals()[0]).lexically_normal().string();
  const std::vector<image_index::FileInfo> files = image_index::scan_images(root);

  const std::string model_path = fs::absolute(clip_args.resolve()).string();
  const auto model = clip_args.load();
  const int dim = model->config().projection_dim;

  // What the old index already knows, by relative path.
  std::map<std::string, std::pair<image_index::FileInfo, int64_t>> known;
  image_index::Index old;
  std::error_code ec;
  if (fs::exists(out, ec)) {
    old = image_index::load(out);
    check(old.model == model->name() && old.dim == dim, "[index] '", out, "' was built with ",
          old.model, " (", old.dim, "-d); this run uses ", model->name(), " (", dim,
          "-d). Use that model or write a new index.");
    for (size_t i = 0; i < old.files.size(); ++i)
      known[old.files[i].path] = {old.files[i], static_cast<int64_t>(i)};
  }
  // An index of another folder is rebuilt from scratch (its relative paths mean other files).
  if (old.root != root) known.clear();
  std::vector<image_index::FileInfo> keep, todo, still_unreadable;
  std::vector<int64_t> keep_rows;
  std::map<std::string, bool> present;
  std::map<std::string, image_index::FileInfo> skipped_before;
  if (old.root == root)
    for (const auto& f : old.skipped) skipped_before[f.path] = f;
  for (const auto& f : files) {
    present[f.path] = true;
    const auto it = known.find(f.path);
    const auto sk = skipped_before.find(f.path);
    if (it != known.end() && it->second.first == f) {
      keep.push_back(f);
      keep_rows.push_back(it->second.second);
    } else if (sk != skipped_before.end() && sk->second == f) {
      still_unreadable.push_back(f);  // failed before and unchanged: not retried
    } else {
      todo.push_back(f);
    }
  }
  size_t removed = 0;
  for (const auto& f : old.files) removed += present.count(f.path) ? 0 : 1;
  std::fprintf(stderr,
               "eight index: %zu images under %s: %zu unchanged, %zu to embed, %zu removed, %zu "
               "unreadable before and unchanged\n",
               files.size(), root.c_str(), keep.size(), todo.size(), removed,
               still_unreadable.size());

  image_index::Index index{.model = model->name(),
                           .model_path = model_path,
                           .root = root,
                           .dim = dim,
                           .files = keep,
                           .skipped = still_unreadable,
                           .embeddings = {}};
  // All rows the index can end up with: kept rows first, new rows appended as they come.
  const Tensor rows = Tensor::empty(
      {std::max<int64_t>(1, static_cast<int64_t>(keep.size() + todo.size())), dim}, DType::F32);
  for (size_t i = 0; i < keep_rows.size(); ++i)
    std::memcpy(rows.data<float>() + i * dim,
                old.embeddings.data<const float>() + keep_rows[i] * dim,
                static_cast<size_t>(dim) * sizeof(float));
  auto save = [&] {
    index.embeddings = rows.slice(0, 0, static_cast<int64_t>(index.files.size()));
    image_index::save(index, out);
  };

  install_interrupt_handler();
  Progress progress(todo.size());
  ThreadPool& pool = clip_args.pool();
  size_t done = 0, failed = 0;
  constexpr size_t kSaveEvery = 256;
  for (size_t start = 0; start < todo.size() && !interrupted(); start += kSaveEvery) {
    const size_t end = std::min(todo.size(), start + kSaveEvery);
    std::vector<std::string> paths;
    for (size_t i = start; i < end; ++i) paths.push_back(root + "/" + todo[i].path);
    std::vector<bool> ok;
    const Tensor emb = embed_image_files(
        *model, paths, clip_args.batch, pool, &ok,
        [&](const std::string&, const std::string& msg) {
          std::fprintf(stderr, "%seight index: skipped: %s\n", ::isatty(2) ? "\n" : "",
                       msg.c_str());
          ++failed;
        },
        [&](size_t) { progress.update(++done); });
    int64_t r = 0;
    for (size_t i = start; i < end; ++i) {
      if (!ok[i - start]) {
        index.skipped.push_back(todo[i]);
        continue;
      }
      std::memcpy(rows.data<float>() + index.files.size() * dim, emb.data<const float>() + r * dim,
                  static_cast<size_t>(dim) * sizeof(float));
      index.files.push_back(todo[i]);
      ++r;
    }
    save();
  }
  if (todo.empty()) save();
  if (interrupted())
    std::fprintf(stderr, "\neight index: interrupted; %zu images saved, run again to continue\n",
                 index.files.size());
  std::printf("%s: %zu images (%zu embedded now, %zu skipped as unreadable), model %s, %d-d\n",
              out.c_str(), index.files.size(), todo.size() - failed, failed, model->name().c_str(),
              dim);
  return interrupted() ? 130 : 0;
}

const Registration reg({.name = "index",
                        .summary = "build or update a CLIP image index of a folder",
                        .run = run,
                        .order = 52});

}  // namespace
}  // namespace eight::cli

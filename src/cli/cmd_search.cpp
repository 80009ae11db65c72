// `eight search INDEX (--text QUERY | --image FILE) [-k 10]`: the images of an index closest to a
// text or an example image, by cosine similarity (a brute-force SIMD scan of every embedding).
// The query is embedded with the model that built the index (or -m, which must be that model).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/clip_common.h"
#include "core/error.h"
#include "formats/image.h"
#include "runtime/vision/image_index.h"

namespace eight::cli {
namespace {

int run(int argc, char** argv) {
  ArgParser p("search", "INDEX (--text QUERY | --image FILE)",
              "Find the images of an index (from `eight index`) closest to a text or an image.");
  ClipArgs clip_args;
  std::string text, image_path;
  int k = 10;
  bool json = false;
  clip_args.add_to(p, /*model_required=*/false);
  p.option("--text", &text, "QUERY", "search by a text description");
  p.option("--image", &image_path, "FILE", "search by an example image");
  p.option("-k,--top", &k, "K", "results to show (default 10)");
  p.flag("--json", &json, "print [{\"path\", \"score\"}] best first");
  p.positional_count(1, 1);
  p.epilog("example:\n  eight search pictures.idx --text \"a dog on a beach\" -k 5");
  if (auto rc = p.parse(argc, argv)) return *rc;
  check(text.empty() != image_path.empty(), "give exactly one of --text QUERY and --image FILE");
  check(k >= 1, "-k must be at least 1, got ", k);
  const image_index::Index index = image_index::load(p.positionals()[0]);
  if (clip_args.model.empty()) {
    check(!index.model_path.empty(),
          "[search] the index does not say which model built it: pass -m");
    clip_args.model = index.model_path;
  }
  const auto model = clip_args.load();
  check(model->name() == index.model && model->config().projection_dim == index.dim, "[search] '",
        p.positionals()[0], "' was built with ", index.model, " (", index.dim,
        "-d) but the query model is ", model->name(), " (", model->config().projection_dim,
        "-d): embeddings of different models cannot be compared");
  ThreadPool& pool = clip_args.pool();
  const Tensor query =
      text.empty() ? model->embed_image_file(image_path, pool) : model->embed_texts({text}, pool);
  const auto t0 = std::chrono::steady_clock::now();
  const auto hits =
      index.files.empty()
          ? std::vector<image_index::Hit>()
          : image_index::search(index.embeddings, query.reshape({1, index.dim}), k, pool)[0];
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto full_path = [&](const image_index::Hit& h) {
    return (std::filesystem::path(index.root) / index.files[static_cast<size_t>(h.row)].path)
        .string();
  };
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& h : hits) arr.push_back({{"path", full_path(h)}, {"score", h.score}});
    std::printf("%s\n", arr.dump(2).c_str());
    return 0;
  }
  for (const auto& h : hits) std::printf("%.4f  %s\n", h.score, full_path(h).c_str());
  std::fprintf(stderr, "eight search: %zu images scanned in %.1f ms\n", index.files.size(), ms);
  return 0;
}

const Registration reg({.name = "search",
                        .summary = "search a CLIP image index by text or by image",
                        .run = run,
                        .order = 53});

}  // namespace
}  // namespace eight::cli

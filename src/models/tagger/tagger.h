#pragma once
// Image taggers: models that map one image to an independent probability per tag (a sigmoid per
// output, not a softmax), with each tag's name and category. SmilingWolf's WD v3 taggers (timm
// ViT / ConvNeXt / SwinV2 with selected_tags.csv, wd_tagger.cpp) and DeepBooru register here; the
// `eight tag` command, the server's /v1/tags and runtime/vision/tags.h see only this interface.
//
//   const auto model = tagger::open("wd-vit-tagger-v3/");   // a directory or file, any format
//   const Tensor px = model->preprocess(image::load("a.png"));   // the model's own input layout
//   const Tensor p = model->predict(px.unsqueeze(0), pool);      // F32 [1, tags().size()]
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/image.h"

namespace eight::tagger {

// The codes of selected_tags.csv's `category` column (Danbooru's tag categories); DeepBooru's
// `rating:*` tags are Rating too.
enum class Category { General = 0, Character = 4, Rating = 9 };

struct Tag {
  std::string name;  // as the model's tag list writes it: "long_hair", "rating:safe", "general"
  Category category = Category::General;
};

// What tagging costs in memory, from the model's shapes, for the planner and the budget check
// (runtime/plan/tagger.h adds them up). The figures are what the code allocates, not bounds
// with slack: tests/runtime/test_planner_tagger.cpp holds them within 5 % of the tracked peak.
struct MemoryEstimate {
  int64_t weight_bytes = 0;      // the file mapping plus the loader's own copies, resident
  int64_t input_bytes = 0;       // one batch of preprocessed images, stacked (tag_images)
  int64_t activation_bytes = 0;  // predict()'s peak above its input, kernel scratch apart
  int64_t scratch_bytes = 0;     // the kernels' per-thread scratch over a pass, all threads
  int64_t preprocess_bytes = 0;  // decoding and preprocessing one image of the given size
};

class Tagger {
 public:
  virtual ~Tagger() = default;

  virtual std::string name() const = 0;          // the model's directory or file name
  virtual std::string architecture() const = 0;  // e.g. "vit_base_patch16_224", "deepbooru"
  virtual const std::vector<Tag>& tags() const = 0;

  // The model's preprocessing of a decoded RGB image (padding, resizing, channel order, scaling):
  // one image's input tensor, F32, always of the same shape for a given model, so images stack
  // into a batch along a new first dimension.
  virtual Tensor preprocess(const image::Image& img) const = 0;
  // pixels: F32 [n, ...preprocess() shape] → probabilities F32 [n, tags().size()] in 0..1.
  // Safe to call from one thread at a time per pool.
  virtual Tensor predict(const Tensor& pixels, ThreadPool& pool) const = 0;

  // For `batch` images per predict() on `n_threads` threads, the images decoded at up to
  // image_width x image_height pixels (0: the model's input size).
  virtual MemoryEstimate memory(int64_t batch, int n_threads, int64_t image_width,
                                int64_t image_height) const = 0;
};

// A tagger file format: `recognizes` looks at a path cheaply (names, headers) and says whether
// `open` should take it; `open` throws Error naming what is missing or malformed.
struct Format {
  std::string name;  // "wd-timm", "deepbooru"
  std::string what;  // one line for errors and --help: what files it reads
  std::function<bool(const std::string& path)> recognizes;
  std::function<std::shared_ptr<const Tagger>(const std::string& path)> open;
};

// Called from a static initializer in each format's own file.
void register_format(Format format);
const std::vector<Format>& formats();

// Opens `path` with the first registered format that recognizes it. Throws Error listing the
// formats (and what each reads) when none does.
std::shared_ptr<const Tagger> open(const std::string& path);

// The tag list of a WD tagger: selected_tags.csv text (header tag_id,name,category,count, in the
// order of the head's outputs; fields may be quoted as RFC 4180 writes them). Throws Error naming
// `source`, the line and the problem for a missing column, a bad category or an empty list.
std::vector<Tag> parse_selected_tags(const std::string& csv_text, const std::string& source);

}  // namespace eight::tagger

// DeepBooru as an `eight tag` model: A1111's model-resnet_custom_v3.pt read through the safe
// PyTorch reader (a dict of the 179 convolutions' tensors and a `tags` list of strings). Tags
// named "rating:*" are the Rating category (reported apart, as A1111 leaves them out of the
// prompt); the file carries no other categories, so every other tag is General.
#include <filesystem>

#include "core/error.h"
#include "models/deepbooru/deepbooru.h"
#include "models/registry.h"
#include "models/tagger/tagger.h"

namespace eight::deepbooru {
namespace {

class DeepBooruTagger final : public tagger::Tagger {
 public:
  explicit DeepBooruTagger(const std::string& path)
      : path_(path),
        name_(std::filesystem::path(path).filename().string()),
        ck_(torch::Checkpoint::open(path)) {
    std::vector<std::string> names;
    net_ = Network::from_checkpoint(ck_, name_, &names);
    for (std::string& n : names) {
      const bool rating = n.rfind("rating:", 0) == 0;
      tags_.push_back(
          {std::move(n), rating ? tagger::Category::Rating : tagger::Category::General});
    }
  }

  std::string name() const override { return name_; }
  std::string architecture() const override { return "deepbooru"; }
  const std::vector<tagger::Tag>& tags() const override { return tags_; }
  Tensor preprocess(const image::Image& img) const override { return deepbooru::preprocess(img); }
  Tensor predict(const Tensor& pixels, ThreadPool& pool) const override {
    return net_.forward(pixels, pool);
  }
  tagger::MemoryEstimate memory(int64_t batch, int n_threads, int64_t image_width,
                                int64_t image_height) const override {
    const int64_t S = kInputSize;
    tagger::MemoryEstimate m;
    m.weight_bytes = static_cast<int64_t>(std::filesystem::file_size(path_)) + net_.copied_bytes();
    m.input_bytes = 4 * batch * S * S * 3;
    // Images in a batch run one after another: only the output rows grow with it.
    m.activation_bytes = net_.activation_bytes(S) + 4 * batch * net_.n_tags();
    cpu::ScratchPeak scratch;
    net_.add_scratch(scratch, S);
    m.scratch_bytes = scratch.bytes(n_threads);
    // preprocess(): the decoded image, its Lanczos resize into the square, the canvas, the
    // stretched border bands and the f32 input.
    const int64_t w = image_width > 0 ? image_width : S, h = image_height > 0 ? image_height : S;
    m.preprocess_bytes = image::decode_bytes(w, h) + 3 * S * S * 3 + 4 * 3 * S * S;
    return m;
  }

 private:
  std::string path_, name_;
  torch::Checkpoint ck_;
  std::vector<tagger::Tag> tags_;
  Network net_;
};

// A PyTorch checkpoint file: DeepBooru is the only tagger that comes as one; open() says clearly
// when such a file is not DeepBooru's.
bool is_torch_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) && torch::looks_like_checkpoint(path);
}

const bool registered = [] {
  register_architecture({.name = "deepbooru",
                         .family = "vision",
                         .summary = "DeepBooru (DeepDanbooru resnet_custom_v3) image tagger, "
                                    "AUTOMATIC1111's model-resnet_custom_v3.pt"});
  tagger::register_format(
      {.name = "deepbooru",
       .what = "DeepBooru's model-resnet_custom_v3.pt (A1111's PyTorch state dict with 'tags')",
       .recognizes = is_torch_file,
       .open = [](const std::string& path) -> std::shared_ptr<const tagger::Tagger> {
         return std::make_shared<DeepBooruTagger>(path);
       }});
  return true;
}();

}  // namespace

}  // namespace eight::deepbooru

#pragma once
// DeepBooru: DeepDanbooru's resnet_custom_v3 as AUTOMATIC1111 runs it (modules/deepbooru_model.py,
// weights model-resnet_custom_v3.pt: a state dict of 179 convolutions n_Conv_0 .. n_Conv_178 with
// batch norms already folded into their biases, plus a `tags` list of 9176 Danbooru tags).
//
// The network: NHWC input in 0..1; a 7x7/2 stem with TensorFlow's "same" padding (2 before, 3
// after), ReLU, a 3x3/2 max pool (one -inf column and row after); 3 + 8 + 40 + 3 + 3 bottleneck
// blocks (1x1 reduce, 3x3, 1x1 expand, each with ReLU but the last, residual add, ReLU) where the
// first block of each stage, and the 21st of the third, has a 1x1 projection beside a strided
// 3x3 main path (padded one after, TensorFlow-style); a final bias-free 1x1 conv to one channel
// per tag, global average pooling and a sigmoid. Channel widths are read from the tensors, so a
// narrower network of the same topology (the test fixture) loads too.
//
// Runs channels last throughout on ops::conv2d_nhwc: 1x1 convolutions are plain products and
// nothing is transposed between layers.
//
//   const auto net = deepbooru::Network::load(names, lookup, tags.size(), "model.pt");
//   const Tensor x = deepbooru::preprocess(image::load("a.png"));   // [512, 512, 3]
//   const Tensor p = net.forward(x.unsqueeze(0), pool);              // [1, n_tags]
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/scratch_peak.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "formats/image.h"
#include "formats/torch_checkpoint.h"
#include "ops/conv.h"

namespace eight::deepbooru {

inline constexpr int kInputSize = 512;  // A1111 resizes every image to 512 x 512
inline constexpr int kConvCount = 179;

struct Conv {
  ops::Conv2dWeight w;
  Tensor bias;  // [C_out] f32; undefined for the final convolution
};

struct Block {
  Conv reduce, spatial, expand;
  Conv proj;  // undefined w for identity blocks
  int64_t stride = 1;
};

class Network {
 public:
  // `names`: every tensor name of the state dict (anything beyond the 179 convolutions' weights
  // and biases is refused, as A1111's strict load_state_dict does); `lookup(name)`: that tensor
  // (F32, F16 or BF16). Throws Error naming `source` and the tensor for a missing, unexpected or
  // misshapen tensor, or a tag count that differs from the final convolution's outputs.
  static Network load(const std::vector<std::string>& names,
                      const std::function<Tensor(const std::string&)>& lookup, int64_t n_tags,
                      const std::string& source);

  // x: F32 [n, H, W, 3] in 0..1 (H and W multiples of 128; A1111 always feeds 512) →
  // probabilities F32 [n, n_tags].
  Tensor forward(const Tensor& x, ThreadPool& pool) const;

  // A1111's file as the safe PyTorch reader opened it: the state dict's tensors (under any wrapper
  // prefix) and the `tags` list of strings, returned in *tags. Throws Error naming `source` for a
  // missing or malformed `tags` list and everything load() refuses.
  static Network from_checkpoint(const torch::Checkpoint& ck, const std::string& source,
                                 std::vector<std::string>* tags);

  int64_t n_tags() const { return n_tags_; }
  int64_t weight_bytes() const { return weight_bytes_; }
  // The bytes the loader copied out of the file (reordered kernels, f32 biases): resident beside
  // the file's mapping.
  int64_t copied_bytes() const { return copied_bytes_; }
  // The most bytes forward() holds at once above its input and output for one image of
  // size x size (a batch runs its images one after another), kernel scratch apart; and the
  // matrix products it runs, for the kernels' scratch.
  int64_t activation_bytes(int64_t size = kInputSize) const;
  void add_scratch(cpu::ScratchPeak& scratch, int64_t size = kInputSize) const;

 private:
  Conv stem_, head_;
  std::vector<Block> blocks_;
  int64_t n_tags_ = 0, weight_bytes_ = 0, copied_bytes_ = 0;
};

// A1111's images.resize_image(2, img, width, height) with no upscaler ("resize and fill"): fit the
// image inside width x height keeping its aspect ratio (PIL LANCZOS), centre it, and fill the
// bands beside it by stretching its edge rows (or columns) with PIL's default filter (BICUBIC).
// Throws Error for an image so thin that its resized side would be 0 pixels.
image::Image resize_and_fill(const image::Image& img, int width, int height);

// The DeepBooru input for one image: resize_and_fill to 512 x 512, then /255 as float32:
// F32 [512, 512, 3] (NHWC without the batch dimension), no mean/std normalisation.
Tensor preprocess(const image::Image& img);

}  // namespace eight::deepbooru

#pragma once
// A CLIP text tower used as the prompt encoder of an image generator (SDXL's CLIP ViT-L and
// OpenCLIP bigG, FLUX's CLIP-L): transformers' CLIPTextModel / CLIPTextModelWithProjection run on
// padded token windows, giving the hidden states of every position at a chosen layer and the
// pooled output (final layer norm at the end-of-text token, projected when the checkpoint has a
// text_projection).
//
// Weights by their Hugging Face names ("text_model.embeddings.token_embedding.weight",
// "text_model.encoder.layers.N.self_attn.q_proj.weight", ..., "text_projection.weight").
//
//   auto te = clip::TextEncoder::build(weights, config_json, "quick_gelu", "text_encoder");
//   clip::TextEncoding e = te->encode({ids}, -2, pool);   // hidden_states[-2]: [1, 77, hidden]
//   auto gpu = clip::TextEncoder::build(weights, config_json, "gelu", "text_encoder_2",
//                                       Device::vulkan(0));   // the layers run there
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace eight::clip {

struct TextEncoderConfig {
  int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0;
  int64_t vocab = 0, positions = 0;
  int64_t projection_dim = 0;  // 0: no text_projection (pooled output is [n, hidden])
  double eps = 1e-5;
  std::string act;
};

struct TextEncoding {
  Tensor hidden;  // [n, L, hidden] f32: hidden_states[layer]
  Tensor pooled;  // [n, projection_dim or hidden] f32: the pooled (and projected) output
};

class TextEncoder {
 public:
  // config_json: the folder's config.json (CLIPTextConfig) or empty; without one the sizes come
  // from the tensor shapes, heads are 64 wide, and the activation is `default_act`. `name` is
  // used in messages. device: where the transformer layers go and run (a Vulkan device: their
  // weights are uploaded here; the embeddings, the final norm and the projection stay on the
  // host, and encode() still returns host tensors). Throws Error naming a missing or mis-shaped
  // tensor.
  static std::shared_ptr<const TextEncoder> build(const std::map<std::string, Tensor>& weights,
                                                  const std::string& config_json,
                                                  const std::string& default_act,
                                                  const std::string& name,
                                                  Device device = Device::cpu());

  const TextEncoderConfig& config() const;
  int64_t weight_bytes() const;

  // ids: n windows of equal length L <= positions (already padded). layer indexes
  // transformers' hidden_states (layers + 1 entries: 0 = the embeddings; negative from the end,
  // -1 = the last layer's output before the final layer norm). The pooled output is taken at
  // the first end-of-text token (the largest id, as transformers' argmax pooling finds it when
  // pads are smaller or equal), after all layers and the final layer norm.
  TextEncoding encode(const std::vector<std::vector<int32_t>>& ids, int layer,
                      ThreadPool& pool) const;

  ~TextEncoder();
  struct Impl;
  explicit TextEncoder(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace eight::clip

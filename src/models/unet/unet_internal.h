#pragma once
// UNet internals shared by the builder (unet_build.cpp) and the forward pass (unet_forward.cpp).
// Weight fields are commented with their diffusers names; shapes are PyTorch order. Matmul and
// convolution weights are the caller's tensors as they are (views of the file mapping); norms and
// biases are f32 copies.
#include <cstdint>
#include <vector>

#include "models/unet/unet.h"
#include "ops/conv.h"

namespace eight::unet {

struct Linear {
  Tensor weight;  // [out, in], any matmul weight type
  Tensor bias;    // [out] f32, or undefined
  // A LoRA applied at run time to a quantized weight (sdxl/lora.h): "<module>.lora_down" [r, in]
  // and "<module>.lora_up" [out, r] f32 (scale * alpha / rank folded in), or undefined.
  Tensor lora_down, lora_up;
};

struct Norm {
  Tensor weight, bias;  // [C] f32
};

struct Conv {
  // [out, in, kh, kw] f32, f16 or bf16, reordered once at build (ops::conv2d_prepare_weight) so
  // the convolutions do not reorder it on every call; weight.shape is the checkpoint's shape. On a
  // Vulkan device weight.w is the checkpoint's [out, in, kh, kw] tensor there, not reordered (the
  // Vulkan convolution reads it as it is).
  ops::Conv2dWeight weight;
  Tensor bias;  // [out] f32
  bool defined() const { return weight.defined(); }
};

// ResnetBlock2D: x + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(emb))))), with a
// 1x1 conv_shortcut on x when the channel count changes.
struct ResBlock {
  int64_t c_in = 0, c_out = 0;
  Norm norm1;            // norm1 [c_in]
  Conv conv1;            // conv1 [c_out, c_in, 3, 3]
  Linear time_emb_proj;  // time_emb_proj [c_out, time_embed_dim]
  Norm norm2;            // norm2 [c_out]
  Conv conv2;            // conv2 [c_out, c_out, 3, 3]
  Conv shortcut;         // conv_shortcut [c_out, c_in, 1, 1], or undefined
};

// BasicTransformerBlock (norm_type "layer_norm"): self-attention, cross-attention over the text
// context, GEGLU feed-forward, each pre-norm with a residual.
struct TransformerBlock {
  Norm norm1;               // norm1
  Linear q1, k1, v1, out1;  // attn1.to_q, to_k, to_v [C, C] (no bias), attn1.to_out.0 [C, C]
  Norm norm2;               // norm2
  Linear q2, k2, v2, out2;  // attn2.to_q [C, C]; to_k, to_v [C, cross]; to_out.0 [C, C]
  Norm norm3;               // norm3
  Linear ff_proj;           // ff.net.0.proj [2 * inner, C] (GEGLU: hidden rows, then gate rows)
  Linear ff_out;            // ff.net.2 [C, inner]
};

// Transformer2DModel with a GroupNorm (eps 1e-6) and linear proj_in / proj_out (a 1x1 conv
// projection is the same product and is viewed as [C, C]).
struct SpatialTransformer {
  int64_t channels = 0, heads = 0;
  Norm norm;                             // norm
  Linear proj_in, proj_out;              // proj_in, proj_out [C, C]
  std::vector<TransformerBlock> blocks;  // transformer_blocks.N
};

// down_blocks.N / up_blocks.N: resnets.j, attentions.j (cross-attention levels only), and the
// resampler (downsamplers.0.conv, stride 2; upsamplers.0.conv after a nearest 2x upsample).
struct Level {
  std::vector<ResBlock> resnets;
  std::vector<SpatialTransformer> attentions;  // empty, or one per resnet
  Conv resample;                               // undefined on the last down / first up level
};

struct Model::Impl {
  Config config;
  Device device;  // where every weight below is (the CPU, or the Vulkan device of build())
  int64_t weight_bytes = 0;
  int64_t device_bytes = 0;     // bytes of the weights uploaded to `device`
  int64_t add_in = 0;           // add_embedding.linear_1 in-features
  Conv conv_in;                 // conv_in [c0, in_channels, 3, 3]
  Linear time_1, time_2;        // time_embedding.linear_1 [ted, c0], linear_2 [ted, ted]
  Linear add_1, add_2;          // add_embedding.linear_1 [ted, add_in], linear_2
  std::vector<Level> down;      // down_blocks
  ResBlock mid_res0, mid_res1;  // mid_block.resnets.0, .1
  SpatialTransformer mid_attn;  // mid_block.attentions.0
  std::vector<Level> up;        // up_blocks (up_blocks.0 is the deepest level)
  Norm norm_out;                // conv_norm_out
  Conv conv_out;                // conv_out [out_channels, c0, 3, 3]
};

// Builds the weights for `config` on `device`, checking every shape (unet_build.cpp).
std::unique_ptr<Model::Impl> build_impl(const Weights& weights, const Config& config,
                                        Device device = Device::cpu());

// Transformer2DModel's GroupNorm epsilon (hard-coded there, unlike the resnets' norm_eps).
inline constexpr float kTransformerNormEps = 1e-6f;
// BasicTransformerBlock's LayerNorm epsilon (Transformer2DModel's norm_eps default).
inline constexpr float kLayerNormEps = 1e-5f;
// Rows of the feed-forward run at once: its [rows, 2 * inner] projection is the largest buffer of a
// transformer block (inner = 4 C), so it runs in slices rather than over all N * h * w tokens.
inline constexpr int64_t kFeedForwardRows = 512;

}  // namespace eight::unet

#pragma once
// AutoencoderKL internals shared by the loader (vae_load.cpp), the blocks (vae_blocks.cpp) and the
// encode/decode/tiling driver (vae_model.cpp). Weight fields are commented with their diffusers
// names; shapes are PyTorch order.
#include <cstdint>
#include <vector>

#include "models/vae/vae.h"

namespace eight::vae {

struct Conv {
  Tensor weight;  // [out, in, k, k] f32, f16 or bf16 (a view of the file)
  Tensor bias;    // [out] f32
  int64_t k() const { return weight.size(2); }
};

struct GroupNorm {
  Tensor weight, bias;  // [C] f32
};

struct Linear {
  Tensor weight;  // [out, in] as stored (diffusers' to_q etc. are nn.Linear)
  Tensor bias;    // [out] f32
};

// resnet.py ResnetBlock2D without a time embedding (temb_channels=None), output_scale_factor 1.
struct Resnet {
  GroupNorm norm1;  // norm1
  Conv conv1;       // conv1 3x3, in -> out
  GroupNorm norm2;  // norm2
  Conv conv2;       // conv2 3x3, out -> out
  Conv shortcut;    // conv_shortcut 1x1, only when in != out
};

// attention_processor.py Attention as UNetMidBlock2D builds it for the VAE: one head as wide as
// the channels, GroupNorm first, residual added (rescale_output_factor 1).
struct MidAttention {
  GroupNorm norm;       // group_norm
  Linear q, k, v, out;  // to_q, to_k, to_v, to_out.0 [C, C]
};

// unet_2d_blocks.py UNetMidBlock2D: resnets.0, attentions.0 (optional), resnets.1.
struct MidBlock {
  Resnet first, second;
  bool has_attention = true;
  MidAttention attention;
};

// DownEncoderBlock2D: layers_per_block resnets, then (except at the last level) downsamplers.0.conv
// 3x3 stride 2 after padding (0, 1, 0, 1).
struct DownBlock {
  std::vector<Resnet> resnets;
  Conv downsample;  // undefined weight at the last level
};

// UpDecoderBlock2D: layers_per_block + 1 resnets, then (except at the last level) upsamplers.0:
// nearest 2x and conv 3x3.
struct UpBlock {
  std::vector<Resnet> resnets;
  Conv upsample;
};

struct Encoder {
  Conv conv_in;                 // encoder.conv_in 3x3, in_channels -> channels[0]
  std::vector<DownBlock> down;  // encoder.down_blocks.i
  MidBlock mid;                 // encoder.mid_block
  GroupNorm norm_out;           // encoder.conv_norm_out (then SiLU)
  Conv conv_out;                // encoder.conv_out 3x3 -> 2 * latent_channels
  Conv quant_conv;              // quant_conv 1x1 (absent in FLUX)
};

struct Decoder {
  Conv post_quant_conv;     // post_quant_conv 1x1 (absent in FLUX)
  Conv conv_in;             // decoder.conv_in 3x3, latent_channels -> channels.back()
  MidBlock mid;             // decoder.mid_block
  std::vector<UpBlock> up;  // decoder.up_blocks.i, from the deepest level up
  GroupNorm norm_out;       // decoder.conv_norm_out (then SiLU)
  Conv conv_out;            // decoder.conv_out 3x3 -> out_channels
};

struct Model::Impl {
  Config config;
  Encoder encoder;
  Decoder decoder;
  int64_t weight_bytes = 0;
  Device device = Device::cpu();  // where the weights are and every block runs
  // Pixels per latent pixel along a side: 2^(levels - 1).
  int64_t factor() const { return int64_t{1} << (config.channels.size() - 1); }
};

// Moves every weight of the encoder and decoder to `device` (vae_load.cpp).
void place(Model::Impl& m, Device device);

// The blocks (vae_blocks.cpp). x: [N, C, H, W] f32 contiguous; each returns a new tensor on x's
// device (the weights' device) and frees its intermediates as soon as they are used.
Tensor conv(const Conv& c, const Tensor& x, ThreadPool& pool, int64_t stride = 1);
Tensor resnet(const Resnet& r, const Tensor& x, int64_t groups, ThreadPool& pool);
Tensor mid_block(const MidBlock& m, const Tensor& x, int64_t groups, ThreadPool& pool);
// The whole encoder and decoder take and return host tensors and run on m.device: the input is
// copied there once and the result back once.
// The whole encoder (with quant_conv): images [N, in, H, W] -> moments [N, 2 * latent, H/f, W/f].
Tensor run_encoder(const Model::Impl& m, const Tensor& images, ThreadPool& pool);
// The whole decoder (with post_quant_conv): z [N, latent, h, w] -> [N, out, f*h, f*w].
Tensor run_decoder(const Model::Impl& m, const Tensor& z, ThreadPool& pool);

// softmax(q k^T / sqrt(C)) v for one head: q: [T, C], k: [T', C], vt: [C, T'] (v transposed),
// out: [T, C], `rows` queries at a time. Only one block of scores [rows, T'] exists at once (no
// T x T matrix), and both products run on the matmul kernels: at the VAE's C = 512 and T = 1024
// about 170 GFLOP/s against 27 for ops::attention's per-query kernel on the 2-core dev machine
// (bench/bench_vae.cpp); tests/models/test_vae.cpp holds the two together.
void attention_rows(const Tensor& q, const Tensor& k, const Tensor& vt, const Tensor& out,
                    ThreadPool& pool, int64_t rows);

// Upper bounds of the bytes those two allocate at their peak beyond their input, counting the
// scratch ops::conv2d takes (vae_blocks.cpp, mirroring the code step by step).
int64_t encoder_peak_bytes(const Model::Impl& m, int64_t n, int64_t h, int64_t w);
int64_t decoder_peak_bytes(const Model::Impl& m, int64_t n, int64_t h, int64_t w);

}  // namespace eight::vae

// FLUX's prompt encoding (FluxPipeline.encode_prompt) and its 2x2 latent packing.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "runtime/diffusion/flux_parts.h"

namespace eight::diffusion {

FluxTextEncoders::FluxTextEncoders(FluxFiles& files, Device device) {
  // FluxPipeline takes CLIPTextModel's pooler_output, never projected: ComfyUI's clip_l files
  // that carry a text_projection would otherwise be projected.
  files.clip.erase("text_projection.weight");
  clip_ =
      clip::TextEncoder::build(files.clip, files.clip_config, "quick_gelu", "text_encoder", device);
  files.clip.clear();
  clip_tok_ = std::move(files.clip_tokenizer);
  const text::CLIPTokenizer& tok = clip_tok_ ? *clip_tok_ : text::CLIPTokenizer::openai();
  check(static_cast<int64_t>(tok.vocab_size()) <= clip_->config().vocab, "[flux] the CLIP ",
        "tokenizer has ", tok.vocab_size(), " tokens but text_encoder only ", clip_->config().vocab,
        " embeddings");
  const auto& v = tok.tokens();
  const auto it = std::find(v.begin(), v.end(), files.clip_pad_token);
  clip_pad_ = it != v.end() ? static_cast<int32_t>(it - v.begin()) : tok.eos();
  t5_ = t5::Encoder::load(files.t5_path);
  t5_tok_ = text::UnigramTokenizer::open(files.t5_tokenizer_path);
  check(t5_tok_->size() <= t5_->config().vocab, "[flux] the T5 tokenizer has ", t5_tok_->size(),
        " pieces but the encoder only ", t5_->config().vocab, " embeddings");
  t5_bytes_ = files.t5_file_bytes;
}

int64_t FluxTextEncoders::weight_bytes() const {
  return clip_->weight_bytes() + t5_bytes_;
}

FluxPrompt FluxTextEncoders::encode(const std::string& prompt, int64_t max_len,
                                    ThreadPool& pool) const {
  check(max_len >= 1 && max_len <= 512, "[flux] max_sequence_length ", max_len, " is not 1 to 512");
  FluxPrompt p;
  // CLIP: 77 tokens, truncated with <|endoftext|> kept last, padded.
  const text::CLIPTokenizer& tok = clip_tok_ ? *clip_tok_ : text::CLIPTokenizer::openai();
  p.clip_ids = tok.encode(prompt, 77);
  p.clip_ids.resize(77, clip_pad_);
  p.pooled = clip_->encode({p.clip_ids}, -1, pool).pooled.select(0, 0).contiguous().clone();
  // T5: </s> kept last on truncation (transformers' tokenizer(truncation=True)), padded with
  // <pad>; FluxPipeline passes no attention mask, so the padding is attended too.
  p.t5_ids = t5_tok_->encode(prompt, true);
  if (static_cast<int64_t>(p.t5_ids.size()) > max_len) {
    const bool eos_last = t5_tok_->eos() >= 0 && p.t5_ids.back() == t5_tok_->eos();
    p.t5_ids.resize(static_cast<size_t>(max_len));
    if (eos_last) p.t5_ids.back() = t5_tok_->eos();
  }
  p.t5_ids.resize(static_cast<size_t>(max_len), std::max(t5_tok_->pad(), 0));
  p.context = t5_->forward(p.t5_ids, max_len, pool);
  return p;
}

namespace {

// Copies between the unpacked [C, h, w] and packed [(h/2)(w/2), 4C] layouts (pack: unpacked ->
// packed), both contiguous.
void repack(float* unpacked, float* packed, int64_t C, int64_t h, int64_t w, bool pack) {
  for (int64_t y = 0; y < h / 2; ++y)
    for (int64_t x = 0; x < w / 2; ++x)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t dy = 0; dy < 2; ++dy)
          for (int64_t dx = 0; dx < 2; ++dx) {
            const int64_t u = (c * h + 2 * y + dy) * w + 2 * x + dx;
            const int64_t p = ((y * (w / 2) + x) * C + c) * 4 + dy * 2 + dx;
            if (pack)
              packed[p] = unpacked[u];
            else
              unpacked[u] = packed[p];
          }
}

}  // namespace

Tensor pack_latents(const Tensor& latents) {
  check(latents.dim() == 3 && latents.dtype() == DType::F32 && latents.size(1) % 2 == 0 &&
            latents.size(2) % 2 == 0,
        "[flux] latents to pack are f32 [C, h, w] with even h and w, not ", latents.shape().str());
  const Tensor x = latents.contiguous();
  const int64_t C = x.size(0), h = x.size(1), w = x.size(2);
  Tensor out = Tensor::empty({(h / 2) * (w / 2), C * 4}, DType::F32);
  repack(x.data<float>(), out.data<float>(), C, h, w, true);
  return out;
}

Tensor unpack_latents(const Tensor& packed, int64_t h, int64_t w) {
  check(packed.dim() == 2 && packed.dtype() == DType::F32 && h % 2 == 0 && w % 2 == 0 &&
            packed.size(0) == (h / 2) * (w / 2) && packed.size(1) % 4 == 0,
        "[flux] packed latents ", packed.shape().str(), " do not unpack to ", h, "x", w);
  const Tensor p = packed.contiguous();
  const int64_t C = p.size(1) / 4;
  Tensor out = Tensor::empty({C, h, w}, DType::F32);
  repack(out.data<float>(), p.data<float>(), C, h, w, false);
  return out;
}

Tensor latent_image_ids(int64_t h, int64_t w) {
  Tensor ids = Tensor::zeros({(h / 2) * (w / 2), 3}, DType::F32);
  float* d = ids.data<float>();
  for (int64_t y = 0; y < h / 2; ++y)
    for (int64_t x = 0; x < w / 2; ++x) {
      d[(y * (w / 2) + x) * 3 + 1] = static_cast<float>(y);
      d[(y * (w / 2) + x) * 3 + 2] = static_cast<float>(x);
    }
  return ids;
}

}  // namespace eight::diffusion

// libFuzzer target for the SDXL LoRA reader: bytes go through the safetensors reader and, when
// they parse, through read_lora and apply_lora against a small fixed set of target weights (a
// UNet attention projection and ResNet convolution under diffusers' and original-layout names,
// both text encoders, text_encoder_2's q/k/v as slices of one fused tensor, and a Q8_0 weight
// that takes the LoRA at run time). Any input must apply or throw eight::Error — no crash, no
// sanitizer report. Seeds: tests/fuzz/seeds/fuzz_sdxl_lora/ (kohya and PEFT names).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/error.h"
#include "formats/safetensors.h"
#include "models/sdxl/lora.h"

namespace {

eight::Tensor weight(const eight::Dims& shape, eight::DType dtype = eight::DType::F32) {
  return eight::Tensor::zeros(shape, dtype);
}

eight::sdxl::Components targets() {
  eight::sdxl::Components c;
  c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"] = weight({8, 6});
  c.unet["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight"] =
      weight({8, 32}, eight::DType::Q8_0);
  c.unet["down_blocks.0.resnets.0.conv1.weight"] = weight({4, 3, 3, 3}, eight::DType::F16);
  c.unet["down_blocks.0.resnets.1.conv1.weight"] = weight({4, 4, 3, 3}, eight::DType::BF16);
  c.text_encoder["text_model.encoder.layers.0.self_attn.q_proj.weight"] = weight({6, 6});
  const eight::Tensor fused = weight({18, 6});
  c.text_encoder_2["text_model.encoder.layers.0.self_attn.q_proj.weight"] = fused.slice(0, 0, 6);
  c.text_encoder_2["text_model.encoder.layers.0.self_attn.v_proj.weight"] = fused.slice(0, 12, 18);
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = std::make_shared<eight::BorrowedStorage>(const_cast<uint8_t*>(data), size, false);
  try {
    const auto f = eight::safetensors::File::parse(bytes, "fuzz_lora.safetensors");
    eight::sdxl::Components c = targets();
    const auto modules = eight::sdxl::read_lora(f, c);
    eight::sdxl::apply_lora(c, modules, 0.7f);
  } catch (const eight::Error&) {
  }
  return 0;
}
